// Fused multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2.1-3.2.2) for short
// sequences: one call for the forward pass of every (example, head), one for the backward. The
// tensors keep the model's layout, heads being consecutive slices of `d_head = d_model / n_heads`
// columns of each row, so no transposes are made:
//
//   q [B, n_q, d_model], k and v [B, S, d_model]; per example b and head h (columns h·d_head...):
//   P = softmax(q_h k_hᵀ · scale + mask[b, h]) [n_q, S],  out_h = P v_h [n_q, d_head]
//
// Backward, from dy = dL/dout (the softmax gradient as TF.js writes it, dP·P − P·Σ_j dP·P):
//   dP = dy_h v_hᵀ,  dS = (dP⊙P − P ⊙ rowsum(dP⊙P)) · scale,
//   dq_h = dS k_h,  dk_h = dSᵀ q_h,  dv_h = Pᵀ dy_h
//
// Every (b, h) is computed alone, its sums in a fixed order (over d_head columns, or over keys
// j = 0..S-1, or queries i = 0..n_q-1), so each output element depends on its own example and head
// only, never on B (an ensemble's members folded into B stay bit-identical to their solo runs).
// Single-threaded; exp is the C library's expf (exactly 0 below -104, where expf underflows, so
// masked keys cost nothing); no fused multiply-adds (-ffp-contract=off); loops vectorise over
// columns or keys, without reassociating any sum.
#include "attention.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "args.h"

