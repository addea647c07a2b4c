// grokpipe's fused training kernels (kernels.cc): softmax cross-entropy, LayerNorm, RMSNorm, GELU,
// SiLU, SwiGLU's gate and the token + position embedding, forward and backward, on Float32Array views of the
// wasm heap.
#pragma once

#include <napi.h>

// Adds crossEntropy, crossEntropyGrad, layerNorm, layerNormGrad, rmsNorm, rmsNormGrad, gelu,
// geluGrad, silu, siluGrad, swiglu, swigluGrad, embed and embedGrad (and exp, for its test) to the addon's exports
// (see kernels.cc for each one's contract).
void InitKernels(Napi::Env env, Napi::Object exports);
