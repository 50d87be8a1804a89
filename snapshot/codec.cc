#include "snapshot/codec.h"

#include <flatbuffers/flatbuffers.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <array>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <system_error>
#include <thread>
#include <cstring>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "common/crc32c.h"
#include "snapshot/snapshot_generated.h"
#include "statestore/delta.h"

namespace gv::snapshot {

namespace sst = gv::statestore;

namespace {

// Record bits (one varint per entry).
constexpr std::uint64_t kBitTombstone = 1;
constexpr std::uint64_t kBitConflict = 2;
constexpr std::uint64_t kKnownBits = kBitTombstone | kBitConflict;
// Software prefetching of the entries ahead of the one being encoded (see
// SnapshotEncoder::State::NextEntry): kTakeAhead entries are taken from the
// cursor ahead of it (their item's lines prefetched), and the nearest
// kPayloadAhead of those have their value and vector node prefetched too (keys
// are read from the leaf, which the cursor has just walked).
constexpr std::size_t kTakeAhead = 40;
constexpr std::size_t kPayloadAhead = 20;
constexpr std::size_t kRing = 64;  // power of two, > kTakeAhead
static_assert(kPayloadAhead < kTakeAhead && kTakeAhead < kRing && (kRing & (kRing - 1)) == 0);

// A prefetch of the cache line holding p (a hint: harmless on any address).
inline void Prefetch(const void* p) { __builtin_prefetch(p, 0, 3); }

// SnapshotChunk -> one body table: depth 2; nothing deeper is valid.
constexpr flatbuffers::uoffset_t kMaxDepth = 4;
constexpr flatbuffers::uoffset_t kMaxTables = 4;

constexpr std::size_t kMaxVarintBytes = 10;

// Writes v as LEB128 at p (room for kMaxVarintBytes); returns the end.
char* WriteVarint(char* p, std::uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

void PutU32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
}
std::uint32_t GetU32(const char* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
  return v;
}

// Bounds-checked LEB128 reader over one chunk's records column.
class VarintReader {
 public:
  VarintReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  bool Read(std::uint64_t* out) {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= size_) return false;
      const std::uint8_t byte = data_[pos_++];
      // The tenth byte may carry only the top bit of a u64.
      if (shift == 63 && byte > 1) return false;
      v |= std::uint64_t{byte & 0x7fu} << shift;
      if ((byte & 0x80) == 0) {
        *out = v;
        return true;
      }
    }
    return false;
  }
  bool done() const { return pos_ == size_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// The trailer's checksum chains the chunks' CRCs (each as 4 bytes LE) rather
// than re-reading every body: each body is already covered by its own CRC,
// and the chain pins their order and number.
std::uint32_t ExtendChain(std::uint32_t chain, std::uint32_t body_crc) {
  char bytes[4];
  PutU32(bytes, body_crc);
  return crc32c::Extend(chain, bytes, sizeof(bytes));
}

// Frames a finished FlatBuffer body: [len][masked crc][body]. Returns the
// body's unmasked CRC for the trailer's running checksum.
std::uint32_t AppendFrame(std::string* out, const std::uint8_t* body, std::size_t size) {
  const std::uint32_t crc = crc32c::Value(body, size);
  char header[kFrameHeaderBytes];
  PutU32(header, static_cast<std::uint32_t>(size));
  PutU32(header + 4, crc32c::Mask(crc));
  out->append(header, sizeof(header));
  out->append(reinterpret_cast<const char*>(body), size);
  return crc;
}

}  // namespace

// ---- Encoder --------------------------------------------------------------

namespace {

using Cursor = sst::KeyMap::Cursor;

// An entry taken from the cursor, not yet encoded. Raw pointers into the
// view's tree, which the encoder's view keeps alive and nobody mutates
// (persistent_map.h).
struct Pending {
  std::string_view key;  // in the leaf (persistent_map.h keeps keys there)
  const sst::KeyEntry* entry;
  const void* segment;  // PersistentMap segment: chunks never span two
};

// Walks a cursor in key order with software prefetching. The keys sit in
// their leaf, one block per 64 entries, but each entry's item, value and
// vector node are separate allocations in insertion order, so a key-order
// walk misses the cache on each of them, and encoding an entry is a
// dependency chain over those loads. So the loads are issued ahead, in two
// stages: when an entry is taken from the cursor its item's lines are
// prefetched (the cursor yields the item's address without reading it);
// kTakeAhead - kPayloadAhead entries later, when the item has arrived, the
// value bytes and the vector's first node it points to are prefetched. Many
// misses are then in flight at once instead of one.
class EntryStream {
 public:
  // one_segment: end at the end of the cursor's current segment (a worker
  // encoding one segment); otherwise at the end of the map.
  void Reset(Cursor cursor, bool one_segment) {
    cursor_ = std::move(cursor);
    only_ = one_segment && cursor_.valid() ? cursor_.segment() : nullptr;
    taken_ = staged_ = consumed_ = 0;
  }

  // The next entry without taking it; nullptr at the end. Valid until Pop.
  const Pending* Peek() {
    while (taken_ < consumed_ + kTakeAhead && cursor_.valid()) {
      const Pending p{cursor_.key(), &cursor_.value(), cursor_.segment()};
      if (only_ != nullptr && p.segment != only_) {
        cursor_ = Cursor();  // the segment ends here
        break;
      }
      // The entry's first, middle and last bytes: its lines (the entry and
      // the map's epoch before it make a 120-byte item).
      Prefetch(p.entry);
      Prefetch(&p.entry->vv);
      Prefetch(&p.entry->conflict);
      ring_[taken_++ % kRing] = p;
      cursor_.Next();
    }
    while (staged_ < taken_ && staged_ < consumed_ + kPayloadAhead) {
      const Pending& p = ring_[staged_++ % kRing];
      const std::string& value = p.entry->value;
      if (!value.empty()) {
        Prefetch(value.data());
        Prefetch(value.data() + value.size() - 1);
      }
      if (!p.entry->vv.empty()) Prefetch(&*p.entry->vv.begin());
    }
    return consumed_ < taken_ ? &ring_[consumed_ % kRing] : nullptr;
  }
  void Pop() { ++consumed_; }

