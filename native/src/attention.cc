// Fused multi-head scaled dot-product attention (Vaswani et al. 2017, §3.2.1-3.2.2) for short
// sequences: one call for the forward pass of every (example, head), one for the backward. The
// tensors keep the model's layout, heads being consecutive slices of `d_head = d_model / n_heads`
// columns of each row, so no transposes are made; q, k and v may also be packed side by side in
// one tensor (GPT-2's c_attn output [B, S, 3·d_model]): each operand is read at its own row stride
// and column offset (Layout), and its gradient written to the same columns of its own output.
//
//   q [B, n_q, d_model], k and v [B, S, d_model]; per example b and head h (columns h·d_head...):
//   P = softmax(q_h k_hᵀ · scale + mask[b, h]) [n_q, S],  out_h = P v_h [n_q, d_head]
//
// Backward, from dy = dL/dout (the softmax gradient as TF.js writes it, dP·P − P·Σ_j dP·P):
//   dP = dy_h v_hᵀ,  dS = (dP⊙P − P ⊙ rowsum(dP⊙P)) · scale,
//   dq_h = dS k_h,  dk_h = dSᵀ q_h,  dv_h = Pᵀ dy_h
//
// Every (b, h) is computed alone, its sums in a fixed order (dot products over d_head columns in
// eight running sums added in a fixed tree; the others over keys j = 0..S-1 or queries
// i = 0..n_q-1 in order), so each output element depends on its own example and head only, never
// on B (an ensemble's members folded into B stay bit-identical to their solo runs), nor on the
// instruction set. Single-threaded; no fused multiply-adds (-ffp-contract=off).
//
// exp: the C library's expf (exactly 0 below -104, where expf underflows, so masked keys cost
// nothing), NOT fmath.h's polynomial Exp that the other fused kernels (kernels.cc, activations.cc)
// use. The two differ in the last bit for some inputs, and the training numbers on `wasm-blas`
// (train code version 3) were made with this choice: moving to one exp changes them (a new train
// code version), so it is left as it is until such a change is wanted. Arguments are read and
// checked with args.h's Args.
#include "attention.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "fmath.h"

