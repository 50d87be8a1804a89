// Deltas: the unit of replication, of the WAL and of the wire (DESIGN.md §3).
//
// A delta {origin, seq, hlc, ops} is one atomic write by one node. seq is per
// origin, contiguous, starting at 1, so (origin, seq) names a delta cluster-wide.
// Every op carries the key's version vector *after* the write: the merged
// vector the writer held for that key, plus {origin: seq}. Version vectors
// decide causality between writes to a key; (hlc, origin) only breaks ties
// between concurrent writes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "statestore/hlc.h"
#include "statestore/version_vector.h"

namespace gv::statestore {

// ---- Protocol caps -------------------------------------------------------
// Every node enforces these on every delta it receives, whatever its local
// configuration, so nodes configured differently still accept each other's
// deltas (a delta rejected by some nodes only would block its origin there).
inline constexpr std::size_t kMaxKeyBytes = 1024;
inline constexpr std::size_t kDefaultMaxValueBytes = 64 * 1024;
inline constexpr std::size_t kMaxValueBytesCap = 1024 * 1024;
inline constexpr std::size_t kMaxOpsPerDeltaCap = 4096;
// A key's vector has one entry per node that ever wrote it: room for 10,000+ nodes.
inline constexpr std::size_t kMaxVvEntries = 16384;
// Upper bound of an encoded delta (the decoder refuses larger buffers, and
// ValidateDelta refuses deltas whose encoding could exceed it).
inline constexpr std::size_t kMaxEncodedDeltaBytes = 4 * 1024 * 1024;

// ---- Version vectors -----------------------------------------------------
// VersionVector (statestore/version_vector.h): node -> counter (the seq of
// that node's latest delta that wrote the key). Canonical form: no zero node
// id, no zero counter (absent means 0).

enum class VvOrder { kEqual, kBefore, kAfter, kConcurrent };

// Compares a with b: kBefore means a < b (b saw everything a saw, and more).
VvOrder Compare(const VersionVector& a, const VersionVector& b);
// a >= b: a has seen everything b has.
bool Dominates(const VersionVector& a, const VersionVector& b);
bool Concurrent(const VersionVector& a, const VersionVector& b);
// into = into ∨ from (entry-wise max).
void MergeInto(VersionVector& into, const VersionVector& from);
std::string ToString(const VersionVector& vv);

// ---- Deltas --------------------------------------------------------------
enum class OpKind : std::uint8_t { kPut = 0, kDelete = 1 };

struct Op {
  OpKind kind = OpKind::kPut;
  std::string key;
  std::string value;        // empty for kDelete
  std::uint64_t flags = 0;  // opaque to the store, returned to readers
  VersionVector vv;         // the key's vector after this write; vv[origin] == seq
  bool operator==(const Op&) const = default;
};

struct Delta {
  NodeId origin;
  std::uint64_t seq = 0;
  Hlc hlc;
  std::vector<Op> ops;
  bool operator==(const Delta&) const = default;
};

// Limits that the validation applies; the defaults are the protocol caps.
struct DeltaLimits {
  std::size_t max_value_bytes = kMaxValueBytesCap;
  std::size_t max_ops_per_delta = kMaxOpsPerDeltaCap;
};

// Key rules: 1..kMaxKeyBytes bytes, no NUL byte.
Status ValidateKey(std::string_view key);

// Everything a replica must check before merging a delta: non-zero origin,
// seq >= 1, HLC within 48 bits, 1..max ops, distinct keys, key rules, value
// size (delete: empty), canonical vectors with vv[origin] == seq and at most
// kMaxVvEntries entries, and an encoded size bound within kMaxEncodedDeltaBytes.
// The messages name the limit that was hit.
Status ValidateDelta(const Delta& delta, const DeltaLimits& limits = {});

// An upper bound of the FlatBuffers encoding's size (wire/delta_codec.cc stays below it).
std::size_t EncodedSizeBound(const Delta& delta);

}  // namespace gv::statestore