 private:
  Cursor cursor_;
  const void* only_ = nullptr;
  // ring_[i % kRing] for i in [consumed_, taken_); those below staged_ had
  // their payload prefetched. kTakeAhead < kRing: Peek's result survives
  // until Pop.
  std::array<Pending, kRing> ring_{};
  std::uint64_t taken_ = 0, staged_ = 0, consumed_ = 0;
};

// Builds chunk bodies (FlatBuffers) into one reused builder. The serial
// encoder and the parallel workers share it, so they build the same bytes.
class ChunkBodyBuilder {
 public:
  explicit ChunkBodyBuilder(std::size_t chunk_target_bytes) : target_(chunk_target_bytes) {}

  flatbuffers::FlatBufferBuilder& builder() { return builder_; }
  const std::uint8_t* data() const { return builder_.GetBufferPointer(); }
  std::size_t size() const { return builder_.GetSize(); }
  void Clear() { builder_.Clear(); }

  void Header(const SnapshotMeta& meta) {
    std::vector<fb::VvEntry> applied;
    applied.reserve(meta.applied.size());
    for (const auto& [node, counter] : meta.applied) applied.emplace_back(node.value, counter);
    auto applied_vector = builder_.CreateVectorOfStructs(applied);
    auto header = fb::CreateHeader(builder_, meta.format_version, meta.node.value, applied_vector, meta.hlc.Pack(),
                                   meta.index, meta.entry_count, meta.live_keys, meta.created_wall_ms, meta.wal_lsn);
    Finish(0, header.Union(), fb::Body_Header);
  }

  void Trailer(std::uint64_t position, std::uint64_t entries, std::uint64_t live_keys, std::uint32_t bodies_crc) {
    auto trailer = fb::CreateTrailer(builder_, position, entries, live_keys, bodies_crc);
    Finish(position, trailer.Union(), fb::Body_Trailer);
  }

  // One Entries chunk from `stream`, which must have an entry: entries are
  // taken until the columns reach the target or the next entry is in
  // another segment, so a chunk ends at most one entry past its target
  // (kMaxChunkBodyBytes relies on that). `position` must be >= 1 (so the
  // field is present, and position_offset() valid). Returns the entry count.
  std::uint32_t Entries(EntryStream& stream, std::uint64_t position, std::uint64_t first_entry) {
    keys_.clear();
    values_.clear();
    values_bytes_ = 0;
    records_.clear();
    nodes_.clear();
    node_refs_.clear();
    last_node_ = 0;
    std::uint32_t count = 0;
    const void* segment = nullptr;
    while (keys_.size() + values_bytes_ + records_.size() + nodes_.size() * 8 < target_) {
      const Pending* p = stream.Peek();
      if (p == nullptr || (count > 0 && p->segment != segment)) break;
      segment = p->segment;
      Append(p->key, *p->entry);
      stream.Pop();
      ++count;
    }
    auto as_bytes = [](const std::string& s) { return reinterpret_cast<const std::uint8_t*>(s.data()); };
    auto nodes_vector = builder_.CreateVector(nodes_);
    auto keys_vector = builder_.CreateVector(as_bytes(keys_), keys_.size());
    std::uint8_t* values_out = nullptr;
    const auto values_vector = flatbuffers::Offset<flatbuffers::Vector<std::uint8_t>>(
        builder_.CreateUninitializedVector(values_bytes_, sizeof(std::uint8_t), &values_out));
    for (std::string_view value : values_) {
      if (value.empty()) continue;  // tombstones; and memcpy wants non-null pointers
      std::memcpy(values_out, value.data(), value.size());
      values_out += value.size();
    }
    auto records_vector = builder_.CreateVector(as_bytes(records_), records_.size());
    auto body =
        fb::CreateEntries(builder_, first_entry, count, nodes_vector, keys_vector, values_vector, records_vector);
    Finish(position, body.Union(), fb::Body_Entries);
    return count;
  }

  // Where the finished chunk's `position` field sits in the body (0 if it
  // is absent, i.e. position 0: the header).
  std::size_t position_offset() const { return position_offset_; }

 private:
  void Finish(std::uint64_t position, flatbuffers::Offset<void> body, fb::Body type) {
    auto chunk = fb::CreateSnapshotChunk(builder_, position, type, body);
    builder_.Finish(chunk, kChunkFileIdentifier);
    const auto* table = flatbuffers::GetRoot<flatbuffers::Table>(builder_.GetBufferPointer());
    const std::uint8_t* field = table->GetAddressOf(fb::SnapshotChunk::VT_POSITION);
    position_offset_ = field == nullptr ? 0 : static_cast<std::size_t>(field - builder_.GetBufferPointer());
  }

  std::uint64_t NodeRef(NodeId node) {
    if (node.value == last_node_) return last_ref_;
    // find first: emplace would allocate a map node on every call.
    auto it = node_refs_.find(node.value);
    if (it == node_refs_.end()) {
      it = node_refs_.emplace(node.value, nodes_.size()).first;
      nodes_.push_back(node.value);
    }
    last_node_ = node.value;
    last_ref_ = it->second;
    return last_ref_;
  }

