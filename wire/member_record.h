// Member records of the service locator (issue 6, docs/services.md): what
// every node knows about every member — identity, addresses, tags and a
// SWIM-style (incarnation, status) pair. A record is a FlatBuffers
// MemberRecord ("GVM1", wire/locator.fbs), verified before use.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/node_id.h"
#include "common/status.h"
#include "membership/member_list.h"

namespace gv::wire {

inline constexpr char kMemberRecordFileIdentifier[] = "GVM1";

// The record type and its rules live with the member list (membership/);
// this is its wire form.
using membership::MemberRecord;
using membership::MemberStatus;

struct MemberRecordLimits {
  std::size_t max_bytes = 64u << 10;
  membership::MemberRecordLimits record;
};

std::string EncodeMemberRecord(const MemberRecord& record);
// Verifies the buffer, then the record (membership::ValidateMemberRecord,
// canonical sorted tags, a known status) before returning it.
Result<MemberRecord> DecodeMemberRecord(std::string_view bytes, const MemberRecordLimits& limits = {});

}  // namespace gv::wire
