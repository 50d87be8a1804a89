// The JSON shapes that more than one endpoint answers with: a /v1/topology
// node entry (also in the web UI's event stream) and a /v1/members entry.
// One definition each, so the UI's live view and the REST answers never drift.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <vector>

#include "common/node_id.h"
#include "common/node_set.h"
#include "membership/member_list.h"
#include "statestore/delta.h"
#include "wire/overlay_record.h"

namespace gv::daemon {

nlohmann::json NodeIdsJson(const std::vector<NodeId>& ids);
nlohmann::json NodeIdsJson(const NodeSet& ids);
// {"<node id>": counter, ...}
nlohmann::json VersionVectorJson(const statestore::VersionVector& vv);
// A /v1/topology node: id, name, addresses, the four views, applied vector,
// key count, the record's age and version, and whether it is the answering node.
nlohmann::json OverlayRecordJson(const wire::OverlayRecord& record, std::uint64_t age_ms, bool self);
// A /v1/members entry.
nlohmann::json MemberJson(const membership::MemberRecord& member);

}  // namespace gv::daemon
