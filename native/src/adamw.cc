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

namespace {

using grokpipe::FloatList;
using grokpipe::Floats;
using grokpipe::Scalars;
using grokpipe::Sizes;

struct Moments {
  float b1, b1c, b2, b2c, eps, inv_bc2;
};

__attribute__((target_clones("avx2", "default"))) void Update(const float* __restrict p, const float* __restrict g,
                                                                 const float* __restrict m, const float* __restrict v,
                                                                 float* __restrict pn, float* __restrict mn,
                                                                 float* __restrict vn, int64_t n, float coef,
                                                                 float decay, float step, Moments c) {
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
  Napi::Env env = info.Env();
  const char* fn = "gradNorm";
  std::vector<float*> g;
  std::vector<int64_t> n;
  int64_t members;
  if (info.Length() < 3 || !FloatList(info[0], fn, "grads", &g, &n) || !Sizes(info, 1, 1, fn, &members))
    return env.Undefined();
  float* out = Floats(info[2], fn, "out", members);
  if (!out) return env.Undefined();
  for (int64_t size : n) {
    if (members == 0 || size % members != 0) {
      Napi::RangeError::New(env, "gradNorm: a gradient's size is not a multiple of the members").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  for (int64_t m = 0; m < members; m++) {
    float total = 0.0f;
    for (size_t i = 0; i < g.size(); i++) total += SumSquares(g[i] + m * (n[i] / members), n[i] / members);
    out[m] = std::sqrt(total);
  }
  return env.Undefined();
}

// adamwUpdate(params[], grads[], newParams[], decays: Uint8Array, m, v, newM, newV, norm, decay,
//             step, members, clip, b1, b1c, b2, b2c, eps, invBc2Sqrt)
// Parameter i (size n_i = members · s_i) has moments at offset o_i = s_0 + ... + s_{i-1} of each
// member's row of the flat moments [members, Σ s_i]; decays[i] says whether it decays. norm, decay
// and step are Float32Array [members]; clip 0 turns clipping off.
Napi::Value AdamWUpdate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "adamwUpdate";
  if (info.Length() < 19) {
    Napi::TypeError::New(env, "adamwUpdate expects 19 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::vector<float*> p, g, pn;
  std::vector<int64_t> np, ng, npn;
  int64_t members;
  float s[7];
  if (!FloatList(info[0], fn, "params", &p, &np) || !FloatList(info[1], fn, "grads", &g, &ng) ||
      !FloatList(info[2], fn, "newParams", &pn, &npn) || !Sizes(info, 11, 1, fn, &members) ||
      !Scalars(info, 12, 7, fn, s)) {
    return env.Undefined();
  }
  if (!info[3].IsTypedArray() || info[3].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
      info[3].As<Napi::Uint8Array>().ElementLength() != p.size() || g.size() != p.size() || pn.size() != p.size() ||
      members == 0) {
    Napi::RangeError::New(env, "adamwUpdate: params, grads, newParams and decays must match, members ≥ 1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint8_t* decays = info[3].As<Napi::Uint8Array>().Data();
  int64_t total = 0;
  for (size_t i = 0; i < p.size(); i++) {
    if (np[i] % members != 0 || ng[i] != np[i] || npn[i] != np[i]) {
      Napi::RangeError::New(env, "adamwUpdate: parameter " + std::to_string(i) + "'s sizes differ").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    total += np[i] / members;
  }
  float *m, *v, *mn, *vn, *norm, *decay, *step;
  if (!(m = Floats(info[4], fn, "m", members * total)) || !(v = Floats(info[5], fn, "v", members * total)) ||
      !(mn = Floats(info[6], fn, "newM", members * total)) || !(vn = Floats(info[7], fn, "newV", members * total)) ||
      !(norm = Floats(info[8], fn, "norm", members)) || !(decay = Floats(info[9], fn, "decay", members)) ||
      !(step = Floats(info[10], fn, "step", members))) {
    return env.Undefined();
  }
  const float clip = s[0];
  const Moments c{s[1], s[2], s[3], s[4], s[5], s[6]};
  for (int64_t mb = 0; mb < members; mb++) {
    float coef = 1.0f;
    if (clip > 0.0f) {
      const float r = clip / (norm[mb] + 1e-6f);
      coef = r < 1.0f ? r : 1.0f;
    }
    int64_t at = mb * total;
    for (size_t i = 0; i < p.size(); i++) {
      const int64_t size = np[i] / members, o = mb * size;
      Update(p[i] + o, g[i] + o, m + at, v + at, pn[i] + o, mn + at, vn + at, size, coef, decays[i] ? decay[mb] : 1.0f,
             step[mb], c);
      at += size;
    }
  }
  return env.Undefined();
}

}  // namespace

void InitAdamW(Napi::Env env, Napi::Object exports) {
  exports.Set("gradNorm", Napi::Function::New(env, GradNorm));
  exports.Set("adamwUpdate", Napi::Function::New(env, AdamWUpdate));
}
