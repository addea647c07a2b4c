/**
 * The gate of the tests that need grokpipe's native addon and a BLAS library (`wasm-blas`): where
 * they are missing a test is skipped with the reason, unless `GROKPIPE_REQUIRE_NATIVE` is set (as
 * in CI): then it fails.
 */
import { loadNativeBlas } from '../src/models/native-blas.js';

const REQUIRE_NATIVE = Boolean(process.env.GROKPIPE_REQUIRE_NATIVE);
const native = loadNativeBlas();

/** Why the native path cannot run here, or undefined when it can (the addon and BLAS are loaded). */
export const nativeUnavailable: string | undefined =
  'error' in native ? `native BLAS unavailable: ${native.error}` : undefined;

/**
 * A `beforeEach` hook: skips the test with the reason where the native path cannot run.
 * @throws Error instead when `GROKPIPE_REQUIRE_NATIVE` is set.
 */
export function needNative(ctx: { skip: (note?: string) => never }): void {
  if (!nativeUnavailable) return;
  if (REQUIRE_NATIVE) throw new Error(`GROKPIPE_REQUIRE_NATIVE is set but ${nativeUnavailable}`);
  ctx.skip(nativeUnavailable);
}
