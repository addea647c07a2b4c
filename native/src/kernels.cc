// grokpipe's fused training kernels for the `wasm-blas` backend (src/models/native-*.ts): each
// replaces a chain of 4-15 TF.js kernels (and their gradients) by one pass over the data. This
// file: softmax cross-entropy, LayerNorm and RMSNorm; activations.cc: GELU, SiLU, SwiGLU;
// embedding.cc: GPT-2's token + position embedding.
//
// Every function takes Float32Array / Int32Array views (of the wasm heap: no copies), writes its
// outputs in place and returns undefined; shapes are given as integers and checked against the
// arrays' lengths (args.h's Args, as every binding of the addon). Rows are the last axis: `[rows, d]` with `rows` = the product of the
// leading axes. Contract (src/models/native-kernels.ts):
// - single-threaded, synchronous;
// - deterministic and batch-independent: each output row depends only on its own input row (and
//   the parameters); parameter gradients sum a group's rows in row order, so a member of an
//   ensemble (a group) gets the bits of its solo run;
// - portable: float32 arithmetic in a fixed order, no FMA contraction (-ffp-contract=off), no
//   reassociation; exp is fmath.h's polynomial, log and sqrt the C library's (in double). (The
//   attention kernels, attention.cc, use the C library's expf instead: its header says why.)
#include "kernels.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "fmath.h"

namespace {

using grokpipe::Args;
using grokpipe::Mul;
using grokpipe::Exp;

// ---- softmax cross-entropy ------------------------------------------------------------------

// Σ x[j] y[j] (y = nullptr: Σ x[j]) over n floats in double, as 8 interleaved partial sums added
// in a fixed order: vectorisable without reassociation, the same bits on every CPU and clone.
inline double Dot8(const float* __restrict x, const float* __restrict y, int64_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t j = 0;
  if (y) {
    for (; j + 8 <= n; j += 8)
      for (int l = 0; l < 8; l++) acc[l] += static_cast<double>(x[j + l]) * static_cast<double>(y[j + l]);
  } else {
    for (; j + 8 <= n; j += 8)
      for (int l = 0; l < 8; l++) acc[l] += static_cast<double>(x[j + l]);
  }
  double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; j < n; j++) s += y ? static_cast<double>(x[j]) * static_cast<double>(y[j]) : static_cast<double>(x[j]);
  return s;
}

// max x[j] over n ≥ 1 floats (NaNs skipped), as 8 interleaved running maxima (exact in any order).
inline float Max8(const float* __restrict x, int64_t n) {
  float acc[8];
  for (int l = 0; l < 8; l++) acc[l] = x[0];
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) acc[l] = x[j + l] > acc[l] ? x[j + l] : acc[l];
  float m = acc[0];
  for (int l = 1; l < 8; l++) m = acc[l] > m ? acc[l] : m;
  for (; j < n; j++) m = x[j] > m ? x[j] : m;
  return m;
}

// How many of x[0..n) equal m.
inline int64_t CountEqual(const float* __restrict x, int64_t n, float m) {
  int64_t c = 0;
  for (int64_t j = 0; j < n; j++) c += x[j] == m ? 1 : 0;
  return c;
}

// One row: loss = log Σ exp(x − max) + max − x[t], grad = softmax(x) − onehot(t), correct =
// [first argmax = t]. A target outside [0, v) gives loss 0 and grad 0 (as −Σ onehot·logsoftmax
// with an all-zero one-hot row) and correct 0.
GROKPIPE_CLONES
void CrossEntropyRows(const float* __restrict logits, const int32_t* __restrict targets, float* __restrict loss,
                      float* __restrict grad, float* __restrict correct, int64_t rows, int64_t v) {
  for (int64_t r = 0; r < rows; r++) {
    const float* x = logits + r * v;
    float* g = grad + r * v;
    const int32_t t = targets[r];
    const float m = Max8(x, v);
    for (int64_t j = 0; j < v; j++) g[j] = Exp(x[j] - m);
    const double sum = Dot8(g, nullptr, v);
    const float inv = static_cast<float>(1.0 / sum);
    if (t < 0 || t >= v) {
      loss[r] = 0.0f;
      correct[r] = 0.0f;
      for (int64_t j = 0; j < v; j++) g[j] = 0.0f;
      continue;
    }
    loss[r] = static_cast<float>(std::log(sum) + (static_cast<double>(m) - static_cast<double>(x[t])));
    // The first argmax is t: x[t] is the maximum and no earlier entry equals it.
    correct[r] = x[t] == m && CountEqual(x, t, m) == 0 ? 1.0f : 0.0f;
    for (int64_t j = 0; j < v; j++) g[j] = g[j] * inv;
    g[t] -= 1.0f;
  }
}

