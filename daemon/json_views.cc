#include "daemon/json_views.h"

namespace gv::daemon {

using json = nlohmann::json;

json NodeIdsJson(const std::vector<NodeId>& ids) {
  json out = json::array();
  for (NodeId id : ids) out.push_back(id.ToString());
  return out;
}

json NodeIdsJson(const NodeSet& ids) { return NodeIdsJson(std::vector<NodeId>(ids.begin(), ids.end())); }

json VersionVectorJson(const statestore::VersionVector& vv) {
  json out = json::object();
  for (const auto& [node, seq] : vv) out[node.ToString()] = seq;
  return out;
}

json OverlayRecordJson(const wire::OverlayRecord& record, std::uint64_t age_ms, bool self) {
  return json{{"id", record.node.ToString()},
              {"name", record.name},
              {"address", record.address},
              {"http", record.http},
              {"active", NodeIdsJson(record.active)},
              {"passive", NodeIdsJson(record.passive)},
              {"eager", NodeIdsJson(record.eager)},
              {"lazy", NodeIdsJson(record.lazy)},
              {"applied", VersionVectorJson(record.applied)},
              {"key_count", record.key_count},
              {"age_ms", age_ms},
              {"self", self},
              {"version", record.version}};
}

json MemberJson(const membership::MemberRecord& m) {
  return json{{"name", m.name},
              {"id", m.node.ToString()},
              {"address", m.address},
              {"status", membership::MemberStatusName(m.status)},
              {"tags", m.tags},
              {"incarnation", m.incarnation},
              {"http", m.http},
              {"dns", m.dns}};
}

}  // namespace gv::daemon
