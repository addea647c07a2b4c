// grokpipe's native matrix products: TF.js `BatchMatMul` on a CBLAS library (OpenBLAS, BLIS, MKL)
// opened at run time with dlopen, so this addon builds with no BLAS headers or libraries and only
// fails at `load` where none is installed. Tensors are passed as Float32Array views (of the wasm
// heap or of JS memory): no copies. Everything is synchronous and runs on the calling thread plus
// the BLAS library's own threads. Also the addon's module init, which adds each topic's fused
// kernels (kernels.h, attention.h, adamw.h, grad_filter.h); every function's arguments are read
// with args.h's Args.
#include <napi.h>
#include <dlfcn.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "adamw.h"
#include "args.h"
#include "attention.h"
#include "grad_filter.h"
#include "kernels.h"
#include "linear.h"
#include "positions.h"

namespace {

// The CBLAS ABI (netlib cblas.h): enums are plain ints.
constexpr int kRowMajor = 101;
constexpr int kNoTrans = 111;
constexpr int kTrans = 112;

using SgemmFn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha,
                         const float* a, int lda, const float* b, int ldb, float beta, float* c, int ldc);
using SetThreadsFn = void (*)(int);
using GetThreadsFn = int (*)();
using GetStringFn = char* (*)();

struct Blas {
  void* handle = nullptr;
  std::string path;
  SgemmFn sgemm = nullptr;
  SetThreadsFn set_threads = nullptr;  // openblas_set_num_threads, bli_thread_set_num_threads, MKL_Set_Num_Threads
  GetThreadsFn get_threads = nullptr;
  GetStringFn get_config = nullptr;    // openblas_get_config
  GetStringFn get_corename = nullptr;  // openblas_get_corename
};

Blas blas;

template <typename T>
T Symbol(void* handle, const char* name) {
  return reinterpret_cast<T>(dlsym(handle, name));
}

