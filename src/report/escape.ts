/**
 * Escaping for text placed into the report's HTML: element text and attribute values, JSON and
 * JavaScript inside `<script>` elements, and relative links to local files.
 */
import { relative, sep } from 'node:path';

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text safe inside an element or a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * JSON safe inside `<script type="application/json">`: `<`, `>`, `&` and the line separators
 * U+2028/U+2029 written as `\u` escapes, so no `</script>` or `<!--` can appear.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * JavaScript source safe inside an inline `<script>`: `</script` and `<!--` broken up with a
 * backslash (`<\/script`, `<\!--`), which means the same inside string and regular-expression
 * literals, the only places minified library code has them.
 */
export function scriptSource(code: string): string {
  return code.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/**
 * A relative URL from the folder `fromDir` to the local path `to` (each segment percent-encoded,
 * `/` separators; a trailing `/` when `folder`), for links that work when the page is opened
 * from disk (`file://`) and when the folders are moved together.
 */
export function relativeHref(fromDir: string, to: string, folder = false): string {
  const rel = relative(fromDir, to);
  const path =
    rel === ''
      ? '.'
      : rel
          .split(sep)
          .map((p) => (p === '..' ? p : encodeURIComponent(p)))
          .join('/');
  return folder ? `${path}/` : path;
}