  // Appends one entry to the chunk's columns.
  void Append(std::string_view key, const sst::KeyEntry& entry) {
    keys_ += key;
    // Not copied here: Entries copies each value once, straight into the
    // builder (values are most of the bytes; the view keeps them alive).
    values_.push_back(entry.value);
    values_bytes_ += entry.value.size();
    // The record in place: 9 fields and 2 per vector entry, each at most
    // kMaxVarintBytes; trimmed to what was written.
    const std::size_t start = records_.size();
    records_.resize(start + (9 + 2 * entry.vv.size()) * kMaxVarintBytes);
    char* p = records_.data() + start;
    p = WriteVarint(p, key.size());
    p = WriteVarint(p, entry.value.size());
    p = WriteVarint(p, (entry.tombstone ? kBitTombstone : 0) | (entry.conflict ? kBitConflict : 0));
    p = WriteVarint(p, entry.flags);
    p = WriteVarint(p, entry.hlc.Pack());
    p = WriteVarint(p, NodeRef(entry.origin));
    p = WriteVarint(p, entry.create_index);
    p = WriteVarint(p, entry.modify_index);
    p = WriteVarint(p, entry.vv.size());
    for (const auto& [node, counter] : entry.vv) {
      p = WriteVarint(p, NodeRef(node));
      p = WriteVarint(p, counter);
    }
    records_.resize(static_cast<std::size_t>(p - records_.data()));
  }

  std::size_t target_;
  flatbuffers::FlatBufferBuilder builder_{64 * 1024};
  // Columns of the chunk being built, reused across chunks.
  std::string keys_, records_;
  std::vector<std::string_view> values_;  // into the view's entries
  std::size_t values_bytes_ = 0;
  std::vector<std::uint64_t> nodes_;
  std::map<std::uint64_t, std::uint64_t> node_refs_;
  std::uint64_t last_node_ = 0, last_ref_ = 0;  // NodeRef's one-entry cache (0: none; node ids are non-zero)
  std::size_t position_offset_ = 0;
};

SnapshotMeta MetaOf(const sst::StoreView& view, std::uint64_t created_wall_ms, std::uint64_t wal_lsn) {
  SnapshotMeta meta;
  meta.format_version = kFormatVersion;
  meta.node = view.node();
  meta.applied = view.applied();
  meta.hlc = view.hlc();
  meta.index = view.index();
  meta.entry_count = view.entry_count();
  meta.live_keys = view.live_keys();
  meta.created_wall_ms = created_wall_ms;
  meta.wal_lsn = wal_lsn;
  return meta;
}

}  // namespace

struct SnapshotEncoder::State {
  enum class Stage { kHeader, kEntries, kTrailer, kDone };

  explicit State(std::size_t target) : body(target) {}

  statestore::StoreView view;
  SnapshotMeta meta;
  Stage stage = Stage::kHeader;
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  std::uint32_t bodies_crc = 0;  // ExtendChain over every body's CRC so far
  EntryStream stream;
  ChunkBodyBuilder body;

  void Emit(std::string* out) {
    const std::size_t before = out->size();
    const std::uint32_t crc = AppendFrame(out, body.data(), body.size());
    bodies_crc = ExtendChain(bodies_crc, crc);
    bytes += out->size() - before;
    ++chunks;
    body.Clear();
  }
};

SnapshotEncoder::SnapshotEncoder(statestore::StoreView view, std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                                 std::size_t chunk_target_bytes)
    : state_(std::make_unique<State>(std::clamp<std::size_t>(chunk_target_bytes, 1, kMaxChunkTargetBytes))) {
  State& s = *state_;
  s.view = std::move(view);
  s.meta = MetaOf(s.view, created_wall_ms, wal_lsn);
  s.stream.Reset(s.view.keys().Begin(), /*one_segment=*/false);
}

SnapshotEncoder::~SnapshotEncoder() = default;
SnapshotEncoder::SnapshotEncoder(SnapshotEncoder&&) noexcept = default;
SnapshotEncoder& SnapshotEncoder::operator=(SnapshotEncoder&&) noexcept = default;

bool SnapshotEncoder::NextChunk(std::string* framed_chunk) {
  State& s = *state_;
  switch (s.stage) {
    case State::Stage::kHeader:
      s.body.Header(s.meta);
      s.Emit(framed_chunk);
      s.stage = s.stream.Peek() != nullptr ? State::Stage::kEntries : State::Stage::kTrailer;
      return true;
    case State::Stage::kEntries:
      s.entries += s.body.Entries(s.stream, s.chunks, s.entries);
      s.Emit(framed_chunk);
      if (s.stream.Peek() == nullptr) s.stage = State::Stage::kTrailer;
      return true;
    case State::Stage::kTrailer:
      s.body.Trailer(s.chunks, s.entries, s.meta.live_keys, s.bodies_crc);
      s.Emit(framed_chunk);
      s.stage = State::Stage::kDone;
      return true;
    case State::Stage::kDone:
      return false;
  }
  return false;
}

std::uint64_t SnapshotEncoder::chunks_emitted() const { return state_->chunks; }
std::uint64_t SnapshotEncoder::bytes_emitted() const { return state_->bytes; }
std::uint64_t SnapshotEncoder::entries_emitted() const { return state_->entries; }
const SnapshotMeta& SnapshotEncoder::meta() const { return state_->meta; }

std::string EncodeSnapshot(const statestore::StoreView& view, std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                           std::size_t chunk_target_bytes) {
  SnapshotEncoder encoder(view, created_wall_ms, wal_lsn, chunk_target_bytes);
  std::string out;
  while (encoder.NextChunk(&out)) {
  }
  return out;
}

// ---- Parallel encoder -----------------------------------------------------
//
// The stream is cut at PersistentMap segments (runs of at most 4,096 entries
// under one bottom internal node), which the serial encoder also never lets a
// chunk span, so a segment's chunks are the same whoever encodes them and
// wherever it starts: chunk boundaries inside a segment depend only on its
// entries, `first_entry` is the entry count of the earlier segments (known
// from the tree before encoding), and only `position` (the chunk's index in
// the stream) depends on how many chunks the earlier segments made. Workers
// encode whole segments, each chunk with a stand-in position of 1 (so the
// field is present and sits where the true value will); the calling thread
// takes the chunks in stream order, writes the true position into the
// stand-in's 8 bytes (a u64 field's layout does not depend on its value),
// computes the CRC, frames it and passes it on. So the bytes equal the serial
// encoder's; tests/snapshot/parallel_codec_test.cc checks that over many seeds.

namespace {

// Worker output the caller may hold, per segment not yet being emitted: a
// worker ahead of the caller waits at this many bytes, and workers take
// segments at most kSegmentsAhead past the one being emitted, so memory is
// bounded whatever the values' sizes (the segment being emitted streams).
constexpr std::size_t kSlotCapBytes = 4u << 20;
constexpr std::size_t kSegmentsAhead = 4;

struct ParallelRun {
  struct Chunk {
    std::string frame;  // kFrameHeaderBytes to be filled, then the body
    std::size_t position_offset = 0;  // in the body
  };
  struct Slot {
    std::deque<Chunk> chunks;
    std::size_t bytes = 0;
    bool done = false;
  };

