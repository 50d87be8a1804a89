// The snapshot stream: encode -> decode equals the view (entries with local
// indexes, meta) over seeds and any split of the bytes; an encoder on another
// thread while the store keeps writing; damage (truncation at every chunk
// boundary and inside chunks, bit flips, swapped/duplicated/dropped chunks,
// trailing bytes) fails with a Corruption naming the chunk.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/prng.h"
#include "snapshot/codec.h"
#include "tests/snapshot/snapshot_test_util.h"

using namespace gv;
using namespace gv::snapshot;
using namespace gv::snapshot::testing;
using statestore::testing::CopyEntries;
using statestore::testing::SameEntries;

namespace {

void CheckLoadedEqualsView(const statestore::LoadedSnapshot& loaded, const statestore::StoreView& view) {
  REQUIRE(loaded.format_version == kFormatVersion);
  REQUIRE(loaded.node == view.node());
  REQUIRE(loaded.applied == view.applied());
  REQUIRE(loaded.hlc == view.hlc());
  REQUIRE(loaded.index == view.index());
  REQUIRE(loaded.live_keys == view.live_keys());
  REQUIRE(loaded.entries.size() == view.entry_count());
  REQUIRE(loaded.entries.CheckInvariants() == "");
  statestore::testing::EntryList decoded;
  for (auto cursor = loaded.entries.Begin(); cursor.valid(); cursor.Next()) {
    decoded.emplace_back(cursor.key(), cursor.value());
  }
  REQUIRE(SameEntries(decoded, CopyEntries(view)));
}

std::string Error(std::string_view stream) {
  auto decoded = Decode(stream);
  REQUIRE_FALSE(decoded.ok());
  return decoded.status().ToString();
}

}  // namespace

TEST_CASE("snapshot codec: round trip over seeds, chunk sizes and any split") {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    statestore::Store store = MakeStore(seed, 200 + static_cast<int>(seed) * 40);
    const statestore::StoreView view = store.Capture();
    const std::size_t target = seed % 3 == 0 ? 1 : (seed % 3 == 1 ? 512 : kDefaultChunkTargetBytes);
    SnapshotEncoder encoder(view, 1234 + seed, 777 * seed, target);
    std::string stream;
    std::vector<std::size_t> sizes;
    while (encoder.NextChunk(&stream)) sizes.push_back(stream.size());
    REQUIRE_FALSE(encoder.NextChunk(&stream));
    REQUIRE(stream.size() == sizes.back());
    REQUIRE(encoder.chunks_emitted() == sizes.size());
    REQUIRE(encoder.bytes_emitted() == stream.size());
    REQUIRE(encoder.entries_emitted() == view.entry_count());
    REQUIRE(encoder.meta().wal_lsn == 777 * seed);
    if (target == 1) REQUIRE(encoder.chunks_emitted() == view.entry_count() + 2);  // one entry per chunk
    REQUIRE(EncodeSnapshot(view, 1234 + seed, 777 * seed, target) == stream);  // deterministic

    // One piece, then random splits (single bytes included).
    Prng prng(seed);
    for (int split = 0; split < 4; ++split) {
      SnapshotDecoder decoder;
      std::size_t offset = 0;
      while (offset < stream.size()) {
        const std::size_t piece =
            split == 0 ? stream.size() : std::min<std::size_t>(stream.size() - offset, 1 + prng.Index(split * 300));
        REQUIRE(decoder.Feed(std::string_view(stream).substr(offset, piece)).ok());
        offset += piece;
        REQUIRE(decoder.bytes() == offset);
        if (offset < stream.size()) REQUIRE_FALSE(decoder.complete());
      }
      REQUIRE(decoder.complete());
      REQUIRE(decoder.meta() != nullptr);
      REQUIRE(*decoder.meta() == encoder.meta());
      REQUIRE(decoder.chunks() == encoder.chunks_emitted());
      REQUIRE(decoder.entries() == view.entry_count());
      auto loaded = decoder.Finish();
      REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
      REQUIRE(loaded->created_wall_ms == 1234 + seed);
      REQUIRE(loaded->wal_lsn == 777 * seed);
      CheckLoadedEqualsView(*loaded, view);
      REQUIRE_FALSE(decoder.Finish().ok());  // entries were moved out once
    }
  }
}

TEST_CASE("snapshot codec: an empty store round-trips (header and trailer only)") {
  statestore::Store store(NodeId(3), statestore::StoreLimits{});
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2);
  REQUIRE(ChunkOffsets(stream).size() == 3);
  auto loaded = Decode(stream);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->entries.empty());
  REQUIRE(loaded->node == NodeId(3));
}

