#pragma once

#include <napi.h>

// Registers the answer-position helpers (positions.cc): selectRows, selectRowsGrad, positionMask.
void InitPositions(Napi::Env env, Napi::Object exports);
