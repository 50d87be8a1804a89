// Overlay records: what each node publishes about itself (by broadcast) so
// that any node can draw the whole topology (DESIGN.md §2, GET /v1/topology).
// A record is a FlatBuffers OverlayRecord ("GVO1"), verified before use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "statestore/delta.h"

namespace gv::wire {

inline constexpr char kOverlayRecordFileIdentifier[] = "GVO1";

struct OverlayRecord {
  NodeId node;
  std::string name;
  std::string address;  // peer address
  std::string http;     // HTTP API address
  // Newer records replace older ones: the publisher's wall-clock ms, made
  // strictly increasing by the publisher.
  std::uint64_t version = 0;
  bool left = false;  // the node left gracefully; drop it from the topology
  std::vector<NodeId> active;
  std::vector<NodeId> passive;
  std::vector<NodeId> eager;
  std::vector<NodeId> lazy;
  statestore::VersionVector applied;
  std::uint64_t key_count = 0;
  bool operator==(const OverlayRecord&) const = default;
};

struct OverlayRecordLimits {
  std::size_t max_bytes = 4u << 20;  // = the envelope's max_payload_bytes
  std::size_t max_string_bytes = 256;
  std::size_t max_view_entries = 1024;     // per view
  std::size_t max_vector_entries = 65536;
};

std::string EncodeOverlayRecord(const OverlayRecord& record);
// Verifies the buffer, the identifier, every limit, non-zero ids and a sorted
// vector with counters >= 1 before returning anything.
Result<OverlayRecord> DecodeOverlayRecord(std::string_view bytes, const OverlayRecordLimits& limits = {});

// Whether `bytes` starts a FlatBuffer with file identifier `id` (4 chars).
bool HasFileIdentifier(std::string_view bytes, const char* id);

}  // namespace gv::wire
