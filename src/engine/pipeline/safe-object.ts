/**
 * Own properties for keys that come from users (`--set` paths, YAML mapping keys, matrix names).
 * Plain `obj[key] = value` with the key `__proto__` replaces the object's prototype instead of
 * adding a field (with `--set a.with.__proto__.x=1`, every object of the process would then have
 * `x`); reading `obj[key]` finds inherited members. These helpers make such a key an ordinary own
 * field, which validation then reports as unknown where it was written.
 */

/** Sets the own, enumerable field `key` of `obj` (whatever the key, `__proto__` included). */
export function setOwn(obj: object, key: string, value: unknown): void {
  // A plain object has no setter but `__proto__`: assignment then makes the same own field, and
  // keeps V8's fast object layout (a sweep of 10,000 runs sets some 100,000 fields).
  if (key !== '__proto__' && Object.getPrototypeOf(obj) === Object.prototype && !Object.hasOwn(obj, key))
    (obj as Record<string, unknown>)[key] = value;
  else Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** The own field `key` of `obj`, or undefined (inherited members are not fields). */
export function getOwn(obj: object, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? (obj as Record<string, unknown>)[key] : undefined;
}
