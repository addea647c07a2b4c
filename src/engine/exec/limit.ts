/** A concurrency limiter: at most `n` functions run at once; the others wait in FIFO order. */

/** Runs `fn` when a slot is free; resolves or rejects with its result. */
export type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

/**
 * Creates a limiter with `n` slots.
 * @throws RangeError when `n` is not a positive integer.
 */
export function createLimiter(n: number): Limiter {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`concurrency must be a positive integer, got ${n}`);
  let active = 0;
  const queue: (() => void)[] = [];
  const next = (): void => {
    if (active >= n) return;
    const start = queue.shift();
    if (start) {
      active++;
      start();
    }
  };
  return <T>(fn: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      queue.push(() => {
        fn()
          .then(resolve, reject)
          .finally(() => {
            active--;
            next();
          });
      });
      next();
    });
}
