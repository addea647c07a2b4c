// GPT-2's token + position embedding, forward and backward (kernels.cc states the contract;
// src/models/native-embedding.ts uses them).
#include "kernels.h"

#include <cstdint>
#include <string>

#include "args.h"
#include "fmath.h"

namespace {

using grokpipe::Args;
using grokpipe::Mul;

// The shapes of an embedding: `groups` (ensemble members) of `rows` ids each, in sequences of
// `seq`; tables [groups, vocab, d] and [groups, positions, d].
struct EmbedShape {
  int64_t groups, rows, seq, vocab, positions, d;
};

EmbedShape ReadEmbedShape(Args& a, size_t i) {
  EmbedShape s{a.Size(i, "groups"),    a.Size(i + 1, "rows"),      a.Size(i + 2, "seq"),
               a.Size(i + 3, "vocab"), a.Size(i + 4, "positions"), a.Size(i + 5, "d")};
  a.Check(s.groups > 0 && s.seq > 0 && s.rows % s.seq == 0, "rows must be whole sequences of seq ≥ 1 ids");
  a.Check(s.seq <= s.positions, "the sequences are longer than the position table");
  return s;
}

// The first id outside [0, vocab), or -1.
int64_t BadId(const int32_t* ids, int64_t n, int64_t vocab) {
  for (int64_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= vocab) return i;
  return -1;
}

// out[g, i] = table[g, ids[g, i]] + pos[g, i mod seq].
GROKPIPE_CLONES
void EmbedRows(const float* __restrict table, const float* __restrict pos, const int32_t* __restrict ids,
               float* __restrict out, EmbedShape s) {
  for (int64_t g = 0; g < s.groups; g++)
    for (int64_t i = 0; i < s.rows; i++) {
      const int64_t r = g * s.rows + i;
      const float* t = table + (g * s.vocab + ids[r]) * s.d;
      const float* p = pos + (g * s.positions + i % s.seq) * s.d;
      float* o = out + r * s.d;
      for (int64_t j = 0; j < s.d; j++) o[j] = t[j] + p[j];
    }
}

// dtable[g, v] = Σ dy[g, i] over i with ids[g, i] = v, dpos[g, k] = Σ dy[g, i] over i ≡ k (mod
// seq), both summed in row order in float (the order of the host UnsortedSegmentSum); rows of
// the position table past seq get 0.
GROKPIPE_CLONES
void EmbedGradRows(const float* __restrict dy, const int32_t* __restrict ids, float* __restrict dtable,
                   float* __restrict dpos, EmbedShape s) {
  for (int64_t j = 0; j < s.groups * s.vocab * s.d; j++) dtable[j] = 0.0f;
  for (int64_t j = 0; j < s.groups * s.positions * s.d; j++) dpos[j] = 0.0f;
  for (int64_t g = 0; g < s.groups; g++)
    for (int64_t i = 0; i < s.rows; i++) {
      const int64_t r = g * s.rows + i;
      const float* d = dy + r * s.d;
      float* t = dtable + (g * s.vocab + ids[r]) * s.d;
      float* p = dpos + (g * s.positions + i % s.seq) * s.d;
      for (int64_t j = 0; j < s.d; j++) t[j] += d[j];
      for (int64_t j = 0; j < s.d; j++) p[j] += d[j];
    }
}

// embed(table, pos, ids, out, groups, rows, seq, vocab, positions, d): table [groups, vocab, d],
// pos [groups, positions, d], ids i32 [groups, rows] → out [groups, rows, d]. Throws a
// RangeError naming the first id outside [0, vocab).
Napi::Value Embed(const Napi::CallbackInfo& info) {
  Args a(info, "embed", 10);
  const EmbedShape s = ReadEmbedShape(a, 4);
  const int64_t n = Mul(s.groups, s.rows);
  const float* table = a.Floats(0, "table", Mul(Mul(s.groups, s.vocab), s.d));
  const float* pos = a.Floats(1, "pos", Mul(Mul(s.groups, s.positions), s.d));
  const int32_t* ids = a.Ints(2, "ids", n);
  float* out = a.Floats(3, "out", Mul(n, s.d));
  const int64_t bad = a.ok() ? BadId(ids, n, s.vocab) : -1;
  a.Check(bad < 0, "id " + std::to_string(bad < 0 ? 0 : ids[bad]) + " outside [0, " + std::to_string(s.vocab) + ")");
  if (a.ok()) EmbedRows(table, pos, ids, out, s);
  return info.Env().Undefined();
}

// embedGrad(dy, ids, dtable, dpos, groups, rows, seq, vocab, positions, d).
Napi::Value EmbedGrad(const Napi::CallbackInfo& info) {
  Args a(info, "embedGrad", 10);
  const EmbedShape s = ReadEmbedShape(a, 4);
  const int64_t n = Mul(s.groups, s.rows);
  const float* dy = a.Floats(0, "dy", Mul(n, s.d));
  const int32_t* ids = a.Ints(1, "ids", n);
  float* dtable = a.Floats(2, "dtable", Mul(Mul(s.groups, s.vocab), s.d));
  float* dpos = a.Floats(3, "dpos", Mul(Mul(s.groups, s.positions), s.d));
  a.Check(!a.ok() || BadId(ids, n, s.vocab) < 0, "an id is outside [0, vocab)");
  if (a.ok()) EmbedGradRows(dy, ids, dtable, dpos, s);
  return info.Env().Undefined();
}
}  // namespace

void InitEmbedding(Napi::Env env, Napi::Object exports) {
  exports.Set("embed", Napi::Function::New(env, Embed));
  exports.Set("embedGrad", Napi::Function::New(env, EmbedGrad));
}
