#include "wire/service_record.h"

#include <flatbuffers/flatbuffers.h>


#include "wire/aligned_bytes.h"
#include "wire/locator_generated.h"

namespace gv::wire {

namespace {

Status Malformed(const std::string& what) { return Status::Corruption(what); }
Status Invalid(const std::string& what) { return Status::InvalidArgument("service record: " + what); }
Status OverLimit(const std::string& what, std::size_t count, const char* limit_name, std::size_t limit) {
  return Status::TooLarge(what + " is " + std::to_string(count) + ", over " + limit_name + " = " +
                          std::to_string(limit));
}

std::string_view View(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->data(), s->size());
}

std::string_view View(const flatbuffers::Vector<std::uint8_t>* v) {
  return v == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(v->data()), v->size());
}

// Verifies `bytes` as a FlatBuffer with identifier `id` and root T; returns
// the root or nullptr. `aligned` must outlive the returned pointer.
template <typename T>
const T* VerifiedRoot(const AlignedBytes& aligned, std::size_t size, const char* id, std::size_t max_tables) {
  if (!flatbuffers::BufferHasIdentifier(aligned.data(), id)) return nullptr;
  flatbuffers::Verifier::Options options;
  options.max_depth = 4;
  options.max_tables = max_tables;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(aligned.data(), size, options);
  if (!verifier.VerifyBuffer<T>(id)) return nullptr;
  return flatbuffers::GetRoot<T>(aligned.data());
}

// The same status with `prefix` before its message (the record's position).
Status Prefixed(const Status& status, const std::string& prefix) {
  const std::string message = prefix + status.message();
  switch (status.code()) {
    case StatusCode::kTooLarge: return Status::TooLarge(message);
    case StatusCode::kInvalidArgument: return Status::InvalidArgument(message);
    default: return Status::Corruption(message);
  }
}

}  // namespace

