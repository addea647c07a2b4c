#pragma once

#include <napi.h>

// Registers the affine map's native helper (linear.cc): biasAdd.
void InitLinear(Napi::Env env, Napi::Object exports);
