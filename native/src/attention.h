// Fused multi-head attention for short sequences (attention.cc).
#pragma once
#include <napi.h>

/** Adds `attentionForward` and `attentionBackward` to the addon's exports. */
void InitAttention(Napi::Env env, Napi::Object exports);
