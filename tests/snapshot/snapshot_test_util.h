// Test support for tests/snapshot: stores with realistic content, framing helpers.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "snapshot/codec.h"
#include "statestore/store.h"
#include "tests/statestore/delta_source.h"

namespace gv::snapshot::testing {

// A store fed `deltas` deltas from three writers plus some own writes.
inline statestore::Store MakeStore(std::uint64_t seed, int deltas, std::size_t keyspace = 500) {
  statestore::testing::DeltaSource source(seed, 3, keyspace);
  statestore::Store store(NodeId(99), statestore::testing::SmallGcLimits());
  for (int i = 0; i < deltas; ++i) {
    store.Apply(source.Next(), source.wall_ms());
    if (i % 10 == 0) {
      auto local = store.MakeLocalDelta(
          {statestore::LocalOp{statestore::OpKind::kPut, "own/" + std::to_string(i), std::string(i % 90, 'x'), 7,
                               std::nullopt}},
          source.wall_ms());
      REQUIRE(local.ok());
      store.Apply(*local, source.wall_ms());
    }
  }
  return store;
}

// Byte offsets where each framed chunk starts, plus the stream's end.
inline std::vector<std::size_t> ChunkOffsets(std::string_view stream) {
  std::vector<std::size_t> offsets;
  std::size_t offset = 0;
  while (offset + kFrameHeaderBytes <= stream.size()) {
    offsets.push_back(offset);
    std::uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= std::uint32_t{static_cast<std::uint8_t>(stream[offset + i])} << (8 * i);
    offset += kFrameHeaderBytes + length;
  }
  REQUIRE(offset == stream.size());
  offsets.push_back(offset);
  return offsets;
}

inline Result<statestore::LoadedSnapshot> Decode(std::string_view stream) {
  SnapshotDecoder decoder;
  GV_RETURN_IF_ERROR(decoder.Feed(stream));
  return decoder.Finish();
}

}  // namespace gv::snapshot::testing
