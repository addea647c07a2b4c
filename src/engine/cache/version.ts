/** Versions recorded in manifests. */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** grokpipe's version from its package.json (`0.0.0` when unreadable). */
export function grokpipeVersion(): string {
  if (cached === undefined) {
    try {
      cached = (
        JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
      ).version;
    } catch {
      cached = '0.0.0';
    }
  }
  return cached;
}
