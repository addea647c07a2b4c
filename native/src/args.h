// Argument checking for every function of grokpipe's addon (blas.cc and the fused kernels): the
// `Args` reader. A binding makes one `Args` (its JavaScript name and argument count), reads each
// argument by position and name (sizes, numbers, flags, float32 scalars, typed arrays checked against the
// lengths its shapes need, lists of Float32Arrays), adds its own `Check`s, and computes only when
// `ok()`. The first problem becomes a pending JavaScript exception naming the function and the
// argument and what was expected (for arrays: the elements there are and the elements needed); every later read is then a no-op.
#pragma once

#include <napi.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace grokpipe {

// a * b for sizes a, b ≥ 0, or -1 on int64 overflow or when either is already -1 (so that size
// checks cannot wrap around).
inline int64_t Mul(int64_t a, int64_t b) {
  int64_t p;
  return a < 0 || b < 0 || __builtin_mul_overflow(a, b, &p) ? -1 : p;
}

// a + b for sizes a, b ≥ 0, or -1 on int64 overflow or when either is already -1.
inline int64_t Add(int64_t a, int64_t b) {
  int64_t s;
  return a < 0 || b < 0 || __builtin_add_overflow(a, b, &s) ? -1 : s;
}

// One Float32Array of a list argument: its data and its number of elements.
struct FloatArray {
  float* data;
  int64_t size;
};

// The arguments of one call of the addon function `fn`, read in order.
class Args {
 public:
  // Fewer than `arity` arguments is a TypeError "<fn> expects <arity> arguments".
  Args(const Napi::CallbackInfo& info, const char* fn, size_t arity) : info_(info), fn_(fn) {
    if (info.Length() < arity) {
      Napi::TypeError::New(info.Env(), std::string(fn) + " expects " + std::to_string(arity) +
                                         (arity == 1 ? " argument" : " arguments"))
          .ThrowAsJavaScriptException();
      ok_ = false;
    }
  }

  // Whether every read and check so far passed (else an exception is pending).
  bool ok() const { return ok_; }

  // A JavaScript number (TypeError otherwise).
  double Number(size_t i, const char* name) {
    if (!ok_) return 0;
    if (!info_[i].IsNumber()) return Fail(true, name, "a number"), 0;
    return info_[i].As<Napi::Number>().DoubleValue();
  }

  // The truthiness of an argument (as JavaScript's Boolean(x)): a flag; false after a problem.
  bool Flag(size_t i) { return ok_ && info_[i].ToBoolean().Value(); }

  // A number rounded to float32 (as JavaScript's Math.fround): a kernel's scalar.
  float Float(size_t i, const char* name) { return static_cast<float>(Number(i, name)); }

  // An integer of either sign, |v| < 2^53 (RangeError otherwise).
  int64_t Integer(size_t i, const char* name) {
    const double v = Number(i, name);
    if (ok_ && !(std::trunc(v) == v && std::fabs(v) < 9007199254740992.0))
      Fail(false, name, "an integer");
    return ok_ ? static_cast<int64_t>(v) : 0;
  }

  // A non-negative integer < 2^53 (a size, stride or offset; RangeError otherwise).
  int64_t Size(size_t i, const char* name) {
    const double v = Number(i, name);
    if (ok_ && !(v >= 0 && std::trunc(v) == v && v < 9007199254740992.0))
      Fail(false, name, "a non-negative integer");
    return ok_ ? static_cast<int64_t>(v) : 0;
  }

  // A Float32Array of at least `need` elements (need -1: the shapes' sizes overflowed), its data.
  float* Floats(size_t i, const char* name, int64_t need) {
    return Array<float>(info_[i], name, need, napi_float32_array, "a Float32Array");
  }

  // An Int32Array of at least `need` elements, its data.
  const int32_t* Ints(size_t i, const char* name, int64_t need) {
    return Array<int32_t>(info_[i], name, need, napi_int32_array, "an Int32Array");
  }

  // A Uint8Array of at least `need` elements (flags), its data.
  const uint8_t* Bytes(size_t i, const char* name, int64_t need) {
    return Array<uint8_t>(info_[i], name, need, napi_uint8_array, "a Uint8Array");
  }

  // A JavaScript array of Float32Arrays of any lengths (a model's parameters or gradients).
  std::vector<FloatArray> FloatList(size_t i, const char* name) {
    std::vector<FloatArray> list;
    if (!ok_) return list;
    if (!info_[i].IsArray()) return Fail(true, name, "an array of Float32Arrays"), list;
    const Napi::Array a = info_[i].As<Napi::Array>();
    for (uint32_t k = 0; k < a.Length() && ok_; k++) {
      const std::string item = std::string(name) + "[" + std::to_string(k) + "]";
      const Napi::Value v = a.Get(k);
      float* data = Array<float>(v, item.c_str(), 0, napi_float32_array, "a Float32Array");
      if (ok_) list.push_back({data, static_cast<int64_t>(v.As<Napi::TypedArray>().ElementLength())});
    }
    return list;
  }

  // A RangeError "<fn>: <message>" unless `cond` (nothing when an earlier problem is pending).
  void Check(bool cond, const std::string& message) {
    if (ok_ && !cond) {
      Napi::RangeError::New(info_.Env(), std::string(fn_) + ": " + message).ThrowAsJavaScriptException();
      ok_ = false;
    }
  }

 private:
  template <typename T>
  T* Array(const Napi::Value& v, const char* name, int64_t need, napi_typedarray_type type, const char* what) {
    if (!ok_) return nullptr;
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
      Fail(true, name, what);
      return nullptr;
    }
    Napi::TypedArrayOf<T> a = v.As<Napi::TypedArrayOf<T>>();
    Check(need >= 0, "the shapes' sizes overflow");
    Check(static_cast<uint64_t>(a.ElementLength()) >= static_cast<uint64_t>(need),
          std::string(name) + " has " + std::to_string(a.ElementLength()) + " elements, the shapes need " +
              std::to_string(need));
    return ok_ ? a.Data() : nullptr;
  }

  // "<fn>: <name> must be <what>" as a TypeError (`type`) or RangeError.
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

}  // namespace grokpipe
