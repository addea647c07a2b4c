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
#include "fmath.h"

namespace {

using grokpipe::Args;
using grokpipe::FloatArray;

GROKPIPE_CLONES
void Filter(const float* __restrict g, const float* __restrict ema, float* __restrict g_out,
            float* __restrict ema_out, int64_t n, float alpha, float one_minus_alpha, float lambda) {
  for (int64_t e = 0; e < n; e++) {
    const float next = ema[e] * alpha + g[e] * one_minus_alpha;
    ema_out[e] = next;
    g_out[e] = g[e] + next * lambda;
  }
}

// emaFilter(grads[], emas[], newGrads[], newEmas[], alpha, oneMinusAlpha, lambda): all four lists
// alike in length and sizes; `emas` may be the gradients themselves (the first step).
Napi::Value EmaFilter(const Napi::CallbackInfo& info) {
  Args a(info, "emaFilter", 7);
  const std::vector<FloatArray> g = a.FloatList(0, "grads");
  const std::vector<FloatArray> ema = a.FloatList(1, "emas");
  const std::vector<FloatArray> g_out = a.FloatList(2, "newGrads");
  const std::vector<FloatArray> ema_out = a.FloatList(3, "newEmas");
  const float alpha = a.Float(4, "alpha");
  const float one_minus_alpha = a.Float(5, "oneMinusAlpha");
  const float lambda = a.Float(6, "lambda");
  a.Check(ema.size() == g.size() && g_out.size() == g.size() && ema_out.size() == g.size(),
          "grads, emas, newGrads and newEmas must be as many (" + std::to_string(g.size()) + ", " +
              std::to_string(ema.size()) + ", " + std::to_string(g_out.size()) + ", " +
              std::to_string(ema_out.size()) + ")");
  for (size_t i = 0; i < g.size() && a.ok(); i++)
    a.Check(ema[i].size == g[i].size && g_out[i].size == g[i].size && ema_out[i].size == g[i].size,
            "gradient " + std::to_string(i) + ": grads, emas, newGrads and newEmas have " +
                std::to_string(g[i].size) + ", " + std::to_string(ema[i].size) + ", " +
                std::to_string(g_out[i].size) + ", " + std::to_string(ema_out[i].size) + " elements; they must be equal");
  if (!a.ok()) return info.Env().Undefined();
  for (size_t i = 0; i < g.size(); i++)
    Filter(g[i].data, ema[i].data, g_out[i].data, ema_out[i].data, g[i].size, alpha, one_minus_alpha, lambda);
  return info.Env().Undefined();
}

}  // namespace

void InitGradFilter(Napi::Env env, Napi::Object exports) {
  exports.Set("emaFilter", Napi::Function::New(env, EmaFilter));
}
