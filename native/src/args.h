// Argument reading for grokpipe's fused kernels (kernels.cc, activations.cc, embedding.cc):
// typed arrays checked against the lengths their shapes need, integers checked to be shapes.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>

namespace grokpipe {

// The arguments of one call, read in order; the first problem becomes a pending JS exception
// (TypeError or RangeError naming the function and argument) and every later read is a no-op.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}

  bool ok() const { return ok_; }

  // A non-negative integer (a shape).
  int64_t Size(size_t i, const char* name) {
    const double v = Number(i, name);
    if (ok_ && !(v >= 0 && std::trunc(v) == v && v < 9007199254740992.0)) Fail(false, name, "a non-negative integer");
    return ok_ ? static_cast<int64_t>(v) : 0;
  }

  double Number(size_t i, const char* name) {
    if (!ok_) return 0;
    if (i >= info_.Length() || !info_[i].IsNumber()) return Fail(true, name, "a number"), 0;
    return info_[i].As<Napi::Number>().DoubleValue();
  }

  float* Floats(size_t i, const char* name, int64_t need) { return Array<float>(i, name, need, napi_float32_array); }

  const int32_t* Ints(size_t i, const char* name, int64_t need) {
    return Array<int32_t>(i, name, need, napi_int32_array);
  }

  // Throws a RangeError with `message` unless `cond`.
  void Check(bool cond, const std::string& message) {
    if (ok_ && !cond) {
      Napi::RangeError::New(info_.Env(), std::string(fn_) + ": " + message).ThrowAsJavaScriptException();
      ok_ = false;
    }
  }

 private:
  template <typename T>
  T* Array(size_t i, const char* name, int64_t need, napi_typedarray_type type) {
    if (!ok_) return nullptr;
    if (i >= info_.Length() || !info_[i].IsTypedArray() || info_[i].As<Napi::TypedArray>().TypedArrayType() != type) {
      Fail(true, name, type == napi_float32_array ? "a Float32Array" : "an Int32Array");
      return nullptr;
    }
    Napi::TypedArrayOf<T> a = info_[i].As<Napi::TypedArrayOf<T>>();
    Check(need >= 0 && static_cast<uint64_t>(a.ElementLength()) >= static_cast<uint64_t>(need),
          std::string(name) + " has " + std::to_string(a.ElementLength()) + " elements, the shapes need " +
              std::to_string(need));
    return ok_ ? a.Data() : nullptr;
  }

  void Fail(bool type, const char* name, const char* what) {
    const std::string message = std::string(fn_) + ": " + name + " must be " + what;
    if (type)
      Napi::TypeError::New(info_.Env(), message).ThrowAsJavaScriptException();
    else
      Napi::RangeError::New(info_.Env(), message).ThrowAsJavaScriptException();
    ok_ = false;
  }

  const Napi::CallbackInfo& info_;
  const char* fn_;
  bool ok_ = true;
};

// a * b, or -1 on int64 overflow (so that size checks cannot wrap).
inline int64_t Mul(int64_t a, int64_t b) {
  int64_t p;
  return __builtin_mul_overflow(a, b, &p) ? -1 : p;
}

}  // namespace grokpipe
