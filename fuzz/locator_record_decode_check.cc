#include "fuzz/locator_record_decode_check.h"

#include <vector>

#include "fuzz/codec_check.h"
#include "membership/member_list.h"
#include "membership/service_catalog.h"
#include "wire/member_record.h"
#include "wire/service_record.h"

namespace gv::fuzz {

namespace {

std::string CheckMember(std::string_view input) {
  auto decode = [](std::string_view bytes) { return wire::DecodeMemberRecord(bytes); };
  const auto decoded = decode(input);
  if (std::string failure = CheckAlignmentIndependent(input, decoded, decode, "member record"); !failure.empty()) {
    return "member record: " + failure;
  }
  if (!decoded.ok()) return "";
  if (!membership::ValidateMemberRecord(*decoded).ok()) return "member record: accepted a record breaking the rules";
  std::string failure = CheckCanonicalRoundTrip(
      *decoded, decode, [](const wire::MemberRecord& r) { return wire::EncodeMemberRecord(r); }, "member record");
  return failure.empty() ? "" : "member record: " + failure;
}

std::string CheckService(std::string_view input) {
  auto decode = [](std::string_view bytes) { return wire::DecodeServiceRecord(bytes); };
  const auto decoded = decode(input);
  if (std::string failure = CheckAlignmentIndependent(input, decoded, decode, "service record"); !failure.empty()) {
    return "service record: " + failure;
  }
  if (!decoded.ok()) return "";
  if (!membership::ValidateServiceRecord(*decoded).ok()) return "service record: accepted a record breaking the rules";
  std::string failure = CheckCanonicalRoundTrip(
      *decoded, decode, [](const wire::ServiceRecord& r) { return wire::EncodeServiceRecord(r); }, "service record");
  return failure.empty() ? "" : "service record: " + failure;
}

std::string CheckTable(std::string_view input) {
  auto decode = [](std::string_view bytes) { return wire::DecodeLocatorTable(bytes); };
  const auto decoded = decode(input);
  if (std::string failure = CheckAlignmentIndependent(input, decoded, decode, "locator table"); !failure.empty()) {
    return "locator table: " + failure;
  }
  if (!decoded.ok()) return "";
  for (const auto& m : decoded->members) {
    if (!membership::ValidateMemberRecord(m).ok()) return "locator table: accepted a member breaking the rules";
  }
  for (const auto& s : decoded->services) {
    if (!membership::ValidateServiceRecord(s).ok()) return "locator table: accepted a service breaking the rules";
  }
  // A table that arrived in one buffer re-encodes to one buffer: records are
  // re-encoded canonically, which never needs more than the input's bytes
  // plus the encoder's per-record margin.
  auto encode = [](const wire::LocatorTable& t) {
    std::vector<std::string> parts = wire::EncodeLocatorTable(t);
    return parts.size() == 1 ? parts[0] : std::string();
  };
  std::string failure = CheckCanonicalRoundTrip(*decoded, decode, encode, "locator table");
  return failure.empty() ? "" : "locator table: " + failure;
}

}  // namespace

bool LocatorRecordDecodes(std::string_view input) {
  return wire::DecodeMemberRecord(input).ok() || wire::DecodeServiceRecord(input).ok() ||
         wire::DecodeLocatorTable(input).ok();
}

std::string CheckLocatorRecordDecode(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (std::string failure = CheckMember(input); !failure.empty()) return failure;
  if (std::string failure = CheckService(input); !failure.empty()) return failure;
  return CheckTable(input);
}

}  // namespace gv::fuzz