// crossEntropy(logits, targets, loss, grad, correct, rows, vocab): logits f32 [rows, vocab],
// targets i32 [rows] → loss f32 [rows], grad f32 [rows, vocab] (softmax − onehot), correct f32
// [rows] (1 where the first argmax is the target, else 0).
Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropy", 7);
  const int64_t rows = a.Size(5, "rows");
  const int64_t v = a.Size(6, "vocab");
  a.Check(v > 0 || rows == 0, "vocab must be positive");
  const int64_t n = Mul(rows, v);
  const float* logits = a.Floats(0, "logits", n);
  const int32_t* targets = a.Ints(1, "targets", rows);
  float* loss = a.Floats(2, "loss", rows);
  float* grad = a.Floats(3, "grad", n);
  float* correct = a.Floats(4, "correct", rows);
  if (a.ok()) CrossEntropyRows(logits, targets, loss, grad, correct, rows, v);
  return info.Env().Undefined();
}

GROKPIPE_CLONES
void ScaleRows(const float* __restrict dy, const float* __restrict grad, float* __restrict dx, int64_t rows,
               int64_t v) {
  for (int64_t r = 0; r < rows; r++) {
    const float s = dy[r];
    const float* g = grad + r * v;
    float* o = dx + r * v;
    for (int64_t j = 0; j < v; j++) o[j] = s * g[j];
  }
}

// crossEntropyGrad(dy, grad, dlogits, rows, vocab): dlogits[r, j] = dy[r] · grad[r, j].
Napi::Value CrossEntropyGrad(const Napi::CallbackInfo& info) {
  Args a(info, "crossEntropyGrad", 5);
  const int64_t rows = a.Size(3, "rows");
  const int64_t v = a.Size(4, "vocab");
  const int64_t n = Mul(rows, v);
  const float* dy = a.Floats(0, "dy", rows);
  const float* grad = a.Floats(1, "grad", n);
  float* dx = a.Floats(2, "dlogits", n);
  if (a.ok()) ScaleRows(dy, grad, dx, rows, v);
  return info.Env().Undefined();
}

// ---- LayerNorm and RMSNorm --------------------------------------------------------------------

// The shapes of a norm: `rows` rows of `d` in `groups` consecutive groups (ensemble members), the
// parameters `[groups, d]`.
struct NormShape {
  int64_t groups, rows, d;
};

NormShape ReadNormShape(Args& a, size_t i) {
  NormShape s{a.Size(i, "groups"), a.Size(i + 1, "rows"), a.Size(i + 2, "d")};
  a.Check(s.d > 0, "d must be positive");
  a.Check(s.groups > 0 && s.rows % s.groups == 0, "rows must be a multiple of groups (≥ 1)");
  return s;
}

// y = x̂ γ + β (β optional), x̂ = (x − μ) r, r = 1/sqrt(var + eps) (biased variance), or without
// centring (RMSNorm: μ = 0, var = mean(x²)) when !center. Statistics in double.
GROKPIPE_CLONES
void NormRows(const float* __restrict x, const float* __restrict gamma, const float* __restrict beta,
              float* __restrict y, float* __restrict xhat, float* __restrict rstd, NormShape s, double eps,
              bool center) {
  const int64_t per = s.rows / s.groups;
  for (int64_t r = 0; r < s.rows; r++) {
    const float* xr = x + r * s.d;
    const float* g = gamma + (r / per) * s.d;
    const float* b = beta ? beta + (r / per) * s.d : nullptr;
    const double mean = center ? Dot8(xr, nullptr, s.d) / static_cast<double>(s.d) : 0.0;
    const float mf = static_cast<float>(mean);
    float* h = xhat + r * s.d;
    float* o = y + r * s.d;
    for (int64_t j = 0; j < s.d; j++) h[j] = xr[j] - mf;
    const double var = Dot8(h, h, s.d) / static_cast<double>(s.d);
    const float rr = static_cast<float>(1.0 / std::sqrt(var + eps));
    rstd[r] = rr;
    for (int64_t j = 0; j < s.d; j++) h[j] = h[j] * rr;
    if (b)
      for (int64_t j = 0; j < s.d; j++) o[j] = h[j] * g[j] + b[j];
    else
      for (int64_t j = 0; j < s.d; j++) o[j] = h[j] * g[j];
  }
}

