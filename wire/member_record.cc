#include "wire/member_record.h"

#include <flatbuffers/flatbuffers.h>

#include <vector>

#include "wire/aligned_bytes.h"
#include "wire/locator_generated.h"

namespace gv::wire {

namespace {

Status Malformed(const std::string& what) { return Status::Corruption("member record decode: " + what); }
Status Invalid(const std::string& what) { return Status::InvalidArgument("member record: " + what); }
Status OverLimit(const std::string& what, std::size_t count, const char* limit_name, std::size_t limit) {
  return Status::TooLarge("member record: " + what + " is " + std::to_string(count) + ", over " + limit_name + " = " +
                          std::to_string(limit));
}

std::string_view View(const flatbuffers::String* s) {
  return s == nullptr ? std::string_view() : std::string_view(s->data(), s->size());
}

}  // namespace

std::string EncodeMemberRecord(const MemberRecord& record) {
  flatbuffers::FlatBufferBuilder builder(256);
  auto name = builder.CreateString(record.name);
  auto address = builder.CreateString(record.address);
  auto http = builder.CreateString(record.http);
  auto dns = builder.CreateString(record.dns);
  std::vector<flatbuffers::Offset<fb::KeyValue>> tags;
  tags.reserve(record.tags.size());
  for (const auto& [key, value] : record.tags) {
    tags.push_back(fb::CreateKeyValue(builder, builder.CreateString(key), builder.CreateString(value)));
  }
  auto tag_vector = builder.CreateVector(tags);
  auto root = fb::CreateMemberRecord(builder, record.node.value, name, address, http, dns, tag_vector,
                                     record.incarnation, record.epoch, static_cast<fb::MemberStatus>(record.status),
                                     record.reporter.value, record.status_since_wall_ms);
  builder.Finish(root, kMemberRecordFileIdentifier);
  return std::string(reinterpret_cast<const char*>(builder.GetBufferPointer()), builder.GetSize());
}

Result<MemberRecord> DecodeMemberRecord(std::string_view bytes, const MemberRecordLimits& limits) {
  if (bytes.size() > limits.max_bytes) return OverLimit("the record's size", bytes.size(), "max_bytes", limits.max_bytes);
  if (bytes.size() < 8) return Malformed("buffer of " + std::to_string(bytes.size()) + " bytes is too short");
  const AlignedBytes aligned(bytes);
  const std::uint8_t* data = aligned.data();
  if (!flatbuffers::BufferHasIdentifier(data, kMemberRecordFileIdentifier)) {
    return Malformed(std::string("not a member record (file identifier is not ") + kMemberRecordFileIdentifier + ")");
  }
  // The record and one table per tag.
  flatbuffers::Verifier::Options options;
  options.max_depth = 4;
  options.max_tables = 2 + limits.record.max_tags;
  options.check_alignment = true;
  flatbuffers::Verifier verifier(data, bytes.size(), options);
  if (!verifier.VerifyBuffer<fb::MemberRecord>(kMemberRecordFileIdentifier)) {
    return Malformed("FlatBuffers verification failed (truncated or corrupt buffer)");
  }
  const fb::MemberRecord* root = flatbuffers::GetRoot<fb::MemberRecord>(data);
  MemberRecord record;
  record.node = NodeId(root->node());
  record.name = View(root->name());
  record.address = View(root->address());
  record.http = View(root->http());
  record.dns = View(root->dns());
  if (const auto* tags = root->tags()) {
    if (tags->size() > limits.record.max_tags) return OverLimit("the tag count", tags->size(), "max_tags", limits.record.max_tags);
    std::string previous;
    for (flatbuffers::uoffset_t i = 0; i < tags->size(); ++i) {
      const fb::KeyValue* tag = tags->Get(i);
      std::string key(View(tag->key()));
      // Canonical form: strictly increasing keys, so one encoding per record.
      if (i > 0 && key <= previous) return Invalid("tags are not strictly sorted by key");
      record.tags.emplace_hint(record.tags.end(), key, std::string(View(tag->value())));
      previous = std::move(key);
    }
  }
  record.incarnation = root->incarnation();
  record.epoch = root->epoch();
  const auto status = static_cast<std::uint8_t>(root->status());
  if (status > static_cast<std::uint8_t>(MemberStatus::kLeft)) return Invalid("unknown status " + std::to_string(status));
  record.status = static_cast<MemberStatus>(status);
  record.reporter = NodeId(root->reporter());
  record.status_since_wall_ms = root->status_since_wall_ms();
  GV_RETURN_IF_ERROR(membership::ValidateMemberRecord(record, limits.record));
  return record;
}

}  // namespace gv::wire
