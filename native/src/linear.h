#pragma once

#include <napi.h>

// Registers the affine map's native helpers (linear.cc): biasAdd, addTo.
void InitLinear(Napi::Env env, Napi::Object exports);