  // Set before the workers start, then read-only.
  std::vector<sst::KeyMap::SegmentStart> segments;
  std::vector<std::uint64_t> first_entry;  // per segment: entries before it
  std::size_t chunk_target_bytes = kDefaultChunkTargetBytes;
  int helper_nice = 0;

  std::mutex mu;
  std::condition_variable cv;
  // Guarded by mu.
  std::vector<Slot> slots;             // per segment
  std::size_t next_segment = 0;        // the next one a worker takes
  std::size_t emitting = 0;            // the one the caller takes chunks of
  bool stop = false;                   // an error, or the caller gave up
  Status error;                        // a worker's error
  std::vector<std::string> spare;      // frames handed back for reuse

  // A worker: takes segments in order and encodes them. Returns (never
  // throws) so that no exception crosses the thread boundary; an error stops
  // everyone and is reported by the caller.
  void Work() noexcept {
    if (helper_nice != 0) {
      // Best effort: the bytes do not depend on it.
      errno = 0;
      const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()));
      if (errno == 0) (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), current + helper_nice);
    }
    try {
      EntryStream stream;
      ChunkBodyBuilder body(chunk_target_bytes);
      for (;;) {
        std::size_t k;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return stop || next_segment >= segments.size() || next_segment < emitting + kSegmentsAhead; });
          if (stop || next_segment >= segments.size()) return;
          k = next_segment++;
        }
        std::uint64_t entries = 0;
        stream.Reset(segments[k].begin, /*one_segment=*/true);
        while (stream.Peek() != nullptr) {
          entries += body.Entries(stream, /*stand-in position=*/1, first_entry[k] + entries);
          Chunk chunk;
          {
            std::lock_guard lock(mu);
            if (!spare.empty()) {
              chunk.frame = std::move(spare.back());
              spare.pop_back();
            }
          }
          chunk.frame.assign(kFrameHeaderBytes, '\0');
          chunk.frame.append(reinterpret_cast<const char*>(body.data()), body.size());
          chunk.position_offset = body.position_offset();
          body.Clear();
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return stop || k == emitting || slots[k].bytes < kSlotCapBytes; });
          if (stop) return;
          slots[k].bytes += chunk.frame.size();
          slots[k].chunks.push_back(std::move(chunk));
          cv.notify_all();
        }
        std::lock_guard lock(mu);
        if (entries != segments[k].items) {
          Fail(Status::Aborted("snapshot encoder: segment " + std::to_string(k) + " yielded " +
                                std::to_string(entries) + " entries, the tree counts " +
                                std::to_string(segments[k].items)));
          return;
        }
        slots[k].done = true;
        cv.notify_all();
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      Fail(Status::Aborted(std::string("snapshot encoder worker: ") + e.what()));
    } catch (...) {
      std::lock_guard lock(mu);
      Fail(Status::Aborted("snapshot encoder worker: unknown exception"));
    }
  }

  // mu held.
  void Fail(Status status) {
    if (error.ok()) error = std::move(status);
    stop = true;
    cv.notify_all();
  }
};

// Joins the workers on every path out of EncodeSnapshotParallel, exceptions
// included (a joinable std::thread's destructor would terminate).
struct WorkerGuard {
  ParallelRun& run;
  std::vector<std::thread> threads;
  ~WorkerGuard() {
    {
      std::lock_guard lock(run.mu);
      run.stop = true;
      run.cv.notify_all();
    }
    for (std::thread& t : threads) t.join();
  }
};

}  // namespace

