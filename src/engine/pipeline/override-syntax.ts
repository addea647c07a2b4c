/**
 * The syntax of one `--set` argument, after Hydra's override grammar (hydra.cc, "Basic Override
 * syntax" and "Extended Override syntax"), in the subset a pipeline needs:
 *
 * - `key=value`: set a value, parsed as YAML (`500` a number, `gpt2` a string, `[0, 1]` a list,
 *   `{lr: 0.01}` a mapping);
 * - `key=a,b,c` or `key=choice(a,b,c)`: a sweep over the values (each parsed as YAML);
 * - `key=range(start,stop[,step])`: a sweep over `start, start+step, ...` below `stop` (Python's
 *   `range`; integers or decimals; `step` 1 when omitted; named arguments `start=`, `stop=`,
 *   `step=` as in Hydra);
 * - `~key` deletes a key, `~key=value` deletes it only when it holds that value.
 *
 * Commas inside quotes, brackets, braces or parentheses do not split a sweep, so `key=[1,2]` and
 * `key='a,b'` are single values. This module only parses; `overrides.ts` applies.
 */
import { parse } from 'yaml';
import type { Json } from '../stage.js';

/** A parsed `--set` argument: what to do at which key. */
export type OverrideSyntax =
  | { readonly kind: 'set'; readonly key: string; readonly value: unknown }
  | { readonly kind: 'sweep'; readonly key: string; readonly values: readonly Json[] }
  | { readonly kind: 'delete'; readonly key: string; readonly value?: unknown };

/** A sweep of more values than this is surely a typo (`range(0,1e9)`). */
export const MAX_SWEEP_VALUES = 10_000;

/**
 * Parses one `--set` argument (see the module comment).
 * @returns the override, or `{ problem }` with a message for people (the caller names the argument).
 */
export function parseOverride(arg: string): OverrideSyntax | { readonly problem: string } {
  if (arg.startsWith('~')) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg.slice(1) : arg.slice(1, eq);
    if (key === '') return { problem: 'expected ~<stage>.with.<path> (delete a key)' };
    if (eq < 0) return { kind: 'delete', key };
    const value = parseValue(arg.slice(eq + 1));
    return 'problem' in value ? value : { kind: 'delete', key, value: value.value };
  }
  const eq = arg.indexOf('=');
  if (eq <= 0) return { problem: 'expected <stage>.with.<path>=<value>, vars.<name>=<value> or matrix.<axis>=[...]' };
  const key = arg.slice(0, eq);
  const text = arg.slice(eq + 1);
  const sweep = parseSweep(text);
  if (sweep !== undefined) return 'problem' in sweep ? sweep : { kind: 'sweep', key, values: sweep.values };
  const value = parseValue(text);
  return 'problem' in value ? value : { kind: 'set', key, value: value.value };
}

/** Parses a value as YAML. */
function parseValue(text: string): { value: unknown } | { problem: string } {
  try {
    return { value: parse(text) as unknown };
  } catch (err) {
    return { problem: `value is not valid YAML (${(err as Error).message.split('\n')[0]})` };
  }
}

const CALL = /^\s*(range|choice)\s*\(([\s\S]*)\)\s*$/;

/**
 * The values of a sweep, or undefined when `text` is a single value: a top-level comma list,
 * `choice(...)` or `range(...)`.
 */
function parseSweep(text: string): { values: Json[] } | { problem: string } | undefined {
  const call = CALL.exec(text);
  if (call) {
    const args = splitTopLevel(call[2]);
    return call[1] === 'range' ? rangeValues(args) : listValues(args, 'choice(...)');
  }
  const items = splitTopLevel(text);
  return items.length > 1 ? listValues(items, 'a sweep') : undefined;
}

/** Each item parsed as YAML; they must be distinct scalars (they become matrix values). */
function listValues(items: readonly string[], what: string): { values: Json[] } | { problem: string } {
  const values: Json[] = [];
  for (const item of items) {
    if (item.trim() === '') return { problem: `empty value in ${what}` };
    const parsed = parseValue(item);
    if ('problem' in parsed) return parsed;
    const v = parsed.value;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      return { problem: `${what} takes scalar values (a number, string or boolean), not ${JSON.stringify(v)}` };
    }
    if (values.includes(v)) return { problem: `${what} repeats the value ${JSON.stringify(v)}` };
    values.push(v);
  }
  return checkCount(values);
}

/** `range(start, stop[, step])`, positional or named (`start=`, `stop=`, `step=`). */
function rangeValues(args: readonly string[]): { values: Json[] } | { problem: string } {
  const usage = 'range(start, stop[, step]) takes two or three numbers';
  if (args.length < 2 || args.length > 3) return { problem: usage };
  const named: Record<string, number> = {};
  const names = ['start', 'stop', 'step'];
  for (const [i, raw] of args.entries()) {
    const m = /^\s*(start|stop|step)\s*=([\s\S]*)$/.exec(raw);
    const name = m ? m[1] : names[i];
    const n = Number((m ? m[2] : raw).trim());
    if ((m ? m[2] : raw).trim() === '' || !Number.isFinite(n)) return { problem: `${usage} (got "${raw.trim()}")` };
    named[name] = n;
  }
  const { start, stop } = named;
  const step = named.step ?? 1;
  if (start === undefined || stop === undefined) return { problem: usage };
  if (step === 0) return { problem: 'range(...) step must not be 0' };
  const count = Math.ceil((stop - start) / step);
  if (!(count > 0)) return { problem: `range(${start}, ${stop}, ${step}) is empty` };
  if (count > MAX_SWEEP_VALUES) return checkCount(new Array<Json>(count));
  // start + i × step, not a running sum: no accumulated rounding (0.1 + 0.2 ...), 12 digits kept.
  const values: Json[] = Array.from({ length: count }, (_, i) => Number((start + i * step).toPrecision(12)));
  return { values };
}

function checkCount(values: Json[]): { values: Json[] } | { problem: string } {
  if (values.length > MAX_SWEEP_VALUES) {
    return { problem: `a sweep of ${values.length} values (at most ${MAX_SWEEP_VALUES})` };
  }
  return { values };
}

/**
 * Splits `text` at commas that are outside quotes (`'...'`, `"..."`), brackets, braces and
 * parentheses. One item (the whole text) when there is no such comma.
 */
export function splitTopLevel(text: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quote: string | null = null;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== null) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '[' || c === '{' || c === '(') {
      depth++;
    } else if (c === ']' || c === '}' || c === ')') {
      depth = Math.max(0, depth - 1);
    } else if (c === ',' && depth === 0) {
      items.push(text.slice(start, i));
      start = i + 1;
    }
  }
  items.push(text.slice(start));
  return items;
}