// load(candidates: string[]) -> { path, config, corename, threads }
// Opens the first candidate that exports cblas_sgemm. Throws an Error listing each failure.
Napi::Value Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray()) {
    Napi::TypeError::New(env, "load(candidates: string[]) expects an array of library names").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (blas.handle == nullptr) {
    Napi::Array candidates = info[0].As<Napi::Array>();
    std::string failures;
    for (uint32_t i = 0; i < candidates.Length(); i++) {
      std::string name = candidates.Get(i).ToString().Utf8Value();
      void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle == nullptr) {
        const char* why = dlerror();
        failures += "\n  " + name + ": " + (why ? why : "not found");
        continue;
      }
      SgemmFn sgemm = Symbol<SgemmFn>(handle, "cblas_sgemm");
      if (sgemm == nullptr) {
        failures += "\n  " + name + ": has no cblas_sgemm";
        dlclose(handle);
        continue;
      }
      blas.handle = handle;
      blas.path = name;
      blas.sgemm = sgemm;
      blas.set_threads = Symbol<SetThreadsFn>(handle, "openblas_set_num_threads");
      if (!blas.set_threads) blas.set_threads = Symbol<SetThreadsFn>(handle, "MKL_Set_Num_Threads");
      blas.get_threads = Symbol<GetThreadsFn>(handle, "openblas_get_num_threads");
      if (!blas.get_threads) blas.get_threads = Symbol<GetThreadsFn>(handle, "MKL_Get_Max_Threads");
      blas.get_config = Symbol<GetStringFn>(handle, "openblas_get_config");
      blas.get_corename = Symbol<GetStringFn>(handle, "openblas_get_corename");
      break;
    }
    if (blas.handle == nullptr) {
      Napi::Error::New(env, "no CBLAS library could be opened:" + failures).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("path", blas.path);
  out.Set("config", blas.get_config ? Napi::Value(Napi::String::New(env, blas.get_config())) : env.Null());
  out.Set("corename", blas.get_corename ? Napi::Value(Napi::String::New(env, blas.get_corename())) : env.Null());
  out.Set("threads", blas.get_threads ? Napi::Value(Napi::Number::New(env, blas.get_threads())) : env.Null());
  return out;
}

// setThreads(n: number) -> threads now in use (or null when the library cannot tell).
Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (blas.handle == nullptr) {
    Napi::Error::New(env, "setThreads: call load() first").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  grokpipe::Args args(info, "setThreads", 1);
  const int64_t n = args.Integer(0, "n");
  args.Check(n <= INT32_MAX, "n exceeds the 32-bit BLAS interface");
  if (!args.ok()) return env.Undefined();
  if (n >= 1 && blas.set_threads) blas.set_threads(static_cast<int>(n));
  return blas.get_threads ? Napi::Value(Napi::Number::New(env, blas.get_threads())) : env.Null();
}

// matMul(a, b, c, batch, batchA, batchB, m, n, k, transA, transB)
// c[i] = op(a[i mod batchA]) @ op(b[i mod batchB]) for i < batch, row-major; op(a) is [m, k] and
// op(b) is [k, n]; a stored [batchA, m, k] ([batchA, k, m] when transA), b [batchB, k, n]
// ([batchB, n, k] when transB), c [batch, m, n]. batchA and batchB are 1 or batch (broadcast).
Napi::Value MatMul(const Napi::CallbackInfo& info) {
  if (blas.sgemm == nullptr) {
    Napi::Error::New(info.Env(), "matMul: call load() first").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  grokpipe::Args args(info, "matMul", 11);
  const int64_t batch = args.Integer(3, "batch"), batch_a = args.Integer(4, "batchA"),
                batch_b = args.Integer(5, "batchB"), m = args.Integer(6, "m"), n = args.Integer(7, "n"),
                k = args.Integer(8, "k");
  const bool trans_a = args.Flag(9), trans_b = args.Flag(10);
  args.Check(batch >= 0 && m >= 0 && n >= 0 && k >= 0 && (batch_a == 1 || batch_a == batch) &&
                 (batch_b == 1 || batch_b == batch),
             "bad shape arguments");
  args.Check(m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX, "a dimension exceeds the 32-bit BLAS interface");
  using grokpipe::Mul;
  const int64_t need_a = Mul(Mul(batch_a, m), k), need_b = Mul(Mul(batch_b, k), n), need_c = Mul(Mul(batch, m), n);
  args.Check(need_a >= 0 && need_b >= 0 && need_c >= 0, "the shapes' sizes overflow");
  const float* a = args.Floats(0, "a", need_a);
  const float* b = args.Floats(1, "b", need_b);
  float* c = args.Floats(2, "c", need_c);
  if (!args.ok()) return info.Env().Undefined();
  const int lda = trans_a ? m : k;
  const int ldb = trans_b ? k : n;
  for (int64_t i = 0; i < batch; i++) {
    const float* ai = a + (batch_a == 1 ? 0 : i * m * k);
    const float* bi = b + (batch_b == 1 ? 0 : i * k * n);
    float* ci = c + i * m * n;
    if (k == 0) {
      for (int64_t j = 0; j < m * n; j++) ci[j] = 0.0f;
      continue;
    }
    blas.sgemm(kRowMajor, trans_a ? kTrans : kNoTrans, trans_b ? kTrans : kNoTrans, static_cast<int>(m),
               static_cast<int>(n), static_cast<int>(k), 1.0f, ai, lda, bi, ldb, 0.0f, ci, static_cast<int>(n));
  }
  return info.Env().Undefined();
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("load", Napi::Function::New(env, Load));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("matMul", Napi::Function::New(env, MatMul));
  InitKernels(env, exports);
  InitAttention(env, exports);
  InitAdamW(env, exports);
  InitGradFilter(env, exports);
  InitLinear(env, exports);
  InitPositions(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(grokpipe_blas, Init)
