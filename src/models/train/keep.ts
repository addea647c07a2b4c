/**
 * Kept checkpoints: the steps at which a training run keeps a copy of the model's weights, so that
 * the model can be studied mid-grokking (the `keep_checkpoints` knob of the train stage).
 *
 * The default, `log`, keeps step 0 (the initialisation) and every step of the 1-2-5 series
 * (1, 2, 5, 10, 20, 50, 100, ...: three a decade, evenly spaced on a log axis within a factor of
 * 2.5) below `maxSteps`: 10 checkpoints for 1,000 steps, 12 for 3,000, 13 for 10,000. The series
 * does not depend on `maxSteps` beyond where it stops, so a longer run keeps every step a shorter
 * one kept, and can continue it (prefix reuse). The final step is never among them: the final
 * weights are kept anyway.
 */

/** Which steps to keep: `log` (the default rule above), `none`, or a list of steps (any order). */
export type KeepCheckpoints = 'log' | 'none' | readonly number[];

/**
 * The steps to keep for a run of `maxSteps` steps, ascending, each in `[0, maxSteps)`; steps of
 * a list at or beyond `maxSteps` are left out (`keepProblems` reports those beyond).
 */
export function keptSteps(keep: KeepCheckpoints, maxSteps: number): number[] {
  if (keep === 'none') return [];
  if (keep !== 'log') return [...new Set(keep)].filter((s) => s >= 0 && s < maxSteps).sort((a, b) => a - b);
  const steps = maxSteps > 0 ? [0] : [];
  for (let decade = 1; decade < maxSteps; decade *= 10) {
    for (const d of [1, 2, 5]) if (d * decade < maxSteps) steps.push(d * decade);
  }
  return steps;
}

/**
 * Problems of a `keep_checkpoints` list against `maxSteps`: a step beyond the last one can never be
 * kept (the last step itself is allowed: it is the final weights). Each as `{ index, message }`.
 */
export function keepProblems(keep: KeepCheckpoints, maxSteps: number): { index: number; message: string }[] {
  if (typeof keep === 'string') return [];
  return keep.flatMap((step, index) =>
    step > maxSteps ? [{ index, message: `step ${step} is beyond max_steps ${maxSteps}: it would never be kept` }] : [],
  );
}
