// Portable float32 math for grokpipe's fused kernels: an exp that GCC vectorises, and the
// attribute that builds a loop twice (AVX2 and the x86-64 baseline) with the choice made at load.
//
// Determinism: every function here is a fixed sequence of IEEE float32 operations (no FMA: the
// addon is compiled with -ffp-contract=off; no reassociation: no -ffast-math), so a vector lane
// and a scalar computation give the same bits, on either clone and on any CPU.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define GROKPIPE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define GROKPIPE_CLONES
#endif

namespace grokpipe {

// exp(x) for float32, after Cephes' expf (S. L. Moshier, Cephes Math Library 2.2, expf.c):
// x = n ln2 + r with n = round(x / ln2) and r reduced in two steps (ln2 = C1 + C2, C1 exact in
// 9 bits), exp(r) = 1 + r + r² P(r) with Cephes' degree-5 minimax P on |r| ≤ ln2/2, times 2ⁿ
// built in the exponent bits. Cephes documents a peak relative error of 1.7e-7 (rms 2.8e-8)
// over the float range; grokpipe's test (test/model-native-kernels.test.ts) checks ≤ 2.5e-7
// against Math.exp on [-87, 88]. Inputs above 88 give exp(88) ≈ 1.65e38 (not +inf), inputs below
// -87 (and -inf) give 0, NaN gives NaN. Branch-free, so the loops that call it vectorise.
inline float Exp(float x) {
  const float hi = 88.0f;
  const float lo = -87.0f;
  const float in = x;
  // Clamped so that n below stays in [-126, 127]; NaN becomes hi here and is restored at the end.
  x = x < hi ? x : hi;
  x = x > lo ? x : lo;
  // Round to nearest (ties to even) by the 1.5·2²³ trick: exact for |x / ln2| < 2²².
  const float magic = 12582912.0f;
  const float n = (x * 1.44269504088896341f + magic) - magic;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r2 + r + 1.0f;
  // 2ⁿ for n in [-126, 127]: the exponent field n + 127.
  const uint32_t bits = static_cast<uint32_t>(static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const float y = er * scale;
  const float z = in < lo ? 0.0f : y;
  return in != in ? in : z;
}

// The logistic function 1 / (1 + exp(-x)), with Exp above (relative error ≲ 3e-7).
inline float Sigmoid(float x) { return 1.0f / (1.0f + Exp(-x)); }

}  // namespace grokpipe