// dx = r (g − mean(g) − x̂ mean(g x̂)) with g = dy γ (without the mean(g) term when !center),
// dγ = Σ dy x̂ and dβ = Σ dy over each group's rows (in row order, in double).
GROKPIPE_CLONES
void NormGradRows(const float* __restrict dy, const float* __restrict xhat, const float* __restrict rstd,
                  const float* __restrict gamma, float* __restrict dx, float* __restrict dgamma,
                  float* __restrict dbeta, NormShape s, bool center) {
  const int64_t per = s.rows / s.groups;
  std::vector<float> gx(s.d);
  std::vector<double> accG(s.d), accB(s.d);
  for (int64_t grp = 0; grp < s.groups; grp++) {
    const float* gam = gamma + grp * s.d;
    for (int64_t j = 0; j < s.d; j++) accG[j] = accB[j] = 0;
    for (int64_t r = grp * per; r < (grp + 1) * per; r++) {
      const float* dyr = dy + r * s.d;
      const float* h = xhat + r * s.d;
      float* o = dx + r * s.d;
      for (int64_t j = 0; j < s.d; j++) gx[j] = dyr[j] * gam[j];
      const double s1 = center ? Dot8(gx.data(), nullptr, s.d) : 0.0;
      const double s2 = Dot8(gx.data(), h, s.d);
      const float m1 = center ? static_cast<float>(s1 / static_cast<double>(s.d)) : 0.0f;
      const float m2 = static_cast<float>(s2 / static_cast<double>(s.d));
      const float rr = rstd[r];
      for (int64_t j = 0; j < s.d; j++) o[j] = ((gx[j] - m1) - h[j] * m2) * rr;
      for (int64_t j = 0; j < s.d; j++) accG[j] += static_cast<double>(dyr[j] * h[j]);
      if (dbeta)
        for (int64_t j = 0; j < s.d; j++) accB[j] += dyr[j];
    }
    for (int64_t j = 0; j < s.d; j++) dgamma[grp * s.d + j] = static_cast<float>(accG[j]);
    if (dbeta)
      for (int64_t j = 0; j < s.d; j++) dbeta[grp * s.d + j] = static_cast<float>(accB[j]);
  }
}

// norm(x, gamma, beta, y, xhat, rstd, groups, rows, d, eps): x [rows, d], gamma and beta
// [groups, d] → y and xhat [rows, d], rstd [rows]. LayerNorm, or RMSNorm when beta is null.
Napi::Value Norm(const Napi::CallbackInfo& info) {
  Args a(info, "norm", 10);
  const NormShape s = ReadNormShape(a, 6);
  const double eps = a.Number(9, "eps");
  const bool layer = !info[2].IsNull();
  const int64_t n = Mul(s.rows, s.d), p = Mul(s.groups, s.d);
  const float* x = a.Floats(0, "x", n);
  const float* gamma = a.Floats(1, "gamma", p);
  const float* beta = layer ? a.Floats(2, "beta", p) : nullptr;
  float* y = a.Floats(3, "y", n);
  float* xhat = a.Floats(4, "xhat", n);
  float* rstd = a.Floats(5, "rstd", s.rows);
  if (a.ok()) NormRows(x, gamma, beta, y, xhat, rstd, s, eps, layer);
  return info.Env().Undefined();
}

// normGrad(dy, xhat, rstd, gamma, dx, dgamma, dbeta, groups, rows, d): LayerNorm's, or
// RMSNorm's when dbeta is null.
Napi::Value NormGrad(const Napi::CallbackInfo& info) {
  Args a(info, "normGrad", 10);
  const NormShape s = ReadNormShape(a, 7);
  const bool layer = !info[6].IsNull();
  const int64_t n = Mul(s.rows, s.d), p = Mul(s.groups, s.d);
  const float* dy = a.Floats(0, "dy", n);
  const float* xhat = a.Floats(1, "xhat", n);
  const float* rstd = a.Floats(2, "rstd", s.rows);
  const float* gamma = a.Floats(3, "gamma", p);
  float* dx = a.Floats(4, "dx", n);
  float* dgamma = a.Floats(5, "dgamma", p);
  float* dbeta = layer ? a.Floats(6, "dbeta", p) : nullptr;
  if (a.ok()) NormGradRows(dy, xhat, rstd, gamma, dx, dgamma, dbeta, s, layer);
  return info.Env().Undefined();
}

}  // namespace

void InitKernels(Napi::Env env, Napi::Object exports) {
  exports.Set("crossEntropy", Napi::Function::New(env, CrossEntropy));
  exports.Set("crossEntropyGrad", Napi::Function::New(env, CrossEntropyGrad));
  exports.Set("norm", Napi::Function::New(env, Norm));
  exports.Set("normGrad", Napi::Function::New(env, NormGrad));
  InitActivations(env, exports);
  InitEmbedding(env, exports);
}
