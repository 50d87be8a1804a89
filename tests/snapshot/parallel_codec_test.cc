// The parallel encoder (EncodeSnapshotParallel): over many seeds, chunk
// targets and thread counts it yields exactly the serial encoder's bytes,
// which decode to the view; the serial encoder ends a chunk at every tree
// segment (what makes that possible); a failing sink stops the run with its
// error and every thread joined; an encode on another thread while the store
// keeps writing sees the capture point.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/prng.h"
#include "snapshot/codec.h"
#include "tests/snapshot/snapshot_test_util.h"

using namespace gv;
using namespace gv::snapshot;
using namespace gv::snapshot::testing;

namespace {

// MakeStore's mix (three writers, tombstones, conflicts) plus `extra` local
// keys of mixed sizes, so the tree has several segments.
statestore::Store MakeBigStore(std::uint64_t seed, std::size_t extra) {
  statestore::Store store = MakeStore(seed, 300);
  Prng prng(seed);
  for (std::size_t i = 0; i < extra; ++i) {
    const std::string key = "big/" + std::to_string(prng.Index(1'000'000)) + std::string(prng.Index(30), 'k');
    const bool erase = prng.Chance(0.1);
    auto delta = store.MakeLocalDelta({statestore::LocalOp{erase ? statestore::OpKind::kDelete : statestore::OpKind::kPut,
                                                           key, std::string(prng.Index(300), 'v'), prng.Index(4),
                                                           std::nullopt}},
                                      1'700'000'000'000 + i);
    if (!delta.ok()) continue;  // a delete of an absent key
    store.Apply(*delta, 1'700'000'000'000 + i);
  }
  return store;
}

struct Collected {
  std::string bytes;
  std::size_t calls = 0;
};

Result<EncodeSummary> EncodeCollect(const statestore::StoreView& view, Collected* out, std::size_t threads,
                                    std::size_t target) {
  ParallelEncodeOptions options;
  options.threads = threads;
  options.chunk_target_bytes = target;
  options.min_entries_for_threads = 0;
  return EncodeSnapshotParallel(
      view, 11, 22,
      [out](std::string_view frame) {
        out->bytes.append(frame);
        ++out->calls;
        return Status::Ok();
      },
      options);
}

// Stream index of each Entries chunk's first entry.
std::set<std::uint64_t> ChunkFirstEntries(const std::string& stream) {
  const std::vector<std::size_t> offsets = ChunkOffsets(stream);
  std::set<std::uint64_t> firsts;
  std::uint64_t entries = 0;
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i) {
    const std::string_view frame(stream.data() + offsets[i], offsets[i + 1] - offsets[i]);
    std::uint32_t crc = 0;
    for (int b = 0; b < 4; ++b) crc |= std::uint32_t{static_cast<std::uint8_t>(frame[4 + b])} << (8 * b);
    auto summary = CheckFramedChunk(frame.substr(kFrameHeaderBytes), crc);
    REQUIRE(summary.ok());
    if (summary->kind == "entries") {
      firsts.insert(entries);
      entries += summary->entries;
    }
  }
  return firsts;
}

}  // namespace

TEST_CASE("snapshot parallel encoder: the same bytes as the serial encoder over seeds, targets and threads") {
  for (std::uint64_t seed = 1; seed <= 12; ++seed) {
    CAPTURE(seed);
    const statestore::Store store = MakeBigStore(seed, seed % 3 == 0 ? 200 : 6000 + 500 * seed);
    const statestore::StoreView view = store.Capture();
    if (seed % 3 != 0) REQUIRE(view.keys().Segments().size() >= 2);
    for (std::size_t target : {std::size_t{1}, std::size_t{700}, std::size_t{16 * 1024}, kDefaultChunkTargetBytes}) {
      CAPTURE(target);
      const std::string serial = EncodeSnapshot(view, 11, 22, target);
      for (std::size_t threads : {1, 2, 3}) {
        CAPTURE(threads);
        Collected parallel;
        auto summary = EncodeCollect(view, &parallel, threads, target);
        REQUIRE(summary.ok());
        REQUIRE(parallel.bytes == serial);
        REQUIRE(summary->bytes == serial.size());
        REQUIRE(summary->chunks + 0 == ChunkOffsets(serial).size() - 1);
        REQUIRE(summary->entries == view.entry_count());
        REQUIRE(summary->meta.entry_count == view.entry_count());
        REQUIRE(parallel.calls == summary->chunks);  // whole chunks, one per call
      }
      auto loaded = Decode(serial);
      REQUIRE(loaded.ok());
      REQUIRE(loaded->entries.size() == view.entry_count());
      REQUIRE(loaded->live_keys == view.live_keys());
    }
  }
}

