// MessageId: the identity of one broadcast, (origin, per-origin sequence).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>

#include "common/node_id.h"

namespace gv::broadcast {

// (origin, per-origin sequence): unique per broadcast, chosen by the origin.
struct MessageId {
  NodeId origin;
  std::uint64_t seq = 0;
  auto operator<=>(const MessageId&) const = default;
};

struct MessageIdHash {
  std::size_t operator()(const MessageId& id) const noexcept {
    // splitmix64 finaliser over both words: ids of one origin differ only in seq.
    std::uint64_t x = id.origin.value * 0x9e3779b97f4a7c15ULL ^ id.seq;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return static_cast<std::size_t>(x ^ (x >> 31));
  }
};

}  // namespace gv::broadcast