Result<EncodeSummary> EncodeSnapshotParallel(statestore::StoreView view, std::uint64_t created_wall_ms,
                                             std::uint64_t wal_lsn, const ChunkSink& sink,
                                             const ParallelEncodeOptions& options) {
  const std::size_t target = std::clamp<std::size_t>(options.chunk_target_bytes, 1, kMaxChunkTargetBytes);
  auto serial = [&]() -> Result<EncodeSummary> {
    SnapshotEncoder encoder(view, created_wall_ms, wal_lsn, target);
    std::string frame;
    while (encoder.NextChunk(&frame)) {
      GV_RETURN_IF_ERROR(sink(frame));
      frame.clear();
    }
    return EncodeSummary{encoder.chunks_emitted(), encoder.bytes_emitted(), encoder.entries_emitted(), encoder.meta()};
  };
  if (options.threads == 0 || view.entry_count() < options.min_entries_for_threads) return serial();

  ParallelRun run;
  run.chunk_target_bytes = target;
  run.helper_nice = options.helper_nice;
  run.segments = view.keys().Segments();
  if (run.segments.size() < 2) return serial();
  run.first_entry.reserve(run.segments.size());
  std::uint64_t total = 0;
  for (const auto& segment : run.segments) {
    run.first_entry.push_back(total);
    total += segment.items;
  }
  if (total != view.entry_count()) {
    return Status::Aborted("snapshot encoder: the tree's segments hold " + std::to_string(total) + " entries, the view " +
                            std::to_string(view.entry_count()));
  }
  run.slots.resize(run.segments.size());

  EncodeSummary summary;
  summary.meta = MetaOf(view, created_wall_ms, wal_lsn);
  std::uint32_t bodies_crc = 0;
  ChunkBodyBuilder body(target);
  // Frames the body at frame[kFrameHeaderBytes..], with `position` written
  // over its stand-in, and passes it on.
  auto emit = [&](std::string& frame, std::size_t position_offset, std::uint64_t position) -> Status {
    char* body_bytes = frame.data() + kFrameHeaderBytes;
    const std::size_t size = frame.size() - kFrameHeaderBytes;
    if (position_offset != 0) {
      for (int i = 0; i < 8; ++i) body_bytes[position_offset + static_cast<std::size_t>(i)] = static_cast<char>(position >> (8 * i));
    }
    const std::uint32_t crc = crc32c::Value(body_bytes, size);
    PutU32(frame.data(), static_cast<std::uint32_t>(size));
    PutU32(frame.data() + 4, crc32c::Mask(crc));
    bodies_crc = ExtendChain(bodies_crc, crc);
    summary.bytes += frame.size();
    ++summary.chunks;
    return sink(frame);
  };

  WorkerGuard guard{run, {}};
  try {
    for (std::size_t i = 0; i < options.threads; ++i) guard.threads.emplace_back([&run] { run.Work(); });
  } catch (const std::system_error&) {
    if (guard.threads.empty()) return serial();  // no thread to be had: the same bytes, slower
  }

  std::string frame;
  body.Header(summary.meta);
  frame.assign(kFrameHeaderBytes, '\0');
  frame.append(reinterpret_cast<const char*>(body.data()), body.size());
  body.Clear();
  GV_RETURN_IF_ERROR(emit(frame, 0, 0));
  for (std::size_t k = 0; k < run.segments.size(); ++k) {
    for (;;) {
      ParallelRun::Chunk chunk;
      {
        std::unique_lock lock(run.mu);
        run.cv.wait(lock, [&] { return run.stop || !run.slots[k].chunks.empty() || run.slots[k].done; });
        if (run.stop) return run.error.ok() ? Status::Aborted("snapshot encoder stopped") : run.error;
        if (run.slots[k].chunks.empty()) {
          run.emitting = k + 1;
          run.cv.notify_all();
          break;
        }
        chunk = std::move(run.slots[k].chunks.front());
        run.slots[k].chunks.pop_front();
        run.slots[k].bytes -= chunk.frame.size();
        run.cv.notify_all();
      }
      GV_RETURN_IF_ERROR(emit(chunk.frame, chunk.position_offset, summary.chunks));
      std::lock_guard lock(run.mu);
      run.spare.push_back(std::move(chunk.frame));
    }
  }
  summary.entries = total;
  body.Trailer(summary.chunks, summary.entries, summary.meta.live_keys, bodies_crc);
  frame.assign(kFrameHeaderBytes, '\0');
  frame.append(reinterpret_cast<const char*>(body.data()), body.size());
  GV_RETURN_IF_ERROR(emit(frame, body.position_offset(), summary.chunks));
  return summary;
}

// ---- Decoder --------------------------------------------------------------

namespace {

// A chunk body copied to 8-byte aligned memory (FlatBuffers reads scalars in
// place), reused across chunks.
class AlignedBody {
 public:
  const std::uint8_t* Assign(std::string_view body) {
    const std::size_t words = (body.size() + 7) / 8;
    if (words > capacity_words_) {
      storage_.reset(new std::uint64_t[words]);
      capacity_words_ = words;
    }
    if (!body.empty()) std::memcpy(storage_.get(), body.data(), body.size());
    return reinterpret_cast<const std::uint8_t*>(storage_.get());
  }