TEST_CASE("snapshot parallel encoder: chunks end at every segment boundary, so segments encode independently") {
  const statestore::Store store = MakeBigStore(5, 9000);
  const statestore::StoreView view = store.Capture();
  const auto segments = view.keys().Segments();
  REQUIRE(segments.size() >= 2);
  const std::set<std::uint64_t> firsts = ChunkFirstEntries(EncodeSnapshot(view, 1, 2));
  std::uint64_t entry = 0;
  for (const auto& segment : segments) {
    if (segment.items > 0) REQUIRE(firsts.count(entry) == 1);
    entry += segment.items;
  }
  REQUIRE(entry == view.entry_count());
}

TEST_CASE("snapshot parallel encoder: a failing sink ends the run with its error, at any chunk") {
  const statestore::Store store = MakeBigStore(7, 8000);
  const statestore::StoreView view = store.Capture();
  const std::size_t chunks = ChunkOffsets(EncodeSnapshot(view, 1, 2, 2048)).size() - 1;
  REQUIRE(chunks > 10);
  for (std::size_t fail_at : {std::size_t{1}, std::size_t{2}, chunks / 2, chunks - 1, chunks}) {
    CAPTURE(fail_at);
    std::size_t calls = 0;
    ParallelEncodeOptions options;
    options.chunk_target_bytes = 2048;
    options.min_entries_for_threads = 0;
    auto result = EncodeSnapshotParallel(
        view, 1, 2,
        [&](std::string_view) {
          return ++calls == fail_at ? Status::IOError("disk full") : Status::Ok();
        },
        options);
    REQUIRE_FALSE(result.ok());
    REQUIRE(result.status().code() == StatusCode::kIOError);
    REQUIRE(calls == fail_at);  // nothing passed on after the failure
  }
}

TEST_CASE("snapshot parallel encoder: on another thread while the store keeps writing, it encodes the capture") {
  statestore::Store store = MakeBigStore(9, 8000);
  statestore::StoreView view = store.Capture();
  const std::string expected = EncodeSnapshot(view, 3, 4);
  Collected parallel;
  Result<EncodeSummary> summary = Status::Aborted("not run");
  std::thread encoder([&, v = view] { summary = EncodeCollect(v, &parallel, 2, kDefaultChunkTargetBytes); });
  Prng prng(1);
  for (int i = 0; i < 3000; ++i) {
    auto delta = store.MakeLocalDelta(
        {statestore::LocalOp{statestore::OpKind::kPut, "big/" + std::to_string(prng.Index(1'000'000)), "new", 0,
                             std::nullopt}},
        1'800'000'000'000 + static_cast<std::uint64_t>(i));
    REQUIRE(delta.ok());
    store.Apply(*delta, 1'800'000'000'000 + static_cast<std::uint64_t>(i));
  }
  encoder.join();
  REQUIRE(summary.ok());
  // created_wall_ms and wal_lsn differ (11, 22 against 3, 4): compare decoded contents and the entries' bytes.
  auto decoded = Decode(parallel.bytes);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->entries.size() == view.entry_count());
  REQUIRE(parallel.bytes == EncodeSnapshot(view, 11, 22));
  REQUIRE(expected.size() == parallel.bytes.size());
}
