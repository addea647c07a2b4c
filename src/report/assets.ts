/**
 * The JavaScript the report inlines so that it needs no network: the browser (UMD) builds of
 * `vega`, `vega-lite` and `vega-embed` from `node_modules`, in load order (each defines a global
 * the next one uses: `vega`, `vegaLite`, `vegaEmbed`).
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** A library bundled into the page. */
export interface InlineScript {
  /** Package name. */
  readonly name: string;
  /** Package version. */
  readonly version: string;
  /** The minified browser build. */
  readonly code: string;
}

/** Each package and its browser build, relative to the folder of the package's main module. */
const BUILDS: readonly { name: string; file: string }[] = [
  { name: 'vega', file: 'vega.min.js' },
  { name: 'vega-lite', file: 'vega-lite.min.js' },
  { name: 'vega-embed', file: 'vega-embed.min.js' },
];

/**
 * Reads the browser builds. Their files are not in the packages' `exports`, so they are found
 * beside each package's main module (`build/`), and the version in the `package.json` above it.
 * @throws Error when a package or its build is missing.
 */
export async function inlineScripts(): Promise<InlineScript[]> {
  const require = createRequire(import.meta.url);
  return Promise.all(
    BUILDS.map(async ({ name, file }) => {
      const build = dirname(require.resolve(name));
      const pkg = JSON.parse(await readFile(join(build, '..', 'package.json'), 'utf8')) as { version: string };
      return { name, version: pkg.version, code: await readFile(join(build, file), 'utf8') };
    }),
  );
}
