// The answer position of each example (src/models/native-positions.ts): the row of the hidden
// state there, its gradient, and the additive attention mask of a query there. Each computes the
// values of the TF.js ops it replaces (layers.ts `selectPositions`: a gather whose gradient is a
// segment sum into zeros; `positionMask`: `(key > position) · −1e9` in float32), so the same bits.
#include "positions.h"

#include <cstdint>

#include "args.h"

namespace {

using grokpipe::Args;
using grokpipe::Mul;

// Checks every position is in [0, seq); returns false (a pending RangeError) otherwise.
bool PositionsFit(Args& a, const int32_t* pos, int64_t batch, int64_t seq) {
  if (!a.ok()) return false;
  for (int64_t b = 0; b < batch; b++)
    if (pos[b] < 0 || pos[b] >= seq) {
      a.Check(false, "position " + std::to_string(pos[b]) + " outside [0, " + std::to_string(seq) + ")");
      return false;
    }
  return true;
}

// selectRows(x, positions, out, batch, seq, d): out[b] = x[b, positions[b]]; x [batch, seq, d],
// positions i32 [batch], out [batch, d].
Napi::Value SelectRows(const Napi::CallbackInfo& info) {
  Args a(info, "selectRows", 6);
  const int64_t batch = a.Size(3, "batch"), seq = a.Size(4, "seq"), d = a.Size(5, "d");
  const float* x = a.Floats(0, "x", Mul(Mul(batch, seq), d));
  const int32_t* pos = a.Ints(1, "positions", batch);
  float* out = a.Floats(2, "out", Mul(batch, d));
  if (!PositionsFit(a, pos, batch, seq)) return info.Env().Undefined();
  for (int64_t b = 0; b < batch; b++) {
    const float* row = x + (b * seq + pos[b]) * d;
    for (int64_t j = 0; j < d; j++) out[b * d + j] = row[j];
  }
  return info.Env().Undefined();
}

// selectRowsGrad(dy, positions, dx, batch, seq, d): dx = 0, then dx[b, positions[b]] += dy[b]
// (as the segment sum does: 0 + dy, which turns −0 into +0).
Napi::Value SelectRowsGrad(const Napi::CallbackInfo& info) {
  Args a(info, "selectRowsGrad", 6);
  const int64_t batch = a.Size(3, "batch"), seq = a.Size(4, "seq"), d = a.Size(5, "d");
  const float* dy = a.Floats(0, "dy", Mul(batch, d));
  const int32_t* pos = a.Ints(1, "positions", batch);
  float* dx = a.Floats(2, "dx", Mul(Mul(batch, seq), d));
  if (!PositionsFit(a, pos, batch, seq)) return info.Env().Undefined();
  for (int64_t i = 0; i < batch * seq * d; i++) dx[i] = 0.0f;
  for (int64_t b = 0; b < batch; b++) {
    float* row = dx + (b * seq + pos[b]) * d;
    for (int64_t j = 0; j < d; j++) row[j] += dy[b * d + j];
  }
  return info.Env().Undefined();
}

// positionMask(positions, mask, batch, seq): mask[b, j] = (j > positions[b] ? 1 : 0) · −1e9
// (−0 where allowed, as the float32 product of the cast comparison).
Napi::Value PositionMask(const Napi::CallbackInfo& info) {
  Args a(info, "positionMask", 4);
  const int64_t batch = a.Size(2, "batch"), seq = a.Size(3, "seq");
  const int32_t* pos = a.Ints(0, "positions", batch);
  float* mask = a.Floats(1, "mask", Mul(batch, seq));
  if (!a.ok()) return info.Env().Undefined();
  const float big = -1e9f;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t j = 0; j < seq; j++) mask[b * seq + j] = (j > pos[b] ? 1.0f : 0.0f) * big;
  return info.Env().Undefined();
}

}  // namespace

void InitPositions(Napi::Env env, Napi::Object exports) {
  exports.Set("selectRows", Napi::Function::New(env, SelectRows));
  exports.Set("selectRowsGrad", Napi::Function::New(env, SelectRowsGrad));
  exports.Set("positionMask", Napi::Function::New(env, PositionMask));
}
