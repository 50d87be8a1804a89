#include "snapshot/codec.h"

#include <flatbuffers/flatbuffers.h>

#include <algorithm>
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
// Entries gathered (their memory touched) before they are encoded; see EmitEntries.
constexpr std::size_t kGatherBatch = 128;

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

struct SnapshotEncoder::State {
  enum class Stage { kHeader, kEntries, kTrailer, kDone };

  statestore::StoreView view;
  sst::KeyMap::Cursor cursor;
  SnapshotMeta meta;
  std::size_t chunk_target_bytes;
  Stage stage = Stage::kHeader;
  std::uint64_t chunks = 0;
  std::uint64_t bytes = 0;
  std::uint64_t entries = 0;
  std::uint32_t bodies_crc = 0;  // ExtendChain over every body's CRC so far
  flatbuffers::FlatBufferBuilder builder{64 * 1024};
  // Columns of the chunk being built, reused across chunks.
  std::string keys, values, records;
  std::vector<std::uint64_t> nodes;
  std::map<std::uint64_t, std::uint64_t> node_refs;
  struct Gathered {
    const std::string* key;
    const sst::KeyEntry* entry;
  };
  std::vector<Gathered> batch;
  std::uint64_t touched = 0;  // the gather loads' sum: keeps them from being optimised away

  std::uint64_t NodeRef(NodeId node) {
    // find first: emplace would allocate a map node on every call.
    if (auto it = node_refs.find(node.value); it != node_refs.end()) return it->second;
    node_refs.emplace(node.value, nodes.size());
    nodes.push_back(node.value);
    return nodes.size() - 1;
  }

  void Emit(std::string* out, flatbuffers::Offset<void> body, fb::Body type) {
    auto chunk = fb::CreateSnapshotChunk(builder, chunks, type, body);
    builder.Finish(chunk, kChunkFileIdentifier);
    const std::size_t before = out->size();
    const std::uint32_t crc = AppendFrame(out, builder.GetBufferPointer(), builder.GetSize());
    bodies_crc = ExtendChain(bodies_crc, crc);
    bytes += out->size() - before;
    ++chunks;
    builder.Clear();
  }

  void EmitHeader(std::string* out) {
    std::vector<fb::VvEntry> applied;
    applied.reserve(meta.applied.size());
    for (const auto& [node, counter] : meta.applied) applied.emplace_back(node.value, counter);
    auto applied_vector = builder.CreateVectorOfStructs(applied);
    auto header = fb::CreateHeader(builder, meta.format_version, meta.node.value, applied_vector, meta.hlc.Pack(),
                                   meta.index, meta.entry_count, meta.live_keys, meta.created_wall_ms, meta.wal_lsn);
    Emit(out, header.Union(), fb::Body_Header);
  }

  void EmitEntries(std::string* out) {
    keys.clear();
    values.clear();
    records.clear();
    nodes.clear();
    node_refs.clear();
    const std::uint64_t first_entry = entries;
    std::uint32_t count = 0;
    auto chunk_bytes = [&] { return keys.size() + values.size() + records.size() + nodes.size() * 8; };
    while (cursor.valid() && chunk_bytes() < chunk_target_bytes) {
      // Gather a batch first, touching each entry's item, key, value and
      // vector: those loads are independent, so the CPU overlaps their cache
      // misses (the data sits in insertion order, not key order), where the
      // encoding below, with its dependency chain per entry, would wait for
      // each in turn. The estimate is an upper bound of what an entry adds
      // (every varint at its longest, every node new to the dictionary), so
      // a chunk ends at most one entry past its target, as without batching
      // (kMaxChunkBodyBytes relies on that).
      batch.clear();
      std::size_t estimate = chunk_bytes();
      while (cursor.valid() && batch.size() < kGatherBatch && estimate < chunk_target_bytes) {
        const std::string& key = cursor.key();
        const sst::KeyEntry& entry = cursor.value();
        touched += static_cast<unsigned char>(key.data()[0]) + static_cast<unsigned char>(entry.value.data()[0]) +
                   (entry.vv.empty() ? 0 : entry.vv.begin()->second);
        estimate += key.size() + entry.value.size() + (9 + 2 * entry.vv.size()) * kMaxVarintBytes +
                    8 * (entry.vv.size() + 1);
        batch.push_back(Gathered{&key, &entry});
        cursor.Next();
      }
      for (const Gathered& gathered : batch) Append(*gathered.key, *gathered.entry);
      count += static_cast<std::uint32_t>(batch.size());
    }
    entries += count;
    auto as_bytes = [](const std::string& s) { return reinterpret_cast<const std::uint8_t*>(s.data()); };
    auto nodes_vector = builder.CreateVector(nodes);
    auto keys_vector = builder.CreateVector(as_bytes(keys), keys.size());
    auto values_vector = builder.CreateVector(as_bytes(values), values.size());
    auto records_vector = builder.CreateVector(as_bytes(records), records.size());
    auto body = fb::CreateEntries(builder, first_entry, count, nodes_vector, keys_vector, values_vector, records_vector);
    Emit(out, body.Union(), fb::Body_Entries);
  }

  // Appends one entry to the chunk's columns.
  void Append(const std::string& key, const sst::KeyEntry& entry) {
    keys += key;
    values += entry.value;
    // The record in place: 9 fields and 2 per vector entry, each at most
    // kMaxVarintBytes; trimmed to what was written.
    const std::size_t start = records.size();
    records.resize(start + (9 + 2 * entry.vv.size()) * kMaxVarintBytes);
    char* p = records.data() + start;
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
    records.resize(static_cast<std::size_t>(p - records.data()));
  }

  void EmitTrailer(std::string* out) {
    auto trailer = fb::CreateTrailer(builder, chunks, entries, meta.live_keys, bodies_crc);
    Emit(out, trailer.Union(), fb::Body_Trailer);
  }
};

SnapshotEncoder::SnapshotEncoder(statestore::StoreView view, std::uint64_t created_wall_ms, std::uint64_t wal_lsn,
                                 std::size_t chunk_target_bytes)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.view = std::move(view);
  s.cursor = s.view.keys().Begin();
  s.meta.format_version = kFormatVersion;
  s.meta.node = s.view.node();
  s.meta.applied = s.view.applied();
  s.meta.hlc = s.view.hlc();
  s.meta.index = s.view.index();
  s.meta.entry_count = s.view.entry_count();
  s.meta.live_keys = s.view.live_keys();
  s.meta.created_wall_ms = created_wall_ms;
  s.meta.wal_lsn = wal_lsn;
  s.chunk_target_bytes = std::clamp<std::size_t>(chunk_target_bytes, 1, kMaxChunkTargetBytes);
}

SnapshotEncoder::~SnapshotEncoder() = default;
SnapshotEncoder::SnapshotEncoder(SnapshotEncoder&&) noexcept = default;
SnapshotEncoder& SnapshotEncoder::operator=(SnapshotEncoder&&) noexcept = default;

bool SnapshotEncoder::NextChunk(std::string* framed_chunk) {
  State& s = *state_;
  switch (s.stage) {
    case State::Stage::kHeader:
      s.EmitHeader(framed_chunk);
      s.stage = s.cursor.valid() ? State::Stage::kEntries : State::Stage::kTrailer;
      return true;
    case State::Stage::kEntries:
      s.EmitEntries(framed_chunk);
      if (!s.cursor.valid()) s.stage = State::Stage::kTrailer;
      return true;
    case State::Stage::kTrailer:
      s.EmitTrailer(framed_chunk);
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
      if (keep_entries) builder.Append(std::string(key), std::move(entry));
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
