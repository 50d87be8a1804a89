#include "statestore/delta.h"

#include <algorithm>
#include <set>

namespace gv::statestore {

VvOrder Compare(const VersionVector& a, const VersionVector& b) {
  bool a_ahead = false;  // some entry of a exceeds b's
  bool b_ahead = false;
  // Both maps are ordered by node: one merge-style pass.
  auto ia = a.begin();
  auto ib = b.begin();
  while (ia != a.end() || ib != b.end()) {
    if (ib == b.end() || (ia != a.end() && ia->first < ib->first)) {
      if (ia->second > 0) a_ahead = true;
      ++ia;
    } else if (ia == a.end() || ib->first < ia->first) {
      if (ib->second > 0) b_ahead = true;
      ++ib;
    } else {
      if (ia->second > ib->second) a_ahead = true;
      if (ib->second > ia->second) b_ahead = true;
      ++ia;
      ++ib;
    }
    if (a_ahead && b_ahead) return VvOrder::kConcurrent;
  }
  if (a_ahead) return VvOrder::kAfter;
  if (b_ahead) return VvOrder::kBefore;
  return VvOrder::kEqual;
}

bool Dominates(const VersionVector& a, const VersionVector& b) {
  const VvOrder order = Compare(a, b);
  return order == VvOrder::kEqual || order == VvOrder::kAfter;
}

bool Concurrent(const VersionVector& a, const VersionVector& b) { return Compare(a, b) == VvOrder::kConcurrent; }

void MergeInto(VersionVector& into, const VersionVector& from) {
  // One merge-style pass when every node of `from` is already in `into` (the
  // common case: the same writers again); otherwise build the union in order,
  // so that n new nodes cost one pass, not n insertions that each move the
  // entries after them.
  std::size_t missing = 0;
  auto it = into.begin();
  for (const auto& [node, counter] : from) {
    while (it != into.end() && it->first < node) ++it;
    if (it != into.end() && it->first == node) {
      if (it->second < counter) it->second = counter;
    } else {
      ++missing;
    }
  }
  if (missing == 0) return;
  VersionVector merged;
  merged.reserve(into.size() + missing);
  auto a = into.begin();
  auto b = from.begin();
  while (a != into.end() || b != from.end()) {
    if (b == from.end() || (a != into.end() && a->first < b->first)) {
      merged.emplace_hint(merged.end(), a->first, a->second);
      ++a;
    } else if (a == into.end() || b->first < a->first) {
      merged.emplace_hint(merged.end(), b->first, b->second);
      ++b;
    } else {
      merged.emplace_hint(merged.end(), a->first, std::max(a->second, b->second));
      ++a;
      ++b;
    }
  }
  into = std::move(merged);
}

std::string ToString(const VersionVector& vv) {
  std::string out = "{";
  for (const auto& [node, counter] : vv) {
    if (out.size() > 1) out += ", ";
    out += node.ToString() + ":" + std::to_string(counter);
  }
  return out + "}";
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("key is empty (keys are 1.." + std::to_string(kMaxKeyBytes) + " bytes)");
  if (key.size() > kMaxKeyBytes) {
    return Status::TooLarge("key is " + std::to_string(key.size()) + " bytes, over the key limit of " +
                            std::to_string(kMaxKeyBytes) + " bytes");
  }
  if (key.find('\0') != std::string_view::npos) return Status::InvalidArgument("key contains a NUL byte");
  return Status::Ok();
}

namespace {
// Per-field FlatBuffers overheads, generous: table + vtable (shared), string
// length + terminator + padding, vector lengths + alignment padding.
constexpr std::size_t kDeltaOverheadBytes = 128;
constexpr std::size_t kOpOverheadBytes = 96;
constexpr std::size_t kVvEntryBytes = 16;
}  // namespace

std::size_t EncodedSizeBound(const Delta& delta) {
  std::size_t total = kDeltaOverheadBytes;
  for (const Op& op : delta.ops) {
    total += kOpOverheadBytes + op.key.size() + op.value.size() + kVvEntryBytes * op.vv.size();
  }
  return total;
}

Status ValidateDelta(const Delta& delta, const DeltaLimits& limits) {
  if (!delta.origin.valid()) return Status::InvalidArgument("delta origin is the zero node id");
  if (delta.seq == 0) return Status::InvalidArgument("delta seq is 0 (sequences start at 1)");
  const std::string where = "delta " + delta.origin.ToString() + "/" + std::to_string(delta.seq);
  if (delta.hlc.wall_ms > Hlc::kMaxWallMs) return Status::InvalidArgument(where + ": HLC wall time exceeds 48 bits");
  if (delta.ops.empty()) return Status::InvalidArgument(where + " has no ops");
  if (delta.ops.size() > limits.max_ops_per_delta) {
    return Status::TooLarge(where + " has " + std::to_string(delta.ops.size()) + " ops, over max_ops_per_delta=" +
                            std::to_string(limits.max_ops_per_delta));
  }
  // Two ops on one key in one delta would carry the same vector: the second
  // would be a silent no-op, so such a delta is refused.
  std::set<std::string_view> keys;
  for (std::size_t i = 0; i < delta.ops.size(); ++i) {
    const Op& op = delta.ops[i];
    const std::string at = where + " op " + std::to_string(i);
    if (op.kind != OpKind::kPut && op.kind != OpKind::kDelete) return Status::InvalidArgument(at + ": unknown op kind");
    if (Status s = ValidateKey(op.key); !s.ok()) {
      return s.code() == StatusCode::kTooLarge ? Status::TooLarge(at + ": " + s.message())
                                               : Status::InvalidArgument(at + ": " + s.message());
    }
    if (!keys.insert(op.key).second) return Status::InvalidArgument(at + ": key written twice in one delta");
    if (op.kind == OpKind::kDelete && !op.value.empty()) {
      return Status::InvalidArgument(at + ": a delete carries a value");
    }
    if (op.value.size() > limits.max_value_bytes) {
      return Status::TooLarge(at + ": value is " + std::to_string(op.value.size()) +
                              " bytes, over the value limit of " + std::to_string(limits.max_value_bytes) + " bytes");
    }
    if (op.vv.size() > kMaxVvEntries) {
      return Status::TooLarge(at + ": version vector has " + std::to_string(op.vv.size()) + " entries, over " +
                              std::to_string(kMaxVvEntries));
    }
    for (const auto& [node, counter] : op.vv) {
      if (!node.valid()) return Status::InvalidArgument(at + ": version vector names the zero node id");
      if (counter == 0) return Status::InvalidArgument(at + ": version vector has a zero counter");
    }
    auto own = op.vv.find(delta.origin);
    if (own == op.vv.end() || own->second != delta.seq) {
      return Status::InvalidArgument(at + ": version vector " + ToString(op.vv) +
                                     " does not carry the delta's own {origin: seq}");
    }
  }
  if (const std::size_t bound = EncodedSizeBound(delta); bound > kMaxEncodedDeltaBytes) {
    return Status::TooLarge(where + ": encoded size up to " + std::to_string(bound) +
                            " bytes, over the delta limit of " + std::to_string(kMaxEncodedDeltaBytes) + " bytes");
  }
  return Status::Ok();
}

}  // namespace gv::statestore
