/**
 * Knobs of stored runs, as columns: a run's params flattened into dotted paths (`optimizer.lr`,
 * `max_steps`), those of the stages upstream of it prefixed by their stage type
 * (`generate.entities`), and which of them differ between runs (`dvc exp show`'s "changed
 * params" view).
 */
import type { Json } from '../engine/stage.js';

/** A knob's value in a table: a scalar, or a list or mapping written as JSON text. */
export type KnobValue = string | number | boolean | null;

/**
 * `params` flattened: mappings into dotted paths (`{optimizer: {lr: 1}}` -> `optimizer.lr`),
 * prefixed with `prefix.` when `prefix` is given; lists and empty mappings as JSON text.
 */
export function flattenParams(params: Readonly<Record<string, Json>>, prefix?: string): Record<string, KnobValue> {
  const out: Record<string, KnobValue> = {};
  const walk = (value: Json, path: string): void => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length > 0) {
      for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
    } else if (value !== null && typeof value === 'object') {
      out[path] = JSON.stringify(value);
    } else {
      out[path] = value;
    }
  };
  for (const [k, v] of Object.entries(params)) walk(v, prefix === undefined ? k : `${prefix}.${k}`);
  return out;
}

/** A knob value as text, for comparing and printing (`null` is empty). */
export function knobText(value: KnobValue | undefined): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'string' ? value : String(value);
}

/**
 * The knobs whose values are not the same in every run (a knob a run lacks counts as a value of
 * its own), in first-seen order. None when there are fewer than two runs.
 */
export function differingKnobs(runs: readonly { readonly knobs: Readonly<Record<string, KnobValue>> }[]): string[] {
  if (runs.length < 2) return [];
  const names: string[] = [];
  const seen = new Set<string>();
  for (const r of runs) {
    for (const k of Object.keys(r.knobs)) {
      if (!seen.has(k)) {
        seen.add(k);
        names.push(k);
      }
    }
  }
  return names.filter((k) => {
    const first = runs[0].knobs[k];
    return runs.some((r) => r.knobs[k] !== first);
  });
}

/**
 * The column a name given by people means: itself when it is one, else the one column that ends
 * with `.<name>` (`entities` -> `generate.entities`, `lr` -> `optimizer.lr`).
 * @returns the column, or a problem naming the candidates (none, or several).
 */
export function resolveColumn(name: string, columns: readonly string[]): { column: string } | { problem: string } {
  if (columns.includes(name)) return { column: name };
  const matches = columns.filter((c) => c.endsWith(`.${name}`));
  if (matches.length === 1) return { column: matches[0] };
  if (matches.length > 1) return { problem: `"${name}" is ambiguous: ${matches.join(', ')}` };
  const shown = columns.length > 12 ? `${columns.slice(0, 12).join(', ')}, ...` : columns.join(', ');
  return { problem: `no column "${name}" (columns: ${shown})` };
}

/**
 * Short labels of knobs for plots and headings: the last part of each path (`entities` for
 * `generate.entities`) when no other knob of the list ends the same, else the whole path.
 */
export function shortKnobNames(knobs: readonly string[]): string[] {
  const last = (k: string) => k.slice(k.lastIndexOf('.') + 1);
  return knobs.map((k) => (knobs.filter((o) => last(o) === last(k)).length === 1 ? last(k) : k));
}
