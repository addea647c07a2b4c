// Argument checks shared by the fused kernels (attention.cc, adamw.cc): each returns false (or
// nullptr) with a JavaScript exception pending, so the binding returns at once and the caller's
// JavaScript sees a TypeError or RangeError naming the function and argument, never a crash.
#pragma once
#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace grokpipe {

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