std::string EncodeServiceRecord(const ServiceRecord& record) {
  flatbuffers::FlatBufferBuilder builder(256);
  auto id = builder.CreateString(record.id);
  auto name = builder.CreateString(record.name);
  auto address = builder.CreateString(record.address);
  auto tags = builder.CreateVectorOfStrings(record.tags);
  std::vector<flatbuffers::Offset<fb::KeyValue>> meta;
  meta.reserve(record.meta.size());
  for (const auto& [key, value] : record.meta) {
    meta.push_back(fb::CreateKeyValue(builder, builder.CreateString(key), builder.CreateString(value)));
  }
  auto meta_vector = builder.CreateVector(meta);
  auto root = fb::CreateServiceRecord(builder, record.owner.value, record.owner_epoch, id, name, address, record.port,
                                      tags, meta_vector, record.ttl_ms, static_cast<fb::ServiceStatus>(record.status),
                                      record.version, record.status_since_wall_ms);
  builder.Finish(root, kServiceRecordFileIdentifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

Result<ServiceRecord> DecodeServiceRecord(std::string_view bytes, const ServiceRecordLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return OverLimit("service record: the record's size", bytes.size(), "max_bytes", limits.max_bytes);
  }
  if (bytes.size() < 8) return Malformed("service record decode: buffer of " + std::to_string(bytes.size()) + " bytes is too short");
  const AlignedBytes aligned(bytes);
  const fb::ServiceRecord* root =
      VerifiedRoot<fb::ServiceRecord>(aligned, bytes.size(), kServiceRecordFileIdentifier, 2 + limits.record.max_meta);
  if (root == nullptr) {
    return Malformed(std::string("service record decode: not a verified \"") + kServiceRecordFileIdentifier +
                     "\" buffer (wrong identifier, truncated or corrupt)");
  }
  ServiceRecord record;
  record.owner = NodeId(root->owner());
  record.owner_epoch = root->owner_epoch();
  record.id = View(root->id());
  record.name = View(root->name());
  record.address = View(root->address());
  record.port = root->port();
  if (const auto* tags = root->tags()) {
    if (tags->size() > limits.record.max_tags) {
      return OverLimit("service record: the tag count", tags->size(), "max_tags", limits.record.max_tags);
    }
    for (flatbuffers::uoffset_t i = 0; i < tags->size(); ++i) record.tags.emplace_back(View(tags->Get(i)));
  }
  if (const auto* meta = root->meta()) {
    if (meta->size() > limits.record.max_meta) {
      return OverLimit("service record: the meta count", meta->size(), "max_meta", limits.record.max_meta);
    }
    std::string previous;
    for (flatbuffers::uoffset_t i = 0; i < meta->size(); ++i) {
      std::string key(View(meta->Get(i)->key()));
      if (i > 0 && key <= previous) return Invalid("meta is not strictly sorted by key");
      record.meta.emplace_hint(record.meta.end(), key, std::string(View(meta->Get(i)->value())));
      previous = std::move(key);
    }
  }
  record.ttl_ms = root->ttl_ms();
  const auto status = static_cast<std::uint8_t>(root->status());
  if (status > static_cast<std::uint8_t>(ServiceStatus::kRemoved)) return Invalid("unknown status " + std::to_string(status));
  record.status = static_cast<ServiceStatus>(status);
  record.version = root->version();
  record.status_since_wall_ms = root->status_since_wall_ms();
  GV_RETURN_IF_ERROR(membership::ValidateServiceRecord(record, limits.record));
  return record;
}

std::vector<std::string> EncodeLocatorTable(const LocatorTable& table, const LocatorTableLimits& limits) {
  std::vector<std::string> members;
  std::vector<std::string> services;
  for (const MemberRecord& m : table.members) members.push_back(EncodeMemberRecord(m));
  for (const ServiceRecord& s : table.services) services.push_back(EncodeServiceRecord(s));
  // Per record: its bytes, padding to 4 and the vector-of-bytes table around
  // it (a vtable, an offset, a length word: well under 64 bytes). Keep a
  // fixed margin for the root table.
  constexpr std::size_t kPerRecordOverhead = 64;
  constexpr std::size_t kRootOverhead = 256;
  std::vector<std::string> out;
  std::size_t next_member = 0;
  std::size_t next_service = 0;
  do {
    flatbuffers::FlatBufferBuilder builder(4096);
    std::size_t budget = limits.max_bytes > kRootOverhead ? limits.max_bytes - kRootOverhead : 0;
    std::size_t member_count = 0;
    std::size_t service_count = 0;
    std::vector<flatbuffers::Offset<fb::EncodedRecord>> member_offsets;
    std::vector<flatbuffers::Offset<fb::EncodedRecord>> service_offsets;
    auto add = [&](const std::string& encoded, std::vector<flatbuffers::Offset<fb::EncodedRecord>>& offsets) {
      const std::size_t cost = encoded.size() + kPerRecordOverhead;
      // A record alone over the budget is dropped (it cannot be sent);
      // records that merely do not fit wait for the next buffer.
      if (cost > budget && offsets.empty() && member_offsets.empty() && service_offsets.empty()) return true;
      if (cost > budget) return false;
      budget -= cost;
      builder.ForceVectorAlignment(encoded.size(), 1, 8);  // the nested buffer starts 8-aligned
      auto data = builder.CreateVector(reinterpret_cast<const std::uint8_t*>(encoded.data()), encoded.size());
      offsets.push_back(fb::CreateEncodedRecord(builder, data));
      return true;
    };
    while (next_member < members.size() && member_count < limits.max_members) {
      if (!add(members[next_member], member_offsets)) break;
      ++next_member;
      ++member_count;
    }
    while (next_member >= members.size() && next_service < services.size() && service_count < limits.max_services) {
      if (!add(services[next_service], service_offsets)) break;
      ++next_service;
      ++service_count;
    }
    auto m = builder.CreateVector(member_offsets);
    auto s = builder.CreateVector(service_offsets);
    builder.Finish(fb::CreateLocatorTable(builder, m, s, out.empty() && table.reply_wanted),
                   kLocatorTableFileIdentifier);
    out.emplace_back(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
  } while (next_member < members.size() || next_service < services.size());
  return out;
}

Result<LocatorTable> DecodeLocatorTable(std::string_view bytes, const LocatorTableLimits& limits) {
  if (bytes.size() > limits.max_bytes) {
    return OverLimit("locator table: the buffer", bytes.size(), "max_bytes", limits.max_bytes);
  }
  if (bytes.size() < 8) return Malformed("locator table decode: buffer of " + std::to_string(bytes.size()) + " bytes is too short");
  const AlignedBytes aligned(bytes);
  const fb::LocatorTable* root = VerifiedRoot<fb::LocatorTable>(aligned, bytes.size(), kLocatorTableFileIdentifier,
                                                                1 + limits.max_members + limits.max_services);
  if (root == nullptr) {
    return Malformed(std::string("locator table decode: not a verified \"") + kLocatorTableFileIdentifier +
                     "\" buffer (wrong identifier, truncated or corrupt)");
  }
  LocatorTable table;
  table.reply_wanted = root->reply_wanted();
  if (const auto* members = root->members()) {
    if (members->size() > limits.max_members) {
      return OverLimit("locator table: the member count", members->size(), "max_members", limits.max_members);
    }
    table.members.reserve(members->size());
    for (flatbuffers::uoffset_t i = 0; i < members->size(); ++i) {
      auto record = DecodeMemberRecord(View(members->Get(i)->data()), limits.member);
      if (!record.ok()) return Prefixed(record.status(), "locator table: members[" + std::to_string(i) + "]: ");
      table.members.push_back(std::move(*record));
    }
  }
  if (const auto* services = root->services()) {
    if (services->size() > limits.max_services) {
      return OverLimit("locator table: the service count", services->size(), "max_services", limits.max_services);
    }
    table.services.reserve(services->size());
    for (flatbuffers::uoffset_t i = 0; i < services->size(); ++i) {
      auto record = DecodeServiceRecord(View(services->Get(i)->data()), limits.service);
      if (!record.ok()) return Prefixed(record.status(), "locator table: services[" + std::to_string(i) + "]: ");
      table.services.push_back(std::move(*record));
    }
  }
  return table;
}

}  // namespace gv::wire
