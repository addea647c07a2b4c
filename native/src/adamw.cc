// The AdamW update (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization",
// Algorithm 2, as PyTorch's torch.optim.AdamW) of a run of parameters in one call, and the global
// gradient norm it clips by. For each element, with per-member scalars (an ensemble's members are
// the parameters' leading axis; one model is one member):
//
//   coef = min(clip / (‖g‖₂ + 1e-6), 1)     (1 when clipping is off)
//   g'   = g · coef
//   m'   = m · β₁ + g' · (1 − β₁)
//   v'   = v · β₂ + g'² · (1 − β₂)
//   θ'   = θ · decay − (m' / (sqrt(v') · 1/sqrt(1 − β₂ᵗ) + ε)) · step
//
// with decay = 1 − lr_t · λ (1 for parameters that do not decay) and step = lr_t / (1 − β₁ᵗ),
// computed by the caller (src/models/native-adamw.ts). These are the float32 operations, in the
// same order, of adamw.ts' TF.js chain, so an update is that chain's bit for bit. So is the norm:
// each gradient's squares summed in float32 in index order (TF.js wasm's Sum), those sums added
// in parameter order (AddN), within each member's slice, so it depends on the member's values only. Single-threaded; no fused
// multiply-adds (-ffp-contract=off); the elementwise loop vectorises without reassociating.
#include "adamw.h"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "args.h"
#include "fmath.h"

namespace {

using grokpipe::Args;
using grokpipe::FloatArray;
using grokpipe::Mul;

struct Moments {
  float b1, b1c, b2, b2c, eps, inv_bc2;
};

GROKPIPE_CLONES
void Update(const float* __restrict p, const float* __restrict g, const float* __restrict m,
            const float* __restrict v, float* __restrict pn, float* __restrict mn, float* __restrict vn,
            int64_t n, float coef, float decay, float step, Moments c) {
  for (int64_t e = 0; e < n; e++) {
    const float gc = g[e] * coef;
    const float m_new = m[e] * c.b1 + gc * c.b1c;
    const float v_new = v[e] * c.b2 + (gc * gc) * c.b2c;
    const float denom = std::sqrt(v_new) * c.inv_bc2 + c.eps;
    pn[e] = p[e] * decay - (m_new / denom) * step;
    mn[e] = m_new;
    vn[e] = v_new;
  }
}

// Σ x² of n values in float32, in index order: TF.js wasm's Sum of Square, bit for bit.
float SumSquares(const float* __restrict x, int64_t n) {
  float total = 0.0f;
  for (int64_t e = 0; e < n; e++) total += x[e] * x[e];
  return total;
}

// gradNorm(grads: Float32Array[], members, out: Float32Array) -> out[m] = sqrt(Σ_i Σ g_i[m]²), each
// gradient holding `members` equal slices, one a member.
Napi::Value GradNorm(const Napi::CallbackInfo& info) {
  Args a(info, "gradNorm", 3);
  const std::vector<FloatArray> g = a.FloatList(0, "grads");
  const int64_t members = a.Size(1, "members");
  float* out = a.Floats(2, "out", members);
  a.Check(members > 0, "members must be at least 1");
  for (size_t i = 0; i < g.size(); i++)
    a.Check(members == 0 || g[i].size % members == 0, "grads[" + std::to_string(i) + "] has " +
                                                          std::to_string(g[i].size) +
                                                          " elements, not a multiple of members " +
                                                          std::to_string(members));
  if (!a.ok()) return info.Env().Undefined();
  for (int64_t m = 0; m < members; m++) {
    float total = 0.0f;
    for (const FloatArray& gi : g) total += SumSquares(gi.data + m * (gi.size / members), gi.size / members);
    out[m] = std::sqrt(total);
  }
  return info.Env().Undefined();
}

// adamwUpdate(params[], grads[], newParams[], decays: Uint8Array, m, v, newM, newV, norm, decay,
//             step, members, clip, b1, b1c, b2, b2c, eps, invBc2Sqrt)
// Parameter i (size n_i = members · s_i) has moments at offset o_i = s_0 + ... + s_{i-1} of each
// member's row of the flat moments [members, Σ s_i]; decays[i] says whether it decays. norm, decay
// and step are Float32Array [members]; clip 0 turns clipping off.
Napi::Value AdamWUpdate(const Napi::CallbackInfo& info) {
  Args a(info, "adamwUpdate", 19);
  const std::vector<FloatArray> p = a.FloatList(0, "params");
  const std::vector<FloatArray> g = a.FloatList(1, "grads");
  const std::vector<FloatArray> pn = a.FloatList(2, "newParams");
  const int64_t count = static_cast<int64_t>(p.size());
  const uint8_t* decays = a.Bytes(3, "decays", count);
  const int64_t members = a.Size(11, "members");
  const float clip = a.Float(12, "clip");
  const Moments c{a.Float(13, "b1"), a.Float(14, "b1c"), a.Float(15, "b2"),
                  a.Float(16, "b2c"), a.Float(17, "eps"), a.Float(18, "invBc2Sqrt")};
  a.Check(g.size() == p.size() && pn.size() == p.size(),
          "params, grads and newParams must be as many (" + std::to_string(p.size()) + ", " +
              std::to_string(g.size()) + ", " + std::to_string(pn.size()) + ")");
  a.Check(members > 0, "members must be at least 1");
  int64_t total = 0;
  for (size_t i = 0; i < p.size() && a.ok(); i++) {
    a.Check(p[i].size % members == 0 && g[i].size == p[i].size && pn[i].size == p[i].size,
            "parameter " + std::to_string(i) + ": params, grads and newParams have " + std::to_string(p[i].size) +
                ", " + std::to_string(g[i].size) + ", " + std::to_string(pn[i].size) +
                " elements; they must be equal, a multiple of members " + std::to_string(members));
    total += p[i].size / members;
  }
  float* m = a.Floats(4, "m", Mul(members, total));
  float* v = a.Floats(5, "v", Mul(members, total));
  float* mn = a.Floats(6, "newM", Mul(members, total));
  float* vn = a.Floats(7, "newV", Mul(members, total));
  const float* norm = a.Floats(8, "norm", members);
  const float* decay = a.Floats(9, "decay", members);
  const float* step = a.Floats(10, "step", members);
  if (!a.ok()) return info.Env().Undefined();
  for (int64_t mb = 0; mb < members; mb++) {
    float coef = 1.0f;
    if (clip > 0.0f) {
      const float r = clip / (norm[mb] + 1e-6f);
      coef = r < 1.0f ? r : 1.0f;
    }
    int64_t at = mb * total;
    for (int64_t i = 0; i < count; i++) {
      const int64_t size = p[i].size / members, o = mb * size;
      Update(p[i].data + o, g[i].data + o, m + at, v + at, pn[i].data + o, mn + at, vn + at, size, coef,
             decays[i] ? decay[mb] : 1.0f, step[mb], c);
      at += size;
    }
  }
  return info.Env().Undefined();
}

}  // namespace

void InitAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("gradNorm", Napi::Function::New(env, GradNorm));
  exports.Set("adamwUpdate", Napi::Function::New(env, AdamWUpdate));
}
