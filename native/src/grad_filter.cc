// The Grokfast-EMA gradient filter (Lee et al. 2024, "Grokfast: Accelerated Grokking by Amplifying
// Slow Gradients", arXiv 2405.20233, Algorithm 2) over all of a model's gradients in one call. For
// each element of each gradient g with its moving average ema (ema = g at the first step):
//
//   ema' = ema · α + g · (1 − α)
//   g'   = g + ema' · λ
//
// the float32 operations, in the same order, of src/models/grad-filter.ts' `emaFilter` (its TF.js
// chain), so the values are that chain's bit for bit. Elementwise, single-threaded, no fused
// multiply-adds (-ffp-contract=off); the loop vectorises without reassociating.
#include "grad_filter.h"

#include <cstdint>
#include <string>
#include <vector>

#include "args.h"

namespace {

using grokpipe::FloatList;
using grokpipe::Floats;
using grokpipe::Scalars;

__attribute__((target_clones("avx2", "default"))) void Filter(const float* __restrict g, const float* __restrict ema,
                                                                 float* __restrict g_out, float* __restrict ema_out,
                                                                 int64_t n, float alpha, float one_minus_alpha,
                                                                 float lambda) {
  for (int64_t e = 0; e < n; e++) {
    const float next = ema[e] * alpha + g[e] * one_minus_alpha;
    ema_out[e] = next;
    g_out[e] = g[e] + next * lambda;
  }
}

// emaFilter(grads[], emas[], newGrads[], newEmas[], alpha, oneMinusAlpha, lambda): all four lists
// alike in length and sizes; `emas` may be the gradients themselves (the first step).
Napi::Value EmaFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "emaFilter";
  std::vector<float*> g, ema, g_out, ema_out;
  std::vector<int64_t> ng, nema, ng_out, nema_out;
  float s[3];
  if (info.Length() < 7 || !FloatList(info[0], fn, "grads", &g, &ng) || !FloatList(info[1], fn, "emas", &ema, &nema) ||
      !FloatList(info[2], fn, "newGrads", &g_out, &ng_out) || !FloatList(info[3], fn, "newEmas", &ema_out, &nema_out) ||
      !Scalars(info, 4, 3, fn, s)) {
    if (!env.IsExceptionPending())
      Napi::TypeError::New(env, "emaFilter expects 7 arguments").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (nema != ng || ng_out != ng || nema_out != ng) {
    Napi::RangeError::New(env, "emaFilter: gradients, averages and outputs differ in number or size")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (size_t i = 0; i < g.size(); i++) Filter(g[i], ema[i], g_out[i], ema_out[i], ng[i], s[0], s[1], s[2]);
  return env.Undefined();
}

}  // namespace

void InitGradFilter(Napi::Env env, Napi::Object exports) {
  exports.Set("emaFilter", Napi::Function::New(env, EmaFilter));
}