 private:
  std::unique_ptr<std::uint64_t[]> storage_;
  std::size_t capacity_words_ = 0;
};

bool Aligned8(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 8 == 0; }

// Length, CRC and FlatBuffers structure of one body; the chunk on success.
Result<const fb::SnapshotChunk*> VerifyBody(const std::uint8_t* body, std::size_t size, std::uint32_t masked_crc) {
  const std::uint32_t crc = crc32c::Value(body, size);
  if (crc32c::Mask(crc) != masked_crc) return Status::Corruption("checksum mismatch");
  if (size < 2 * sizeof(flatbuffers::uoffset_t) || !flatbuffers::BufferHasIdentifier(body, kChunkFileIdentifier)) {
    return Status::Corruption(std::string("not a snapshot chunk (file identifier is not ") + kChunkFileIdentifier +
                              ")");
  }
  flatbuffers::Verifier::Options options;
  options.max_depth = kMaxDepth;
  options.max_tables = kMaxTables;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(body, size, options);
  if (!verifier.VerifyBuffer<fb::SnapshotChunk>(kChunkFileIdentifier)) {
    return Status::Corruption("FlatBuffers verification failed");
  }
  const fb::SnapshotChunk* chunk = flatbuffers::GetRoot<fb::SnapshotChunk>(body);
  // Verified: body is present (required) and matches its type tag.
  switch (chunk->body_type()) {
    case fb::Body_Header:
    case fb::Body_Entries:
    case fb::Body_Trailer: break;
    default: return Status::Corruption("unknown chunk body type " + std::to_string(static_cast<int>(chunk->body_type())));
  }
  if (chunk->body_type() == fb::Body_Entries && !Aligned8(chunk->body_as_Entries()->nodes()->Data())) {
    return Status::Corruption("misaligned node dictionary");
  }
  if (chunk->body_type() == fb::Body_Header && !Aligned8(chunk->body_as_Header()->applied()->Data())) {
    return Status::Corruption("misaligned applied vector");
  }
  return chunk;
}

const char* BodyName(fb::Body type) {
  switch (type) {
    case fb::Body_Header: return "header";
    case fb::Body_Entries: return "entries";
    case fb::Body_Trailer: return "trailer";
    default: return "unknown";
  }
}

}  // namespace

struct SnapshotDecoder::State {
  std::uint64_t max_total_bytes;
  bool keep_entries;
  Status error;  // sticky
  std::string pending;  // an incomplete frame carried between Feed calls
  AlignedBody aligned;
  std::optional<SnapshotMeta> meta;
  bool complete = false;
  bool finished = false;
  std::uint64_t bytes = 0;
  std::uint64_t chunks = 0;
  std::uint64_t entries = 0;
  std::uint64_t live_keys = 0;
  std::uint32_t bodies_crc = 0;
  std::string last_key;  // of the previous entry, for the order check
  sst::KeyMap::Builder builder;

  Status Fail(Status status) {
    error = std::move(status);
    return error;
  }
  Status ChunkError(const std::string& what) {
    return Fail(Status::Corruption("snapshot chunk " + std::to_string(chunks) + ": " + what));
  }

  // Checks a frame header; returns the body length.
  Result<std::uint32_t> FrameLength(const char* header) {
    const std::uint32_t length = GetU32(header);
    if (complete) return ChunkError("bytes after the trailer");
    if (length == 0 || length > kMaxChunkBodyBytes) {
      return ChunkError("body length " + std::to_string(length) + " outside 1.." + std::to_string(kMaxChunkBodyBytes));
    }
    if (bytes + kFrameHeaderBytes + length > max_total_bytes) {
      return Fail(Status::TooLarge("snapshot chunk " + std::to_string(chunks) + ": stream exceeds " +
                                   std::to_string(max_total_bytes) + " bytes"));
    }
    return length;
  }

  Status Frame(std::string_view frame) {
    const std::uint32_t masked_crc = GetU32(frame.data() + 4);
    const std::string_view body_bytes = frame.substr(kFrameHeaderBytes);
    const std::uint8_t* body = aligned.Assign(body_bytes);
    Result<const fb::SnapshotChunk*> verified = VerifyBody(body, body_bytes.size(), masked_crc);
    if (!verified.ok()) return ChunkError(verified.status().message());
    const fb::SnapshotChunk* chunk = *verified;
    if (chunk->position() != chunks) {
      return ChunkError("position field says " + std::to_string(chunk->position()) +
                        " (chunks reordered, duplicated or missing)");
    }
    Status status;
    if (chunks == 0) {
      if (chunk->body_type() != fb::Body_Header) {
        return ChunkError(std::string("expected the header, found ") + BodyName(chunk->body_type()));
      }
      status = Header(*chunk->body_as_Header());
    } else if (chunk->body_type() == fb::Body_Entries) {
      status = Entries(*chunk->body_as_Entries());
    } else if (chunk->body_type() == fb::Body_Trailer) {
      status = Trailer(*chunk->body_as_Trailer());
    } else {
      return ChunkError("a second header");
    }
    if (!status.ok()) return ChunkError(status.message());
    bodies_crc = ExtendChain(bodies_crc, crc32c::Unmask(masked_crc));  // verified equal to the body's CRC
    ++chunks;
    bytes += frame.size();
    return Status::Ok();
  }

  Status Header(const fb::Header& h) {
    if (h.format_version() != kFormatVersion) {
      return Status::Corruption("format version " + std::to_string(h.format_version()) + " (this build reads " +
                                std::to_string(kFormatVersion) + ")");
    }
    if (h.node() == 0) return Status::Corruption("header node id is zero");
    const auto* applied = h.applied();
    if (applied->size() > sst::kMaxVvEntries) {
      return Status::Corruption("applied vector has " + std::to_string(applied->size()) + " entries, over " +
                                std::to_string(sst::kMaxVvEntries));
    }
    SnapshotMeta m;
    m.format_version = h.format_version();
    m.node = NodeId(h.node());
    m.applied.reserve(applied->size());
    for (flatbuffers::uoffset_t i = 0; i < applied->size(); ++i) {
      const fb::VvEntry* e = applied->Get(i);
      if (e->node() == 0 || e->counter() == 0) return Status::Corruption("applied vector has a zero node or counter");
      if (i > 0 && e->node() <= applied->Get(i - 1)->node()) {
        return Status::Corruption("applied vector not strictly sorted by node");
      }
      m.applied.emplace_hint(m.applied.end(), NodeId(e->node()), e->counter());
    }
    m.hlc = sst::Hlc::Unpack(h.hlc());
    m.index = h.index();
    m.entry_count = h.entry_count();
    m.live_keys = h.live_keys();
    if (m.live_keys > m.entry_count) return Status::Corruption("header live_keys exceeds entry_count");
    m.created_wall_ms = h.created_wall_ms();
    m.wal_lsn = h.wal_lsn();
    meta = std::move(m);
    return Status::Ok();
  }

