// Fused AdamW update and per-member global gradient norm (adamw.cc).
#pragma once
#include <napi.h>

/** Adds `gradNorm` and `adamwUpdate` to the addon's exports. */
void InitAdamW(Napi::Env env, Napi::Object exports);
