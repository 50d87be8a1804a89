// The snapshot byte stream (docs/snapshot_format.md): one format for snapshot
// files, GET/PUT /v1/snapshot and peer streaming. A stream is a sequence of
// framed chunks
//   [u32 body length LE][u32 masked crc32c of the body LE][body]
// where each body is a FlatBuffers SnapshotChunk ("GVS1"): a Header, entry
// chunks of about chunk_target_bytes, and a Trailer that counts chunks and
// entries and checksums every earlier body.
//
// The decoder trusts nothing: each chunk's length is bounded, its CRC checked,
// its FlatBuffer verified (explicit depth/table limits, 8-byte alignment), its
// position checked against the chunks before it, and every entry checked
// against the protocol limits (statestore/delta.h) and the key order before
// any of it is used.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/node_id.h"
#include "common/status.h"
#include "statestore/store.h"

namespace gv::snapshot {

inline constexpr char kChunkFileIdentifier[] = "GVS1";
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kFrameHeaderBytes = 8;
// Largest chunk body a decoder accepts. An encoder closes a chunk once it
// reaches its target (at most kMaxChunkTargetBytes), so a chunk is at most the
// target plus one entry (key 1 KiB + value 1 MiB + a full vector of
// kMaxVvEntries nodes at <= 8 + 10 bytes each, with the dictionary).
inline constexpr std::size_t kMaxChunkTargetBytes = 8u << 20;
inline constexpr std::size_t kMaxChunkBodyBytes = 16u << 20;
inline constexpr std::size_t kDefaultChunkTargetBytes = 256 * 1024;

struct SnapshotMeta {
  std::uint32_t format_version = kFormatVersion;
  NodeId node;
  statestore::VersionVector applied;
  statestore::Hlc hlc;
  std::uint64_t index = 0;
  std::uint64_t entry_count = 0;
  std::uint64_t live_keys = 0;
  std::uint64_t created_wall_ms = 0;
  std::uint64_t wal_lsn = 0;
  bool operator==(const SnapshotMeta&) const = default;
};

// Encodes a view as a chunk stream, one chunk per call. Holds the view (so
// its tree stays alive) and a cursor into it; may run on any thread.
class SnapshotEncoder {
 public:
  SnapshotEncoder(statestore::StoreView view, std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                  std::size_t chunk_target_bytes = kDefaultChunkTargetBytes);
  ~SnapshotEncoder();
  SnapshotEncoder(SnapshotEncoder&&) noexcept;
  SnapshotEncoder& operator=(SnapshotEncoder&&) noexcept;

  // Appends the next framed chunk to *framed_chunk and returns true; appends
  // nothing and returns false once the trailer has been emitted.
  bool NextChunk(std::string* framed_chunk);

  std::uint64_t chunks_emitted() const;
  std::uint64_t bytes_emitted() const;
  std::uint64_t entries_emitted() const;
  const SnapshotMeta& meta() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Encodes a whole view in memory (tests, small stores).
std::string EncodeSnapshot(const statestore::StoreView& view, std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                           std::size_t chunk_target_bytes = kDefaultChunkTargetBytes);

// Encodes a whole view on helper threads, passing the framed chunks in
// stream order to `sink` on the calling thread (which frames and checksums
// them meanwhile, and may write them out). The bytes are exactly those of
// SnapshotEncoder::NextChunk over the same view and chunk target: the stream
// is cut into segments of the tree (statestore::PersistentMap::Segments),
// which the serial encoder never lets a chunk span either; workers encode
// whole segments and the calling thread fills in each chunk's position (see
// codec.cc). Memory held is bounded (a few segments' output) whatever the
// store's size. Every helper thread is joined before this returns; an error
// (the sink's first, or a worker's) ends the run and is returned. Falls back
// to the serial encoder (same bytes) for small views or when no thread can be
// started.
struct ParallelEncodeOptions {
  std::size_t threads = 2;  // helper threads encoding segments; 0 = serial on the calling thread
  std::size_t chunk_target_bytes = kDefaultChunkTargetBytes;
  // Below this many entries the thread start-up is not worth it.
  std::size_t min_entries_for_threads = 16 * 1024;
  // Added to the helper threads' nice value (Linux: per thread), so that the
  // store's loop thread wins a shared core from them: encoding is background
  // work, the write path's latency is not (as RocksDB lowers its compaction
  // threads' priority). 0 leaves it alone; failure to set it is ignored.
  int helper_nice = 0;
};
struct EncodeSummary {
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  SnapshotMeta meta;
};
// Receives whole framed chunks (valid only during the call).
using ChunkSink = std::function<Status(std::string_view framed_chunk)>;
Result<EncodeSummary> EncodeSnapshotParallel(statestore::StoreView view, std::uint64_t created_wall_ms,
                                             std::uint64_t wal_lsn, const ChunkSink& sink,
                                             const ParallelEncodeOptions& options = {});

class SnapshotDecoder {
 public:
  // keep_entries=false verifies everything but keeps no entries (a file sink
  // checks a stream while writing it to disk); Finish then refuses.
  explicit SnapshotDecoder(std::uint64_t max_total_bytes = 8ull << 30, bool keep_entries = true);
  ~SnapshotDecoder();
  SnapshotDecoder(SnapshotDecoder&&) noexcept;
  SnapshotDecoder& operator=(SnapshotDecoder&&) noexcept;

  // Accepts any split of the stream. The first bad chunk returns Corruption
  // (TooLarge for a size limit) naming the chunk position and what failed;
  // after an error every call returns that error again.
  Status Feed(std::string_view bytes);
  // Trailer seen and verified, and nothing after it.
  bool complete() const;
  // After the header chunk; nullptr before.
  const SnapshotMeta* meta() const;
  std::uint64_t bytes() const;    // bytes accepted so far (whole and partial chunks)
  std::uint64_t chunks() const;   // chunks verified so far
  std::uint64_t entries() const;  // entries verified so far
  // Only when complete() (and keep_entries): moves the entries out, once.
  Result<statestore::LoadedSnapshot> Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Checks one framed chunk on its own (length, CRC, FlatBuffers verification)
// without the stream context: for `snapshot inspect` reading past damage.
// Returns the body's kind ("header", "entries", "trailer") and entry count.
struct ChunkSummary {
  std::string kind;
  std::uint64_t position = 0;
  std::uint64_t entries = 0;
};
Result<ChunkSummary> CheckFramedChunk(std::string_view frame_body, std::uint32_t masked_crc);

}  // namespace gv::snapshot
