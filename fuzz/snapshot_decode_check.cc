#include "fuzz/snapshot_decode_check.h"

#include <flatbuffers/flatbuffers.h>

#include <cstring>
#include <memory>
#include <vector>

#include "common/crc32c.h"
#include "snapshot/codec.h"
#include "snapshot/snapshot_generated.h"
#include "statestore/store.h"

namespace gv::fuzz {

namespace {

namespace sst = gv::statestore;

std::uint32_t GetU32(const char* in) {
  std::uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= std::uint32_t{static_cast<std::uint8_t>(in[i])} << (8 * i);
  return v;
}
void PutU32(char* out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>(v >> (8 * i));
}

// Sets a verified trailer's bodies_crc to `running`, in place.
void ResealTrailer(char* body, std::size_t size, std::uint32_t running) {
  std::unique_ptr<std::uint64_t[]> aligned(new std::uint64_t[(size + 7) / 8]);
  std::memcpy(aligned.get(), body, size);
  auto* bytes = reinterpret_cast<std::uint8_t*>(aligned.get());
  if (!flatbuffers::BufferHasIdentifier(bytes, snapshot::kChunkFileIdentifier)) return;
  flatbuffers::Verifier::Options options;
  options.max_depth = 4;
  options.max_tables = 4;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(bytes, size, options);
  if (!verifier.VerifyBuffer<snapshot::fb::SnapshotChunk>(snapshot::kChunkFileIdentifier)) return;
  auto* chunk = flatbuffers::GetMutableRoot<snapshot::fb::SnapshotChunk>(bytes);
  if (chunk->body_type() != snapshot::fb::Body_Trailer) return;
  auto* trailer = static_cast<snapshot::fb::Trailer*>(chunk->mutable_body());
  // False when the field is absent (a zero CRC is stored as the default).
  if (trailer->mutate_bodies_crc(running)) std::memcpy(body, bytes, size);
}

Result<sst::LoadedSnapshot> Decode(std::string_view input, std::size_t max_piece) {
  snapshot::SnapshotDecoder decoder;
  std::size_t piece = 1;
  for (std::size_t offset = 0; offset < input.size();) {
    const std::size_t n = max_piece == 0 ? input.size() : std::min(piece, input.size() - offset);
    GV_RETURN_IF_ERROR(decoder.Feed(input.substr(offset, n)));
    offset += n;
    if (max_piece != 0) piece = piece % max_piece + 1;
  }
  return decoder.Finish();
}

bool SameEntry(const sst::KeyEntry& a, const sst::KeyEntry& b) {
  return a.value == b.value && a.tombstone == b.tombstone && a.hlc == b.hlc && a.origin == b.origin &&
         a.flags == b.flags && a.vv == b.vv && a.conflict == b.conflict && a.create_index == b.create_index &&
         a.modify_index == b.modify_index;
}

bool SameEntries(const sst::KeyMap& a, const sst::KeyMap& b) {
  if (a.size() != b.size()) return false;
  auto x = a.Begin(), y = b.Begin();
  for (; x.valid() && y.valid(); x.Next(), y.Next()) {
    if (x.key() != y.key() || !SameEntry(x.value(), y.value())) return false;
  }
  return !x.valid() && !y.valid();
}

bool SameSnapshot(const sst::LoadedSnapshot& a, const sst::LoadedSnapshot& b) {
  return a.format_version == b.format_version && a.node == b.node && a.applied == b.applied && a.hlc == b.hlc &&
         a.index == b.index && a.live_keys == b.live_keys && a.created_wall_ms == b.created_wall_ms &&
         a.wal_lsn == b.wal_lsn && SameEntries(a.entries, b.entries);
}

// Split and alignment independence, and the round trip of an accepted input.
std::string CheckOne(std::string_view input, const char* which) {
  const std::string where = std::string(" (") + which + ")";
  const Result<sst::LoadedSnapshot> whole = Decode(input, 0);
  const Result<sst::LoadedSnapshot> pieces = Decode(input, 13);
  std::vector<char> shifted(input.size() + 1);
  if (!input.empty()) std::memcpy(shifted.data() + 1, input.data(), input.size());
  const Result<sst::LoadedSnapshot> misaligned = Decode(std::string_view(shifted.data() + 1, input.size()), 0);
  for (const auto* other : {&pieces, &misaligned}) {
    if (whole.ok() != other->ok()) return "the outcome depends on the split or the alignment" + where;
    if (!whole.ok() && whole.status().ToString() != other->status().ToString()) {
      return "the refusal depends on the split or the alignment: '" + whole.status().ToString() + "' vs '" +
             other->status().ToString() + "'" + where;
    }
    if (whole.ok() && !SameSnapshot(*whole, **other)) return "the decoded snapshot depends on the split" + where;
  }
  if (!whole.ok()) {
    if (whole.status().message().rfind("snapshot chunk ", 0) != 0) {
      return "a refusal that names no chunk: " + whole.status().ToString() + where;
    }
    return "";
  }
  const sst::LoadedSnapshot& loaded = *whole;
  if (std::string invariants = loaded.entries.CheckInvariants(); !invariants.empty()) {
    return "decoded map breaks its invariants: " + invariants + where;
  }
  sst::Store store(loaded.node, sst::StoreLimits{});
  if (Status installed = store.Install(loaded, true); !installed.ok()) {
    return "the store refuses an accepted snapshot: " + installed.ToString() + where;
  }
  const sst::StoreView view = store.Capture();
  const std::string encoded = snapshot::EncodeSnapshot(view, loaded.created_wall_ms, loaded.wal_lsn);
  if (snapshot::EncodeSnapshot(view, loaded.created_wall_ms, loaded.wal_lsn) != encoded) {
    return "encoding is not deterministic" + where;
  }
  const Result<sst::LoadedSnapshot> again = Decode(encoded, 0);
  if (!again.ok()) return "re-encoded snapshot does not decode: " + again.status().ToString() + where;
  if (again->node != loaded.node || again->applied != loaded.applied || again->index != loaded.index ||
      again->live_keys != loaded.live_keys || again->wal_lsn != loaded.wal_lsn ||
      !SameEntries(again->entries, loaded.entries)) {
    return "decode(encode(installed snapshot)) differs from the snapshot" + where;
  }
  return "";
}

}  // namespace

std::string ResealSnapshotStream(std::string_view input) {
  std::string out(input);
  std::uint32_t running = 0;
  for (std::size_t offset = 0; offset + snapshot::kFrameHeaderBytes <= out.size();) {
    const std::uint32_t length = GetU32(out.data() + offset);
    if (length == 0 || length > snapshot::kMaxChunkBodyBytes ||
        length > out.size() - offset - snapshot::kFrameHeaderBytes) {
      break;
    }
    char* body = out.data() + offset + snapshot::kFrameHeaderBytes;
    ResealTrailer(body, length, running);
    const std::uint32_t crc = crc32c::Value(body, length);
    PutU32(out.data() + offset + 4, crc32c::Mask(crc));
    char crc_bytes[4];
    PutU32(crc_bytes, crc);
    running = crc32c::Extend(running, crc_bytes, sizeof(crc_bytes));
    offset += snapshot::kFrameHeaderBytes + length;
  }
  return out;
}

std::string CheckSnapshotDecode(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (std::string failure = CheckOne(input, "as given"); !failure.empty()) return failure;
  return CheckOne(ResealSnapshotStream(input), "resealed");
}

}  // namespace gv::fuzz
