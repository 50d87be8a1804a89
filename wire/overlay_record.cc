#include "wire/overlay_record.h"

#include <flatbuffers/flatbuffers.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "wire/aligned_bytes.h"
#include "wire/grapevine_generated.h"

namespace gv::wire {

namespace {

Status Malformed(const std::string& what) { return Status::Corruption("overlay record decode: " + what); }
Status Invalid(const std::string& what) { return Status::InvalidArgument("overlay record decode: " + what); }

// "name is 300 bytes, over max_string_bytes = 256": the field and the limit.
Status OverLimit(const std::string& what, std::size_t count, const char* unit, const char* limit_name,
                 std::size_t limit) {
  return Status::TooLarge("overlay record decode: " + what + " is " + std::to_string(count) + " " + unit +
                          ", over " + limit_name + " = " + std::to_string(limit));
}

// The verifier checks a vector's length word for 4-byte alignment only; its
// 8-byte elements are read in place, so they must be 8-aligned too (the
// buffer itself is, through AlignedBytes). An empty vector has nothing to
// read, and the builder does not align its (empty) data: it is accepted.
template <typename Element>
Status CheckAligned(const flatbuffers::Vector<Element>& vector, std::size_t alignment, const char* field) {
  if (vector.size() > 0 && reinterpret_cast<std::uintptr_t>(vector.Data()) % alignment != 0) {
    return Malformed(std::string(field) + " is misaligned");
  }
  return Status::Ok();
}

flatbuffers::Offset<flatbuffers::Vector<std::uint64_t>> Ids(flatbuffers::FlatBufferBuilder& builder,
                                                             const std::vector<NodeId>& ids) {
  std::vector<std::uint64_t> raw;
  raw.reserve(ids.size());
  for (NodeId id : ids) raw.push_back(id.value);
  return builder.CreateVector(raw);
}

Status ReadString(const flatbuffers::String* in, const char* field, std::size_t max_bytes, std::string& out) {
  if (in == nullptr) return Status::Ok();
  if (in->size() > max_bytes) return OverLimit(field, in->size(), "bytes", "max_string_bytes", max_bytes);
  out.assign(in->data(), in->size());
  return Status::Ok();
}

Status ReadIds(const flatbuffers::Vector<std::uint64_t>* in, const char* field, std::size_t max_entries,
               std::vector<NodeId>& out) {
  if (in == nullptr) return Status::Ok();
  GV_RETURN_IF_ERROR(CheckAligned(*in, alignof(std::uint64_t), field));
  if (in->size() > max_entries) return OverLimit(field, in->size(), "entries", "max_view_entries", max_entries);
  out.reserve(in->size());
  for (flatbuffers::uoffset_t i = 0; i < in->size(); ++i) {
    const std::uint64_t id = in->Get(i);
    if (id == 0) return Invalid(std::string(field) + "[" + std::to_string(i) + "] is node id 0");
    out.emplace_back(id);
  }
  return Status::Ok();
}

Status ReadApplied(const flatbuffers::Vector<const fb::VvEntry*>* in, std::size_t max_entries,
                   statestore::VersionVector& out) {
  if (in == nullptr) return Status::Ok();
  GV_RETURN_IF_ERROR(CheckAligned(*in, alignof(fb::VvEntry), "applied"));
  if (in->size() > max_entries) return OverLimit("applied", in->size(), "entries", "max_vector_entries", max_entries);
  std::uint64_t previous = 0;
  out.reserve(out.size() + in->size());
  for (flatbuffers::uoffset_t i = 0; i < in->size(); ++i) {
    const fb::VvEntry* entry = in->Get(i);
    const std::string at = "applied[" + std::to_string(i) + "]";
    if (entry->node() == 0) return Invalid(at + " is node id 0");
    // Canonical form: strictly increasing nodes, so no duplicates and one encoding.
    if (i > 0 && entry->node() <= previous) return Invalid("applied is not strictly sorted by node");
    if (entry->counter() == 0) return Invalid(at + " has counter 0 (counters start at 1)");
    previous = entry->node();
    out.emplace_hint(out.end(), NodeId(entry->node()), entry->counter());
  }
  return Status::Ok();
}

}  // namespace

bool HasFileIdentifier(std::string_view bytes, const char* id) {
  return bytes.size() >= 8 && std::memcmp(bytes.data() + 4, id, 4) == 0;
}

std::string EncodeOverlayRecord(const OverlayRecord& record) {
  flatbuffers::FlatBufferBuilder builder(512);
  auto name = builder.CreateString(record.name);
  auto address = builder.CreateString(record.address);
  auto http = builder.CreateString(record.http);
  auto active = Ids(builder, record.active);
  auto passive = Ids(builder, record.passive);
  auto eager = Ids(builder, record.eager);
  auto lazy = Ids(builder, record.lazy);
  std::vector<fb::VvEntry> entries;
  entries.reserve(record.applied.size());
  for (const auto& [node, counter] : record.applied) entries.emplace_back(node.value, counter);
  auto applied = builder.CreateVectorOfStructs(entries);
  auto root = fb::CreateOverlayRecord(builder, record.node.value, name, address, http, record.version, record.left,
                                      active, passive, eager, lazy, applied, record.key_count);
  builder.Finish(root, kOverlayRecordFileIdentifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

Result<OverlayRecord> DecodeOverlayRecord(std::string_view bytes, const OverlayRecordLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return OverLimit("the record", bytes.size(), "bytes", "max_bytes", limits.max_bytes);
  }
  if (bytes.size() < 8) return Malformed("buffer of " + std::to_string(bytes.size()) + " bytes is too short");
  const AlignedBytes aligned(bytes);  // FlatBuffers reads scalars in place
  const std::uint8_t* data = aligned.data();
  if (!flatbuffers::BufferHasIdentifier(data, kOverlayRecordFileIdentifier)) {
    return Malformed(std::string("not an overlay record (file identifier is not ") + kOverlayRecordFileIdentifier + ")");
  }
  // One table (the record); strings and vectors do not count as tables.
  flatbuffers::Verifier::Options options;
  options.max_depth = 4;
  options.max_tables = 4;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(data, bytes.size(), options);
  if (!verifier.VerifyBuffer<fb::OverlayRecord>(kOverlayRecordFileIdentifier)) {
    return Malformed("FlatBuffers verification failed (truncated or corrupt buffer)");
  }
  const fb::OverlayRecord* root = flatbuffers::GetRoot<fb::OverlayRecord>(data);
  OverlayRecord record;
  if (root->node() == 0) return Invalid("node is node id 0");
  record.node = NodeId(root->node());
  GV_RETURN_IF_ERROR(ReadString(root->name(), "name", limits.max_string_bytes, record.name));
  GV_RETURN_IF_ERROR(ReadString(root->address(), "address", limits.max_string_bytes, record.address));
  GV_RETURN_IF_ERROR(ReadString(root->http(), "http", limits.max_string_bytes, record.http));
  record.version = root->version();
  record.left = root->left();
  GV_RETURN_IF_ERROR(ReadIds(root->active(), "active", limits.max_view_entries, record.active));
  GV_RETURN_IF_ERROR(ReadIds(root->passive(), "passive", limits.max_view_entries, record.passive));
  GV_RETURN_IF_ERROR(ReadIds(root->eager(), "eager", limits.max_view_entries, record.eager));
  GV_RETURN_IF_ERROR(ReadIds(root->lazy(), "lazy", limits.max_view_entries, record.lazy));
  GV_RETURN_IF_ERROR(ReadApplied(root->applied(), limits.max_vector_entries, record.applied));
  record.key_count = root->key_count();
  return record;
}

}  // namespace gv::wire
