/**
 * Headless rendering of Vega-Lite specs: compile with `vega-lite`, render with a `vega` `View`
 * (renderer `none`) to SVG, and rasterise the SVG to PNG with `@resvg/resvg-js`.
 *
 * The three libraries are imported lazily, on the first render, so that importing this module (and
 * the stage registry) costs nothing at CLI start-up.
 *
 * Fonts: resvg draws no text without a font. `fontFiles()` looks for DejaVu Sans (Debian package
 * `fonts-dejavu-core`) and Liberation Sans in the usual system folders and passes what it finds to
 * resvg, which also loads the system fonts; the charts ask for `sans-serif`, which resvg maps to
 * the font found. Without any font file the PNG is still produced, but without text.
 */
import { existsSync } from 'node:fs';
import type { TopLevelSpec } from 'vega-lite';

/** Output formats of a chart. */
export type PlotFormat = 'svg' | 'png';

/** A rendered chart: the SVG text, and the PNG bytes when asked for. */
export interface RenderedChart {
  svg: string;
  png?: Uint8Array;
}

/** Options of `renderChart`. */
export interface RenderOptions {
  /** Formats to produce (the SVG is always rendered, as the PNG is drawn from it). */
  formats: readonly PlotFormat[];
  /** PNG pixels per SVG pixel (default 2, for legible text when zoomed). */
  pngScale?: number;
}

/** Font files looked for, best first: the first found names resvg's `sans-serif`. */
export const FONT_CANDIDATES: readonly { family: string; file: string }[] = [
  { family: 'DejaVu Sans', file: '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf' },
  { family: 'DejaVu Sans', file: '/usr/share/fonts/TTF/DejaVuSans.ttf' },
  { family: 'DejaVu Sans', file: '/usr/share/fonts/dejavu/DejaVuSans.ttf' },
  { family: 'DejaVu Sans', file: '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf' },
  { family: 'Liberation Sans', file: '/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf' },
  { family: 'Liberation Sans', file: '/usr/share/fonts/liberation/LiberationSans-Regular.ttf' },
  { family: 'Arial', file: '/Library/Fonts/Arial.ttf' },
  { family: 'Arial', file: '/System/Library/Fonts/Supplemental/Arial.ttf' },
  { family: 'Arial', file: 'C:\\Windows\\Fonts\\arial.ttf' },
];

/** The candidate font files present on this machine (see `FONT_CANDIDATES`). */
export function fontFiles(): { family: string; file: string }[] {
  return FONT_CANDIDATES.filter((c) => existsSync(c.file));
}

/** Shared Vega-Lite config: white background, sans-serif text, readable sizes. */
export const CHART_CONFIG = {
  background: 'white',
  font: 'sans-serif',
  padding: 8,
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 11, titleFontSize: 12 },
  header: { labelFontSize: 12, titleFontSize: 12 },
  title: { fontSize: 14, subtitleFontSize: 11, anchor: 'start' },
  view: { stroke: '#cccccc' },
} as const;

/** `config` with its legends above the chart, their entries in a row (for grids of panels). */
export function legendAbove<C extends { legend: object }>(config: C): C {
  return { ...config, legend: { ...config.legend, orient: 'top', direction: 'horizontal' } };
}

/**
 * Renders a Vega-Lite spec to SVG and, when `png` is among `formats`, to PNG.
 * @throws Error when the spec does not compile or render.
 */
export async function renderChart(spec: TopLevelSpec, options: RenderOptions): Promise<RenderedChart> {
  const [vl, vega] = await Promise.all([import('vega-lite'), import('vega')]);
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  const out: RenderedChart = { svg };
  if (options.formats.includes('png')) {
    const { Resvg } = await import('@resvg/resvg-js');
    const fonts = fontFiles();
    const family = fonts[0]?.family;
    const resvg = new Resvg(svg, {
      fitTo: { mode: 'zoom', value: options.pngScale ?? 2 },
      background: 'white',
      font: {
        fontFiles: fonts.map((f) => f.file),
        loadSystemFonts: true,
        ...(family ? { defaultFontFamily: family, sansSerifFamily: family } : {}),
      },
      logLevel: 'off',
    });
    out.png = new Uint8Array(resvg.render().asPng());
  }
  return out;
}
