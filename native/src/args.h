// Argument reading for grokpipe's fused kernels: typed arrays checked against the lengths their
// shapes need, integers checked to be shapes. Two styles for now: the `Args` reader (kernels.cc,
// activations.cc, embedding.cc) and free functions (attention.cc, adamw.cc, grad_filter.cc).
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

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


// ---- free-function checks (attention.cc, adamw.cc, grad_filter.cc) ----


/** `v` as a Float32Array of at least `need` elements (its data), or nullptr with an error pending. */
inline float* Floats(const Napi::Value& v, const char* fn, const char* name, int64_t need) {
  Napi::Env env = v.Env();
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    Napi::TypeError::New(env, std::string(fn) + ": " + name + " must be a Float32Array").ThrowAsJavaScriptException();
    return nullptr;
  }
  Napi::Float32Array a = v.As<Napi::Float32Array>();
  if (need < 0 || static_cast<int64_t>(a.ElementLength()) < need) {
    Napi::RangeError::New(env, std::string(fn) + ": " + name + " has " + std::to_string(a.ElementLength()) +
                                   " elements, the shapes need " + std::to_string(need))
        .ThrowAsJavaScriptException();
    return nullptr;
  }
  return a.Data();
}

/**
 * `count` arguments from `info[from]` as integers in [0, 2^31) (sizes, strides), into `out`;
 * false with an error pending when one is not.
 */
inline bool Sizes(const Napi::CallbackInfo& info, size_t from, size_t count, const char* fn, int64_t* out) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < count; i++) {
    const Napi::Value v = info[from + i];
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(std::trunc(d) == d && d >= 0 && d < 2147483648.0)) {
      Napi::RangeError::New(env, std::string(fn) + ": argument " + std::to_string(from + i) +
                                     " must be an integer in [0, 2^31)")
          .ThrowAsJavaScriptException();
      return false;
    }
    out[i] = static_cast<int64_t>(d);
  }
  return true;
}

/**
 * `count` arguments from `info[from]` as floats (JavaScript numbers rounded to float32, as
 * `Math.fround`), into `out`; false with a TypeError pending when one is not a number.
 */
inline bool Scalars(const Napi::CallbackInfo& info, size_t from, size_t count, const char* fn, float* out) {
  for (size_t i = 0; i < count; i++) {
    if (!info[from + i].IsNumber()) {
      Napi::TypeError::New(info.Env(), std::string(fn) + ": argument " + std::to_string(from + i) + " must be a number")
          .ThrowAsJavaScriptException();
      return false;
    }
    out[i] = static_cast<float>(info[from + i].As<Napi::Number>().DoubleValue());
  }
  return true;
}

/** `arr`, a JS array of Float32Array, as data pointers and lengths; false with an error pending. */
inline bool FloatList(const Napi::Value& arr, const char* fn, const char* name, std::vector<float*>* data,
                      std::vector<int64_t>* sizes) {
  if (!arr.IsArray()) {
    Napi::TypeError::New(arr.Env(), std::string(fn) + ": " + name + " must be an array").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Array a = arr.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    float* x = Floats(a.Get(i), fn, name, 0);
    if (!x) return false;
    data->push_back(x);
    sizes->push_back(static_cast<int64_t>(a.Get(i).As<Napi::Float32Array>().ElementLength()));
  }
  return true;
}

}  // namespace grokpipe
