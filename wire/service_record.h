// Service records of the service locator (issue 6, docs/services.md) and the
// locator table a node sends a new neighbour. A service record is a
// FlatBuffers ServiceRecord ("GVV1"); the table a LocatorTable ("GVL1")
// carried in the envelope's LocatorState message (wire/locator.fbs). Both are
// verified before use.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "membership/service_catalog.h"
#include "wire/member_record.h"

namespace gv::wire {

inline constexpr char kServiceRecordFileIdentifier[] = "GVV1";
inline constexpr char kLocatorTableFileIdentifier[] = "GVL1";

using membership::ServiceRecord;
using membership::ServiceStatus;

struct ServiceRecordLimits {
  std::size_t max_bytes = 64u << 10;
  membership::ServiceRecordLimits record;
};

std::string EncodeServiceRecord(const ServiceRecord& record);
Result<ServiceRecord> DecodeServiceRecord(std::string_view bytes, const ServiceRecordLimits& limits = {});

// ---- The whole table, sent to a new neighbour ----

struct LocatorTable {
  std::vector<MemberRecord> members;
  std::vector<ServiceRecord> services;
  bool reply_wanted = false;  // the receiver answers with its own table
  bool operator==(const LocatorTable&) const = default;
};

struct LocatorTableLimits {
  // The envelope's max_payload_bytes bounds LocatorState.data.
  std::size_t max_bytes = 4u << 20;
  std::size_t max_members = 10000;
  std::size_t max_services = 50000;
  MemberRecordLimits member;
  ServiceRecordLimits service;
};

// Encodes the table as one or more buffers, each within limits.max_bytes
// (records never straddle two; reply_wanted is set on the first only).
std::vector<std::string> EncodeLocatorTable(const LocatorTable& table, const LocatorTableLimits& limits = {});
// One buffer: every record is verified and validated like a broadcast one.
Result<LocatorTable> DecodeLocatorTable(std::string_view bytes, const LocatorTableLimits& limits = {});

}  // namespace gv::wire