namespace {

using grokpipe::Floats;
using grokpipe::Scalars;
using grokpipe::Sizes;

// expf(x) is exactly 0 for every float x below ln(2^-150) ≈ -103.97.
constexpr float kExpZeroBelow = -104.0f;

struct Shape {
  int64_t n_q, s, d, dh;
};

// Softmax of one row in place: max, exp(x − max), sum in key order, x / sum (TF.js Softmax's steps).
inline void SoftmaxRow(float* __restrict row, int64_t s) {
  float mx = row[0];
  for (int64_t j = 1; j < s; j++) mx = row[j] > mx ? row[j] : mx;
  float sum = 0.0f;
  for (int64_t j = 0; j < s; j++) {
    const float x = row[j] - mx;
    const float e = x < kExpZeroBelow ? 0.0f : std::exp(x);
    row[j] = e;
    sum += e;
  }
  for (int64_t j = 0; j < s; j++) row[j] = row[j] / sum;
}

// out[i, :] = Σ_j w[i, j] x[j, :] for one head: w [rows, s] dense, x rows of stride d, out rows of
// stride d (d_head columns each). The sum runs over j in order, vectorised over the columns.
__attribute__((target_clones("avx2", "default"))) void Mix(const float* __restrict w, int64_t rows, int64_t s,
                                                              const float* __restrict x, int64_t d, int64_t dh,
                                                              float* __restrict out, float* __restrict acc) {
  for (int64_t i = 0; i < rows; i++) {
    for (int64_t c = 0; c < dh; c++) acc[c] = 0.0f;
    for (int64_t j = 0; j < s; j++) {
      const float wij = w[i * s + j];
      const float* xj = x + j * d;
      for (int64_t c = 0; c < dh; c++) acc[c] += wij * xj[c];
    }
    for (int64_t c = 0; c < dh; c++) out[i * d + c] = acc[c];
  }
}

// out[j, :] = Σ_i w[i, j] x[i, :] (wᵀ x) for one head: w [rows, s], x rows of stride d, out [s] rows
// of stride d. The sum runs over i in order, vectorised over the columns.
__attribute__((target_clones("avx2", "default"))) void MixT(const float* __restrict w, int64_t rows, int64_t s,
                                                               const float* __restrict x, int64_t d, int64_t dh,
                                                               float* __restrict out, float* __restrict acc) {
  for (int64_t j = 0; j < s; j++) {
    for (int64_t c = 0; c < dh; c++) acc[c] = 0.0f;
    for (int64_t i = 0; i < rows; i++) {
      const float wij = w[i * s + j];
      const float* xi = x + i * d;
      for (int64_t c = 0; c < dh; c++) acc[c] += wij * xi[c];
    }
    for (int64_t c = 0; c < dh; c++) out[j * d + c] = acc[c];
  }
}

// dots[i, j] = Σ_c a[i, c] y[j, c] for one head (a and y rows of stride d): y's head is first
// copied transposed into yt [dh, s], then the sum runs over c in order, vectorised over keys j.
__attribute__((target_clones("avx2", "default"))) void Dots(const float* __restrict a, int64_t rows,
                                                               const float* __restrict y, int64_t s, int64_t d,
                                                               int64_t dh, float* __restrict dots,
                                                               float* __restrict yt) {
  for (int64_t j = 0; j < s; j++)
    for (int64_t c = 0; c < dh; c++) yt[c * s + j] = y[j * d + c];
  for (int64_t i = 0; i < rows; i++) {
    float* row = dots + i * s;
    for (int64_t j = 0; j < s; j++) row[j] = 0.0f;
    for (int64_t c = 0; c < dh; c++) {
      const float aic = a[i * d + c];
      const float* ytc = yt + c * s;
      for (int64_t j = 0; j < s; j++) row[j] += aic * ytc[j];
    }
  }
}

// attentionForward(q, k, v, mask, out, probs, B, n_q, S, d_model, n_heads, maskB, maskH, maskQ, scale)
// out [B, n_q, d_model]; probs [B, n_heads, n_q, S] (saved for the backward); the additive mask is
// read at mask[b·maskB + h·maskH + i·maskQ + j] (strides 0 broadcast).
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "attentionForward";
  int64_t z[8];
  float scale;
  if (info.Length() < 15) {
    Napi::TypeError::New(env, "attentionForward expects 15 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!Sizes(info, 6, 8, fn, z) || !Scalars(info, 14, 1, fn, &scale)) return env.Undefined();
  const int64_t B = z[0], n_heads = z[4];
  const Shape sh{z[1], z[2], z[3], n_heads > 0 ? z[3] / n_heads : 0};
  const int64_t mb = z[5], mh = z[6], mq = z[7];
  if (n_heads == 0 || sh.d % n_heads != 0 || sh.s == 0) {
    Napi::RangeError::New(env, "attentionForward: d_model must be a multiple of n_heads, S ≥ 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int64_t mask_need = B == 0 || sh.n_q == 0 ? 0 : (B - 1) * mb + (n_heads - 1) * mh + (sh.n_q - 1) * mq + sh.s;
  float *q, *k, *v, *mask, *out, *probs;
  if (!(q = Floats(info[0], fn, "q", B * sh.n_q * sh.d)) || !(k = Floats(info[1], fn, "k", B * sh.s * sh.d)) ||
      !(v = Floats(info[2], fn, "v", B * sh.s * sh.d)) || !(mask = Floats(info[3], fn, "mask", mask_need)) ||
      !(out = Floats(info[4], fn, "out", B * sh.n_q * sh.d)) ||
      !(probs = Floats(info[5], fn, "probs", B * n_heads * sh.n_q * sh.s))) {
    return env.Undefined();
  }
  std::vector<float> kt(sh.dh * sh.s), acc(sh.dh);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < n_heads; h++) {
      const int64_t col = h * sh.dh;
      float* p = probs + (b * n_heads + h) * sh.n_q * sh.s;
      Dots(q + b * sh.n_q * sh.d + col, sh.n_q, k + b * sh.s * sh.d + col, sh.s, sh.d, sh.dh, p, kt.data());
      for (int64_t i = 0; i < sh.n_q; i++) {
        float* row = p + i * sh.s;
        const float* m = mask + b * mb + h * mh + i * mq;
        for (int64_t j = 0; j < sh.s; j++) row[j] = row[j] * scale + m[j];
        SoftmaxRow(row, sh.s);
      }
      Mix(p, sh.n_q, sh.s, v + b * sh.s * sh.d + col, sh.d, sh.dh, out + b * sh.n_q * sh.d + col, acc.data());
    }
  }
  return env.Undefined();
}

// attentionBackward(dy, q, k, v, probs, dq, dk, dv, B, n_q, S, d_model, n_heads, scale)
// dy and dq [B, n_q, d_model]; dk, dv [B, S, d_model]; probs as attentionForward saved them.
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "attentionBackward";
  int64_t z[5];
  float scale;
  if (info.Length() < 14) {
    Napi::TypeError::New(env, "attentionBackward expects 14 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (!Sizes(info, 8, 5, fn, z) || !Scalars(info, 13, 1, fn, &scale)) return env.Undefined();
  const int64_t B = z[0], n_heads = z[4];
  const Shape sh{z[1], z[2], z[3], n_heads > 0 ? z[3] / n_heads : 0};
  if (n_heads == 0 || sh.d % n_heads != 0 || sh.s == 0) {
    Napi::RangeError::New(env, "attentionBackward: d_model must be a multiple of n_heads, S ≥ 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const int64_t nq_d = B * sh.n_q * sh.d, s_d = B * sh.s * sh.d;
  float *dy, *q, *k, *v, *probs, *dq, *dk, *dv;
  if (!(dy = Floats(info[0], fn, "dy", nq_d)) || !(q = Floats(info[1], fn, "q", nq_d)) ||
      !(k = Floats(info[2], fn, "k", s_d)) || !(v = Floats(info[3], fn, "v", s_d)) ||
      !(probs = Floats(info[4], fn, "probs", B * n_heads * sh.n_q * sh.s)) || !(dq = Floats(info[5], fn, "dq", nq_d)) ||
      !(dk = Floats(info[6], fn, "dk", s_d)) || !(dv = Floats(info[7], fn, "dv", s_d))) {
    return env.Undefined();
  }
  std::vector<float> vt(sh.dh * sh.s), acc(sh.dh), ds(sh.n_q * sh.s);
  for (int64_t b = 0; b < B; b++) {
    for (int64_t h = 0; h < n_heads; h++) {
      const int64_t col = h * sh.dh;
      const int64_t qo = b * sh.n_q * sh.d + col, ko = b * sh.s * sh.d + col;
      const float* p = probs + (b * n_heads + h) * sh.n_q * sh.s;
      Dots(dy + qo, sh.n_q, v + ko, sh.s, sh.d, sh.dh, ds.data(), vt.data());  // dP
      for (int64_t i = 0; i < sh.n_q; i++) {
        float* row = ds.data() + i * sh.s;
        const float* pi = p + i * sh.s;
        float total = 0.0f;
        for (int64_t j = 0; j < sh.s; j++) {
          row[j] = row[j] * pi[j];
          total += row[j];
        }
        for (int64_t j = 0; j < sh.s; j++) row[j] = (row[j] - total * pi[j]) * scale;
      }
      Mix(ds.data(), sh.n_q, sh.s, k + ko, sh.d, sh.dh, dq + qo, acc.data());
      MixT(ds.data(), sh.n_q, sh.s, q + qo, sh.d, sh.dh, dk + ko, acc.data());
      MixT(p, sh.n_q, sh.s, dy + qo, sh.d, sh.dh, dv + ko, acc.data());
    }
  }
  return env.Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
}