  Status Entries(const fb::Entries& e) {
    if (e.first_entry() != entries) {
      return Status::Corruption("first_entry is " + std::to_string(e.first_entry()) + ", expected " +
                                std::to_string(entries));
    }
    if (e.count() == 0) return Status::Corruption("an entries chunk with no entries");
    const auto* nodes = e.nodes();
    for (flatbuffers::uoffset_t i = 0; i < nodes->size(); ++i) {
      if (nodes->Get(i) == 0) return Status::Corruption("node dictionary holds a zero node id");
    }
    const std::string_view keys(reinterpret_cast<const char*>(e.keys()->data()), e.keys()->size());
    const std::string_view values(reinterpret_cast<const char*>(e.values()->data()), e.values()->size());
    std::size_t key_pos = 0, value_pos = 0;
    VarintReader records(e.records()->data(), e.records()->size());
    auto node_at = [&](std::uint64_t ref, std::uint64_t* node) {
      if (ref >= nodes->size()) return false;
      *node = nodes->Get(static_cast<flatbuffers::uoffset_t>(ref));
      return true;
    };
    for (std::uint32_t i = 0; i < e.count(); ++i) {
      // Built only on failure: the success path runs once per entry.
      auto fail = [&](const std::string& what) {
        return Status::Corruption("entry " + std::to_string(entries + i) + ": " + what);
      };
      std::uint64_t key_len, value_len, bits, flags, hlc, origin_ref, create_index, modify_index, vv_size;
      if (!records.Read(&key_len) || !records.Read(&value_len) || !records.Read(&bits) || !records.Read(&flags) ||
          !records.Read(&hlc) || !records.Read(&origin_ref) || !records.Read(&create_index) ||
          !records.Read(&modify_index) || !records.Read(&vv_size)) {
        return fail("truncated record");
      }
      if (key_len > keys.size() - key_pos) return fail("key runs past the keys column");
      if (value_len > values.size() - value_pos) return fail("value runs past the values column");
      const std::string_view key = keys.substr(key_pos, key_len);
      key_pos += key_len;
      if (Status valid = sst::ValidateKey(key); !valid.ok()) return fail(valid.message());
      if (entries + i > 0 && !(std::string_view(last_key) < key)) {
        return fail("key is not after the previous key (keys must be sorted and unique)");
      }
      if (value_len > sst::kMaxValueBytesCap) {
        return fail("value of " + std::to_string(value_len) + " bytes is over the cap");
      }
      if ((bits & ~kKnownBits) != 0) return fail("unknown record bits");
      sst::KeyEntry entry;
      entry.tombstone = (bits & kBitTombstone) != 0;
      entry.conflict = (bits & kBitConflict) != 0;
      if (entry.tombstone && value_len != 0) return fail("a tombstone with a value");
      entry.value.assign(values.substr(value_pos, value_len));
      value_pos += value_len;
      entry.flags = flags;
      entry.hlc = sst::Hlc::Unpack(hlc);
      if (entry.hlc > meta->hlc) return fail("hlc is after the header's hlc");
      std::uint64_t origin = 0;
      if (!node_at(origin_ref, &origin)) return fail("origin refers past the node dictionary");
      entry.origin = NodeId(origin);
      if (modify_index > meta->index) return fail("modify_index is after the header's index");
      if (create_index > modify_index) return fail("create_index is after modify_index");
      entry.create_index = create_index;
      entry.modify_index = modify_index;
      if (vv_size == 0 || vv_size > sst::kMaxVvEntries) {
        return fail("version vector size " + std::to_string(vv_size) + " outside 1.." +
                                  std::to_string(sst::kMaxVvEntries));
      }
      std::uint64_t previous_node = 0;
      entry.vv.reserve(vv_size);
      for (std::uint64_t j = 0; j < vv_size; ++j) {
        std::uint64_t ref, counter, node;
        if (!records.Read(&ref) || !records.Read(&counter)) return fail("truncated record");
        if (!node_at(ref, &node)) return fail("vector node refers past the node dictionary");
        if (node <= previous_node) return fail("version vector not strictly sorted by node");
        if (counter == 0) return fail("version vector has a zero counter");
        previous_node = node;
        entry.vv.emplace_hint(entry.vv.end(), NodeId(node), counter);
      }
      // The winner's own write is part of the join.
      if (entry.vv.count(entry.origin) == 0) return fail("version vector lacks the origin");
      live_keys += entry.tombstone ? 0 : 1;
      last_key.assign(key);
      if (keep_entries) builder.Append(key, std::move(entry));
    }
    if (!records.done() || key_pos != keys.size() || value_pos != values.size()) {
      return Status::Corruption("columns hold bytes past the chunk's " + std::to_string(e.count()) + " entries");
    }
    entries += e.count();
    if (entries > meta->entry_count) {
      return Status::Corruption("more entries than the header's entry_count of " + std::to_string(meta->entry_count));
    }
    return Status::Ok();
  }

