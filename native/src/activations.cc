// GELU, SiLU and SwiGLU's gate, forward and backward, elementwise (kernels.cc states the
// contract; src/models/native-activations.ts uses them).
#include "kernels.h"

#include <cstdint>

#include "args.h"
#include "fmath.h"

namespace {

using grokpipe::Args;
using grokpipe::Exp;
using grokpipe::Sigmoid;

// GELU, tanh approximation (Hendrycks & Gimpel 2016), as x σ(u), u = 2 sqrt(2/π)(x + a x³): the
// operation order of src/models/fused.ts' TF.js form.
constexpr float kGeluA = 0.044715f;
constexpr float kGelu2C = 1.5957691216057308f;  // 2 sqrt(2/π)

GROKPIPE_CLONES
void GeluRows(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float u = (v + ((v * v) * v) * kGeluA) * kGelu2C;
    y[i] = v * Sigmoid(u);
  }
}

// d GELU/dx = σ(u) + x σ(u)(1 − σ(u)) · 2 sqrt(2/π)(1 + 3a x²).
GROKPIPE_CLONES
void GeluGradRows(const float* __restrict x, const float* __restrict dy, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float v = x[i];
    const float s = Sigmoid((v + ((v * v) * v) * kGeluA) * kGelu2C);
    const float du = ((v * v) * (3 * kGeluA) + 1.0f) * kGelu2C;
    dx[i] = dy[i] * (s + (v * (s * (1.0f - s))) * du);
  }
}

// SiLU (Elfwing et al. 2018): x σ(x); d/dx = σ(x)(1 + x (1 − σ(x))).
GROKPIPE_CLONES
void SiluRows(const float* __restrict x, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = x[i] * Sigmoid(x[i]);
}

GROKPIPE_CLONES
void SiluGradRows(const float* __restrict x, const float* __restrict dy, float* __restrict dx, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float s = Sigmoid(x[i]);
    dx[i] = dy[i] * (s * (1.0f + x[i] * (1.0f - s)));
  }
}

// SwiGLU's gating (Shazeer 2020): y = silu(g) u; du = dy silu(g), dg = dy u σ(g)(1 + g(1 − σ(g))).
GROKPIPE_CLONES
void SwigluRows(const float* __restrict g, const float* __restrict u, float* __restrict y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = (g[i] * Sigmoid(g[i])) * u[i];
}

GROKPIPE_CLONES
void SwigluGradRows(const float* __restrict g, const float* __restrict u, const float* __restrict dy,
                    float* __restrict dg, float* __restrict du, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const float s = Sigmoid(g[i]);
    du[i] = dy[i] * (g[i] * s);
    dg[i] = (dy[i] * u[i]) * (s * (1.0f + g[i] * (1.0f - s)));
  }
}

// swigluGrad(gate, up, dy, dgate, dup, n).
Napi::Value SwigluGrad(const Napi::CallbackInfo& info) {
  Args a(info, "swigluGrad", 6);
  const int64_t n = a.Size(5, "n");
  const float* g = a.Floats(0, "gate", n);
  const float* u = a.Floats(1, "up", n);
  const float* dy = a.Floats(2, "dy", n);
  float* dg = a.Floats(3, "dgate", n);
  float* du = a.Floats(4, "dup", n);
  if (a.ok()) SwigluGradRows(g, u, dy, dg, du, n);
  return info.Env().Undefined();
}

// A binding of y = F(x) elementwise: (x, y, n).
template <void (*F)(const float*, float*, int64_t)>
Napi::Value Unary(const Napi::CallbackInfo& info, const char* fn) {
  Args a(info, fn, 3);
  const int64_t n = a.Size(2, "n");
  const float* x = a.Floats(0, "x", n);
  float* y = a.Floats(1, "y", n);
  if (a.ok()) F(x, y, n);
  return info.Env().Undefined();
}

// A binding of y = F(a, b) elementwise: (a, b, y, n), the arrays named `names` in messages.
template <void (*F)(const float*, const float*, float*, int64_t)>
Napi::Value Binary(const Napi::CallbackInfo& info, const char* fn, const char* const (&names)[3]) {
  Args a(info, fn, 4);
  const int64_t n = a.Size(3, "n");
  const float* x = a.Floats(0, names[0], n);
  const float* y = a.Floats(1, names[1], n);
  float* out = a.Floats(2, names[2], n);
  if (a.ok()) F(x, y, out, n);
  return info.Env().Undefined();
}

Napi::Value Gelu(const Napi::CallbackInfo& info) { return Unary<GeluRows>(info, "gelu"); }
Napi::Value GeluGrad(const Napi::CallbackInfo& info) {
  return Binary<GeluGradRows>(info, "geluGrad", {"x", "dy", "dx"});
}
Napi::Value Silu(const Napi::CallbackInfo& info) { return Unary<SiluRows>(info, "silu"); }
Napi::Value SiluGrad(const Napi::CallbackInfo& info) {
  return Binary<SiluGradRows>(info, "siluGrad", {"x", "dy", "dx"});
}
// swiglu(gate, up, y, n).
Napi::Value Swiglu(const Napi::CallbackInfo& info) { return Binary<SwigluRows>(info, "swiglu", {"gate", "up", "y"}); }

// exp(x, y, n): fmath.h's Exp elementwise, for the accuracy test of the polynomial.
Napi::Value ExpFloat(const Napi::CallbackInfo& info) {
  Args a(info, "exp", 3);
  const int64_t n = a.Size(2, "n");
  const float* x = a.Floats(0, "x", n);
  float* y = a.Floats(1, "y", n);
  if (a.ok())
    for (int64_t i = 0; i < n; i++) y[i] = Exp(x[i]);
  return info.Env().Undefined();
}
}  // namespace

void InitActivations(Napi::Env env, Napi::Object exports) {
  exports.Set("gelu", Napi::Function::New(env, Gelu));
  exports.Set("geluGrad", Napi::Function::New(env, GeluGrad));
  exports.Set("silu", Napi::Function::New(env, Silu));
  exports.Set("siluGrad", Napi::Function::New(env, SiluGrad));
  exports.Set("swiglu", Napi::Function::New(env, Swiglu));
  exports.Set("swigluGrad", Napi::Function::New(env, SwigluGrad));
  exports.Set("exp", Napi::Function::New(env, ExpFloat));
}
