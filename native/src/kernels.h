// grokpipe's fused training kernels: softmax cross-entropy, LayerNorm, RMSNorm (kernels.cc),
// GELU, SiLU, SwiGLU's gate (activations.cc) and GPT-2's token + position embedding
// (embedding.cc), forward and backward, on Float32Array views of the wasm heap.
#pragma once

#include <napi.h>

// Adds every fused kernel to the addon's exports: crossEntropy, crossEntropyGrad, norm, normGrad
// (LayerNorm and RMSNorm), then InitActivations' and InitEmbedding's.
void InitKernels(Napi::Env env, Napi::Object exports);

// gelu, geluGrad, silu, siluGrad, swiglu, swigluGrad, and exp (fmath.h's, for its test).
void InitActivations(Napi::Env env, Napi::Object exports);

// embed, embedGrad.
void InitEmbedding(Napi::Env env, Napi::Object exports);