  Status Trailer(const fb::Trailer& t) {
    if (t.chunk_count() != chunks) {
      return Status::Corruption("trailer counts " + std::to_string(t.chunk_count()) + " chunks, stream had " +
                                std::to_string(chunks));
    }
    if (t.entry_count() != entries || entries != meta->entry_count) {
      return Status::Corruption("entry count mismatch: header " + std::to_string(meta->entry_count) + ", trailer " +
                                std::to_string(t.entry_count()) + ", stream " + std::to_string(entries));
    }
    if (t.live_keys() != live_keys || live_keys != meta->live_keys) {
      return Status::Corruption("live key count mismatch: header " + std::to_string(meta->live_keys) + ", trailer " +
                                std::to_string(t.live_keys()) + ", stream " + std::to_string(live_keys));
    }
    if (t.bodies_crc() != bodies_crc) return Status::Corruption("checksum over all chunk bodies mismatch");
    complete = true;
    return Status::Ok();
  }
};

SnapshotDecoder::SnapshotDecoder(std::uint64_t max_total_bytes, bool keep_entries)
    : state_(std::make_unique<State>()) {
  state_->max_total_bytes = max_total_bytes;
  state_->keep_entries = keep_entries;
}
SnapshotDecoder::~SnapshotDecoder() = default;
SnapshotDecoder::SnapshotDecoder(SnapshotDecoder&&) noexcept = default;
SnapshotDecoder& SnapshotDecoder::operator=(SnapshotDecoder&&) noexcept = default;

Status SnapshotDecoder::Feed(std::string_view bytes) {
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  if (s.finished) return s.Fail(Status::Aborted("snapshot decoder: Feed after Finish"));
  while (!bytes.empty()) {
    if (s.pending.empty()) {
      // Whole frames straight from the input; only a partial one is buffered.
      if (bytes.size() >= kFrameHeaderBytes) {
        Result<std::uint32_t> length = s.FrameLength(bytes.data());
        if (!length.ok()) return length.status();
        const std::size_t frame_size = kFrameHeaderBytes + *length;
        if (bytes.size() >= frame_size) {
          GV_RETURN_IF_ERROR(s.Frame(bytes.substr(0, frame_size)));
          bytes.remove_prefix(frame_size);
          continue;
        }
      } else if (s.complete) {
        return s.ChunkError("bytes after the trailer");
      }
      s.pending.assign(bytes);
      return Status::Ok();
    }
    if (s.pending.size() < kFrameHeaderBytes) {
      const std::size_t take = std::min(kFrameHeaderBytes - s.pending.size(), bytes.size());
      s.pending.append(bytes.substr(0, take));
      bytes.remove_prefix(take);
      if (s.pending.size() < kFrameHeaderBytes) return Status::Ok();
    }
    Result<std::uint32_t> length = s.FrameLength(s.pending.data());
    if (!length.ok()) return length.status();
    const std::size_t frame_size = kFrameHeaderBytes + *length;
    const std::size_t take = std::min(frame_size - s.pending.size(), bytes.size());
    s.pending.append(bytes.substr(0, take));
    bytes.remove_prefix(take);
    if (s.pending.size() < frame_size) return Status::Ok();
    GV_RETURN_IF_ERROR(s.Frame(s.pending));
    s.pending.clear();
  }
  return Status::Ok();
}

bool SnapshotDecoder::complete() const { return state_->complete && state_->pending.empty() && state_->error.ok(); }
const SnapshotMeta* SnapshotDecoder::meta() const { return state_->meta ? &*state_->meta : nullptr; }
std::uint64_t SnapshotDecoder::bytes() const { return state_->bytes + state_->pending.size(); }
std::uint64_t SnapshotDecoder::chunks() const { return state_->chunks; }
std::uint64_t SnapshotDecoder::entries() const { return state_->entries; }

Result<statestore::LoadedSnapshot> SnapshotDecoder::Finish() {
  State& s = *state_;
  if (!s.error.ok()) return s.error;
  if (!complete()) {
    return Status::Corruption("snapshot chunk " + std::to_string(s.chunks) + ": truncated: " +
                              (s.pending.empty() ? "the stream ends after " + std::to_string(s.chunks) +
                                                       " chunks, before the trailer"
                                                 : std::string("the stream ends inside it (partial chunk)")));
  }
  if (!s.keep_entries) return Status::InvalidArgument("snapshot decoder was told not to keep entries");
  if (s.finished) return Status::InvalidArgument("snapshot decoder: Finish called twice");
  s.finished = true;
  statestore::LoadedSnapshot loaded;
  const SnapshotMeta& m = *s.meta;
  loaded.format_version = m.format_version;
  loaded.node = m.node;
  loaded.applied = m.applied;
  loaded.hlc = m.hlc;
  loaded.index = m.index;
  loaded.live_keys = m.live_keys;
  loaded.created_wall_ms = m.created_wall_ms;
  loaded.wal_lsn = m.wal_lsn;
  loaded.entries = std::move(s.builder).Finish();
  return loaded;
}

Result<ChunkSummary> CheckFramedChunk(std::string_view frame_body, std::uint32_t masked_crc) {
  if (frame_body.size() > kMaxChunkBodyBytes) return Status::Corruption("body over the chunk size limit");
  AlignedBody aligned;
  const std::uint8_t* body = aligned.Assign(frame_body);
  Result<const fb::SnapshotChunk*> verified = VerifyBody(body, frame_body.size(), masked_crc);
  if (!verified.ok()) return verified.status();
  ChunkSummary summary;
  summary.kind = BodyName((*verified)->body_type());
  summary.position = (*verified)->position();
  if ((*verified)->body_type() == fb::Body_Entries) summary.entries = (*verified)->body_as_Entries()->count();
  return summary;
}

}  // namespace gv::snapshot
