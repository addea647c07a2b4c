/**
 * Repeated keys in the mappings of a YAML document, found in linear time. (The `yaml` library's own
 * `uniqueKeys` check compares each key with every earlier key of its mapping: a pipeline file with
 * a mapping of 50,000 keys took 40 s to parse.) Keys are equal as yaml's check has them: scalar
 * keys of the same value (`1` and `"1"` differ).
 */
import { isMap, isScalar, visit } from 'yaml';
import type { Document } from 'yaml';

/** Text offsets (0-based) of every key that repeats an earlier key of its mapping, in document order. */
export function repeatedKeys(doc: Document): number[] {
  const out: number[] = [];
  visit(doc, {
    Map(_key, map) {
      if (!isMap(map)) return;
      const seen = new Set<unknown>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        if (seen.has(pair.key.value)) out.push(pair.key.range?.[0] ?? 0);
        else seen.add(pair.key.value);
      }
    },
  });
  return out;
}
