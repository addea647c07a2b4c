// The affine map's bias, added in place after the product (src/models/native-linear.ts runs
// `x @ w` on the BLAS library, then this, inside one TF.js kernel): the same sum, fl(acc + b) per
// element, that wasm's broadcasting `Add` computes after the product, so the same bits.
#include "linear.h"

#include <cstdint>

#include "args.h"

namespace {

using grokpipe::Args;
using grokpipe::Mul;

// biasAdd(y, bias, groups, rows, d): y [groups, rows, d] += bias [groups, d], member g's rows
// with its own bias row (groups 1 for one model).
Napi::Value BiasAdd(const Napi::CallbackInfo& info) {
  Args a(info, "biasAdd", 5);
  const int64_t groups = a.Size(2, "groups");
  const int64_t rows = a.Size(3, "rows");
  const int64_t d = a.Size(4, "d");
  float* y = a.Floats(0, "y", Mul(Mul(groups, rows), d));
  const float* bias = a.Floats(1, "bias", Mul(groups, d));
  if (!a.ok()) return info.Env().Undefined();
  for (int64_t g = 0; g < groups; g++) {
    const float* b = bias + g * d;
    for (int64_t i = 0; i < rows; i++) {
      float* row = y + (g * rows + i) * d;
      for (int64_t j = 0; j < d; j++) row[j] += b[j];
    }
  }
  return info.Env().Undefined();
}

// addTo(y, r, n): y[i] += r[i] for i < n (a residual connection, after the bias: fl(fl(acc + b) + r)
// as wasm's two `Add`s).
Napi::Value AddTo(const Napi::CallbackInfo& info) {
  Args a(info, "addTo", 3);
  const int64_t n = a.Size(2, "n");
  float* y = a.Floats(0, "y", n);
  const float* r = a.Floats(1, "r", n);
  if (!a.ok()) return info.Env().Undefined();
  for (int64_t i = 0; i < n; i++) y[i] += r[i];
  return info.Env().Undefined();
}

}  // namespace

void InitLinear(Napi::Env env, Napi::Object exports) {
  exports.Set("biasAdd", Napi::Function::New(env, BiasAdd));
  exports.Set("addTo", Napi::Function::New(env, AddTo));
}