namespace {

using grokpipe::Add;
using grokpipe::Args;
using grokpipe::Mul;

// expf(x) is exactly 0 for every float x below ln(2^-150) ≈ -103.97.
constexpr float kExpZeroBelow = -104.0f;

// The widest head the kernels take (their accumulators live on the stack).
constexpr int64_t kMaxHeadWidth = 256;

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

// The three products of a head, written once for a d_head known at compile time (DH > 0: the
// per-column loops unroll and the accumulators stay in registers) and once for any (DH = 0, dh at
// run time). Both do the same float operations in the same order, so which one runs (and which
// instruction set) never changes a value.

// out[r, :] = Σ_t w[r·wr + t·wt] x[t, :] for r < R, one head: x rows of stride xs, out rows of
// stride os (d_head columns each). With w [rows, s] dense, (R, T, wr, wt) = (rows, s, s, 1) is
// w x, and (s, rows, 1, s) is wᵀ x. The sum runs over t in order, vectorised over the columns.
template <int DH>
inline __attribute__((always_inline)) void MixHead(const float* __restrict w, int64_t R, int64_t T, int64_t wr,
                                                   int64_t wt, const float* __restrict x, int64_t xs, int64_t dh_,
                                                   float* __restrict out, int64_t os) {
  const int64_t dh = DH > 0 ? DH : dh_;
  float acc[DH > 0 ? DH : kMaxHeadWidth];
  for (int64_t r = 0; r < R; r++) {
    for (int64_t c = 0; c < dh; c++) acc[c] = 0.0f;
    for (int64_t t = 0; t < T; t++) {
      const float wrt = w[r * wr + t * wt];
      const float* xt = x + t * xs;
      for (int64_t c = 0; c < dh; c++) acc[c] += wrt * xt[c];
    }
    for (int64_t c = 0; c < dh; c++) out[r * os + c] = acc[c];
  }
}

// dots[i, j] = Σ_c a[i, c] y[j, c] for one head (a rows of stride as, y rows of stride ys): eight
// running sums over the columns c ≡ 0..7 (mod 8), in column order, then added pairwise in a fixed
// tree; vectorised over the eight sums.
template <int DH>
inline __attribute__((always_inline)) void DotRows(const float* __restrict a, int64_t rows, int64_t as,
                                                   const float* __restrict y, int64_t s, int64_t ys,
                                                   int64_t dh_, float* __restrict dots) {
  const int64_t dh = DH > 0 ? DH : dh_;
  for (int64_t i = 0; i < rows; i++) {
    const float* ai = a + i * as;
    for (int64_t j = 0; j < s; j++) {
      const float* yj = y + j * ys;
      float lane[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f};
      int64_t c = 0;
      for (; c + 8 <= dh; c += 8)
        for (int l = 0; l < 8; l++) lane[l] += ai[c + l] * yj[c + l];
      for (int l = 0; c < dh; c++, l++) lane[l] += ai[c] * yj[c];
      dots[i * s + j] = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    }
  }
}

#define GROKPIPE_BY_DH(F, ...) \
  switch (dh) {                \
    case 8:                    \
      return F<8>(__VA_ARGS__);  \
    case 16:                   \
      return F<16>(__VA_ARGS__); \
    case 32:                   \
      return F<32>(__VA_ARGS__); \
    case 64:                   \
      return F<64>(__VA_ARGS__); \
    default:                   \
      return F<0>(__VA_ARGS__);  \
  }

// w x (out [rows, dh]) for w [rows, s] and x [s, dh] (see MixHead).
GROKPIPE_CLONES
void Mix(const float* w, int64_t rows, int64_t s, const float* x, int64_t xs, int64_t dh, float* out,
         int64_t os) {
  GROKPIPE_BY_DH(MixHead, w, rows, s, s, 1, x, xs, dh, out, os)
}

// wᵀ x (out [s, dh]) for w [rows, s] and x [rows, dh] (see MixHead).
GROKPIPE_CLONES
void MixT(const float* w, int64_t rows, int64_t s, const float* x, int64_t xs, int64_t dh, float* out,
          int64_t os) {
  GROKPIPE_BY_DH(MixHead, w, s, rows, 1, s, x, xs, dh, out, os)
}

GROKPIPE_CLONES
void Dots(const float* a, int64_t rows, int64_t as, const float* y, int64_t s, int64_t ys, int64_t dh,
          float* dots) {
  GROKPIPE_BY_DH(DotRows, a, rows, as, y, s, ys, dh, dots)
}

// Where q, k and v (and their gradients) live: each operand's rows have `stride` floats, of which
// the model's d_model columns start at `offset` (0 and d_model for separate tensors; a packed
// [.., 3·d_model] qkv has strides 3·d_model and offsets 0, d_model, 2·d_model).
struct Layout {
  int64_t q_stride, q_offset, k_stride, k_offset, v_stride, v_offset;
};

// The shared size arguments from position `i`: B, n_q, S, d_model, n_heads, then the Layout's
// six values, checked to fit together.
struct Dims {
  int64_t batch, heads;
  Shape sh;
  Layout lay;
};

Dims ReadDims(Args& a, size_t i) {
  Dims x{a.Size(i, "B"), 0, {a.Size(i + 1, "n_q"), a.Size(i + 2, "S"), a.Size(i + 3, "d_model"), 0}, {}};
  x.heads = a.Size(i + 4, "n_heads");
  x.lay = Layout{a.Size(i + 5, "qStride"), a.Size(i + 6, "qOffset"), a.Size(i + 7, "kStride"),
                 a.Size(i + 8, "kOffset"),  a.Size(i + 9, "vStride"), a.Size(i + 10, "vOffset")};
  a.Check(x.heads > 0 && x.sh.d % x.heads == 0, "d_model must be a multiple of n_heads (≥ 1)");
  x.sh.dh = x.heads > 0 ? x.sh.d / x.heads : 0;
  a.Check(x.sh.dh <= kMaxHeadWidth, "d_head must be at most " + std::to_string(kMaxHeadWidth));
  a.Check(x.sh.s > 0, "S must be at least 1");
  const char* names[] = {"q", "k", "v"};
  const int64_t strides[] = {x.lay.q_stride, x.lay.k_stride, x.lay.v_stride};
  const int64_t offsets[] = {x.lay.q_offset, x.lay.k_offset, x.lay.v_offset};
  for (int o = 0; o < 3; o++)
    a.Check(offsets[o] + x.sh.d <= strides[o], std::string(names[o]) + "'s d_model columns from offset " +
                                                   std::to_string(offsets[o]) + " overrun its rows of " +
                                                   std::to_string(strides[o]));
  return x;
}

// attentionForward(q, k, v, mask, out, probs, B, n_q, S, d_model, n_heads, qStride, qOffset,
//                  kStride, kOffset, vStride, vOffset, maskB, maskH, maskQ, scale)
// q [B, n_q, qStride], k [B, S, kStride], v [B, S, vStride] (see Layout); out [B, n_q, d_model];
// probs [B, n_heads, n_q, S] (saved for the backward); the additive mask is read at
// mask[b·maskB + h·maskH + i·maskQ + j] (strides 0 broadcast).
Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionForward", 21);
  const Dims x = ReadDims(a, 6);
  const int64_t ms[3] = {a.Size(17, "maskB"), a.Size(18, "maskH"), a.Size(19, "maskQ")};
  const float scale = a.Float(20, "scale");
  const int64_t B = x.batch, n_heads = x.heads;
  const Shape& sh = x.sh;
  const Layout& lay = x.lay;
  // The last mask element read, plus one: Σ (size − 1) · stride over (b, h, i), plus S.
  const int64_t mask_need = B == 0 || sh.n_q == 0
                                ? 0
                                : Add(Add(Mul(B - 1, ms[0]), Mul(n_heads - 1, ms[1])),
                                      Add(Mul(sh.n_q - 1, ms[2]), sh.s));
  const int64_t nq = Mul(B, sh.n_q), ns = Mul(B, sh.s);
  const float* q = a.Floats(0, "q", Mul(nq, lay.q_stride));
  const float* k = a.Floats(1, "k", Mul(ns, lay.k_stride));
  const float* v = a.Floats(2, "v", Mul(ns, lay.v_stride));
  const float* mask = a.Floats(3, "mask", mask_need);
  float* out = a.Floats(4, "out", Mul(nq, sh.d));
  float* probs = a.Floats(5, "probs", Mul(Mul(Mul(B, n_heads), sh.n_q), sh.s));
  if (!a.ok()) return info.Env().Undefined();
  for (int64_t b = 0; b < B; b++) {
    const float* qb = q + b * sh.n_q * lay.q_stride + lay.q_offset;
    const float* kb = k + b * sh.s * lay.k_stride + lay.k_offset;
    const float* vb = v + b * sh.s * lay.v_stride + lay.v_offset;
    for (int64_t h = 0; h < n_heads; h++) {
      const int64_t col = h * sh.dh;
      float* p = probs + (b * n_heads + h) * sh.n_q * sh.s;
      Dots(qb + col, sh.n_q, lay.q_stride, kb + col, sh.s, lay.k_stride, sh.dh, p);
      for (int64_t i = 0; i < sh.n_q; i++) {
        float* row = p + i * sh.s;
        const float* m = mask + b * ms[0] + h * ms[1] + i * ms[2];
        for (int64_t j = 0; j < sh.s; j++) row[j] = row[j] * scale + m[j];
        SoftmaxRow(row, sh.s);
      }
      Mix(p, sh.n_q, sh.s, vb + col, lay.v_stride, sh.dh, out + b * sh.n_q * sh.d + col, sh.d);
    }
  }
  return info.Env().Undefined();
}

