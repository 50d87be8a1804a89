// MessageId: the identity of one broadcast, (origin, per-origin sequence).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>

#include "common/mix64.h"
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
    return static_cast<std::size_t>(Mix64(id.origin.value * kGoldenGamma ^ id.seq));
  }
};

}  // namespace gv::broadcast
