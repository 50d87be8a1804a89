// NodeId: a node's 64-bit random identity, stored in DATA/node.id. Ordered so
// it can key std::map (iteration order must be deterministic in the cores).
#pragma once

#include <compare>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>

namespace gv {

struct NodeId {
  std::uint64_t value = 0;

  constexpr NodeId() = default;
  constexpr explicit NodeId(std::uint64_t v) : value(v) {}
  auto operator<=>(const NodeId&) const = default;
  bool valid() const { return value != 0; }

  // 16 lowercase hex digits.
  std::string ToString() const {
    char buf[17];
    std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(value));
    return std::string(buf, 16);
  }
};

}  // namespace gv

template <>
struct std::hash<gv::NodeId> {
  std::size_t operator()(const gv::NodeId& id) const noexcept { return std::hash<std::uint64_t>()(id.value); }
};