TEST_CASE("snapshot codec: an encoder on another thread sees the capture point while writes go on") {
  statestore::testing::DeltaSource source(21, 3, 4000);
  statestore::Store store(NodeId(99), statestore::testing::SmallGcLimits());
  for (int i = 0; i < 4000; ++i) store.Apply(source.Next(), source.wall_ms());
  for (int round = 0; round < 3; ++round) {
    const auto model = CopyEntries(store);
    const auto digest = store.Digest();
    std::atomic<bool> done{false};
    std::string stream;
    // The view moves into the encoder on the worker thread, as the agent's
    // snapshot writer does.
    std::thread worker([&, view = store.Capture()]() mutable {
      SnapshotEncoder encoder(std::move(view), 5, 6, 4096);
      while (encoder.NextChunk(&stream)) {
      }
      done = true;
    });
    int writes = 0;
    while (!done || writes < 300) {
      store.Apply(source.Next(), source.wall_ms());
      if (++writes % 50 == 0) store.CollectGarbage(source.wall_ms());
    }
    worker.join();
    auto loaded = Decode(stream);
    REQUIRE_MESSAGE(loaded.ok(), loaded.status().ToString());
    statestore::testing::EntryList decoded;
    for (auto cursor = loaded->entries.Begin(); cursor.valid(); cursor.Next()) {
      decoded.emplace_back(cursor.key(), cursor.value());
    }
    REQUIRE(SameEntries(decoded, model));
    statestore::Store restored(NodeId(98), statestore::StoreLimits{});
    REQUIRE(restored.Install(std::move(*loaded), true).ok());
    REQUIRE(restored.Digest() == digest);
  }
}

TEST_CASE("snapshot codec: truncation at every chunk boundary and inside chunks is refused") {
  statestore::Store store = MakeStore(4, 300);
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2, 700);
  const std::vector<std::size_t> offsets = ChunkOffsets(stream);
  REQUIRE(offsets.size() > 6);
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    CAPTURE(i);
    // At the boundary: every chunk so far verified, but no trailer.
    const std::string at_boundary = Error(std::string_view(stream).substr(0, offsets[i]));
    CHECK(at_boundary.find("truncated") != std::string::npos);
    CHECK(at_boundary.find("snapshot chunk " + std::to_string(i) + ": truncated") != std::string::npos);
    // Inside the frame header and inside the body.
    for (std::size_t cut : {offsets[i] + 3, offsets[i] + kFrameHeaderBytes + 1, (offsets[i] + offsets[i + 1]) / 2,
                            offsets[i + 1] - 1}) {
      const std::string inner = Error(std::string_view(stream).substr(0, cut));
      CHECK(inner.find("snapshot chunk " + std::to_string(i) + ": truncated") != std::string::npos);
      CHECK(inner.find("partial chunk") != std::string::npos);
    }
  }
}

TEST_CASE("snapshot codec: bit flips are refused with the damaged chunk's position") {
  statestore::Store store = MakeStore(5, 300);
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2, 900);
  const std::vector<std::size_t> offsets = ChunkOffsets(stream);
  Prng prng(5);
  for (int flip = 0; flip < 400; ++flip) {
    std::string damaged = stream;
    const std::size_t at = prng.Index(damaged.size());
    damaged[at] = static_cast<char>(damaged[at] ^ (1 << prng.Index(8)));
    const std::size_t chunk =
        static_cast<std::size_t>(std::upper_bound(offsets.begin(), offsets.end(), at) - offsets.begin()) - 1;
    CAPTURE(at);
    const std::string error = Error(damaged);
    // A flipped length word can move the frame end, so the error may name the
    // length; every other flip fails that chunk's checksum.
    CHECK(error.find("snapshot chunk " + std::to_string(chunk) + ":") != std::string::npos);
  }
}