// attentionBackward(dy, q, k, v, probs, dq, dk, dv, B, n_q, S, d_model, n_heads, qStride, qOffset,
//                   kStride, kOffset, vStride, vOffset, scale)
// dy [B, n_q, d_model]; q, k, v and probs as attentionForward had them; dq, dk, dv in the layout of
// q, k, v (views of one buffer where the operands are one packed tensor: each gets its columns).
Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  Args a(info, "attentionBackward", 20);
  const Dims x = ReadDims(a, 8);
  const float scale = a.Float(19, "scale");
  const int64_t B = x.batch, n_heads = x.heads;
  const Shape& sh = x.sh;
  const Layout& lay = x.lay;
  const int64_t nq = Mul(B, sh.n_q), ns = Mul(B, sh.s);
  const float* dy = a.Floats(0, "dy", Mul(nq, sh.d));
  const float* q = a.Floats(1, "q", Mul(nq, lay.q_stride));
  const float* k = a.Floats(2, "k", Mul(ns, lay.k_stride));
  const float* v = a.Floats(3, "v", Mul(ns, lay.v_stride));
  const float* probs = a.Floats(4, "probs", Mul(Mul(Mul(B, n_heads), sh.n_q), sh.s));
  float* dq = a.Floats(5, "dq", Mul(nq, lay.q_stride));
  float* dk = a.Floats(6, "dk", Mul(ns, lay.k_stride));
  float* dv = a.Floats(7, "dv", Mul(ns, lay.v_stride));
  if (!a.ok()) return info.Env().Undefined();
  std::vector<float> ds(sh.n_q * sh.s);
  for (int64_t b = 0; b < B; b++) {
    const int64_t qo = b * sh.n_q * lay.q_stride + lay.q_offset;
    const int64_t ko = b * sh.s * lay.k_stride + lay.k_offset;
    const int64_t vo = b * sh.s * lay.v_stride + lay.v_offset;
    const float* dyb = dy + b * sh.n_q * sh.d;
    for (int64_t h = 0; h < n_heads; h++) {
      const int64_t col = h * sh.dh;
      const float* p = probs + (b * n_heads + h) * sh.n_q * sh.s;
      Dots(dyb + col, sh.n_q, sh.d, v + vo + col, sh.s, lay.v_stride, sh.dh, ds.data());  // dP
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
      Mix(ds.data(), sh.n_q, sh.s, k + ko + col, lay.k_stride, sh.dh, dq + qo + col, lay.q_stride);
      MixT(ds.data(), sh.n_q, sh.s, q + qo + col, lay.q_stride, sh.dh, dk + ko + col, lay.k_stride);
      MixT(p, sh.n_q, sh.s, dyb + col, sh.d, sh.dh, dv + vo + col, lay.v_stride);
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void InitAttention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward));
}
