// Fused Grokfast-EMA gradient filter (grad_filter.cc).
#pragma once
#include <napi.h>

/** Adds `emaFilter` to the addon's exports. */
void InitGradFilter(Napi::Env env, Napi::Object exports);