TEST_CASE("snapshot codec: swapped, duplicated and dropped chunks, and trailing bytes, are refused") {
  statestore::Store store = MakeStore(6, 300);
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2, 900);
  const std::vector<std::size_t> o = ChunkOffsets(stream);
  REQUIRE(o.size() > 5);
  auto chunk = [&](std::size_t i) { return stream.substr(o[i], o[i + 1] - o[i]); };
  const std::size_t n = o.size() - 1;

  std::string swapped = chunk(0) + chunk(2) + chunk(1);
  for (std::size_t i = 3; i < n; ++i) swapped += chunk(i);
  CHECK(Error(swapped).find("snapshot chunk 1: position field says 2") != std::string::npos);

  std::string duplicated = chunk(0) + chunk(1) + chunk(1);
  CHECK(Error(duplicated).find("snapshot chunk 2: position field says 1") != std::string::npos);

  std::string dropped = chunk(0);
  for (std::size_t i = 2; i < n; ++i) dropped += chunk(i);
  CHECK(Error(dropped).find("snapshot chunk 1:") != std::string::npos);

  CHECK(Error(stream + "x").find("bytes after the trailer") != std::string::npos);
  CHECK(Error(stream + chunk(n - 1)).find("bytes after the trailer") != std::string::npos);

  // The same chunk from a different snapshot of the same store (one more
  // write): valid framing and position, caught by the stream checks.
  auto local = store.MakeLocalDelta({statestore::LocalOp{statestore::OpKind::kPut, "zzz", "v", 0, std::nullopt}},
                                    1'800'000'000'000);
  REQUIRE(local.ok());
  store.Apply(*local, 1'800'000'000'000);
  const std::string other = EncodeSnapshot(store.Capture(), 1, 2, 900);
  const std::vector<std::size_t> p = ChunkOffsets(other);
  std::string mixed = other.substr(0, p[1]) + stream.substr(o[1]);
  CHECK(Error(mixed).find("snapshot chunk") != std::string::npos);
}

TEST_CASE("snapshot codec: after an error every call fails; limits are enforced") {
  statestore::Store store = MakeStore(7, 100);
  const std::string stream = EncodeSnapshot(store.Capture(), 1, 2, 900);
  SnapshotDecoder decoder;
  std::string damaged = stream;
  damaged[20] = static_cast<char>(damaged[20] ^ 1);
  const Status first = decoder.Feed(damaged);
  REQUIRE(first.IsCorruption());
  REQUIRE(decoder.Feed(stream).ToString() == first.ToString());
  REQUIRE(decoder.Finish().status().ToString() == first.ToString());
  REQUIRE_FALSE(decoder.complete());

  SnapshotDecoder small(stream.size() - 1);
  REQUIRE(small.Feed(stream).code() == StatusCode::kTooLarge);

  // A length word over the chunk limit is refused before any body is buffered.
  std::string huge(kFrameHeaderBytes, '\0');
  const std::uint32_t length = kMaxChunkBodyBytes + 1;
  for (int i = 0; i < 4; ++i) huge[static_cast<std::size_t>(i)] = static_cast<char>(length >> (8 * i));
  SnapshotDecoder limited;
  const Status refused = limited.Feed(huge);
  REQUIRE(refused.IsCorruption());
  CHECK(refused.message().find("snapshot chunk 0: body length") != std::string::npos);
}

TEST_CASE("snapshot codec: a chunk ends at most one entry past its target, even with wide vectors") {
  // 40 writers over 6 keys: vectors of up to 40 nodes, each node new to a chunk's dictionary.
  statestore::testing::DeltaSource source(8, 40, 6);
  statestore::Store store(NodeId(99), statestore::StoreLimits{});
  for (int i = 0; i < 2000; ++i) store.Apply(source.Next(), source.wall_ms());
  const statestore::StoreView view = store.Capture();
  std::size_t max_entry_bound = 0;
  view.VisitAll([&](std::string_view key, const statestore::KeyEntry& entry) {
    // Every varint at 10 bytes, every node new to the dictionary (8 bytes each).
    max_entry_bound = std::max(max_entry_bound, key.size() + entry.value.size() + (9 + 2 * entry.vv.size()) * 10 +
                                                    8 * (entry.vv.size() + 1));
    return true;
  });
  REQUIRE(max_entry_bound > 400);
  const std::size_t target = 600;
  const std::string stream = EncodeSnapshot(view, 1, 2, target);
  const std::vector<std::size_t> offsets = ChunkOffsets(stream);
  // FlatBuffers framing of the columns adds a fixed overhead per chunk.
  constexpr std::size_t kTableOverhead = 256;
  for (std::size_t i = 1; i + 2 < offsets.size(); ++i) {
    CAPTURE(i);
    REQUIRE(offsets[i + 1] - offsets[i] <= target + max_entry_bound + kTableOverhead);
  }
  auto loaded = Decode(stream);
  REQUIRE(loaded.ok());
  REQUIRE(loaded->entries.size() == view.entry_count());
}
