// grapevine status | members | topology: the local agent's view of itself and
// of the cluster, from GET /v1/status, /v1/members and /v1/topology.
//
// The human output is a summary; --json prints what the agent answered
// (members: after the filters), so scripts never depend on the summary's layout.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "daemon/cli_common.h"
#include "daemon/commands.h"
#include "daemon/http_client.h"

namespace gv::cli {

namespace {

using nlohmann::json;

struct ClusterFlags {
  std::string http;
  bool json = false;
};

struct MembersFlags {
  std::string http;
  bool json = false;
  std::string status;
  std::vector<std::string> tags;  // KEY=VALUE, all must match
};

// GETs `target` and parses a JSON answer; on failure prints the error line
// and returns nullopt.
std::optional<json> GetJson(const std::string& http, const std::string& target, int* status = nullptr) {
  HttpClient client(http);
  auto r = client.Get(target);
  if (!r.ok()) {
    Fail(r.status().message());
    return std::nullopt;
  }
  if (status != nullptr) *status = r->status;
  if (r->status != 200) {
    if (status == nullptr || r->status != 404) Fail(ServerError(*r));
    return std::nullopt;
  }
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    Fail("the agent at " + http + " answered invalid JSON to GET " + target);
    return std::nullopt;
  }
  return j;
}

std::string Duration(double ms) {
  char buf[64];
  if (ms < 1000) {
    std::snprintf(buf, sizeof(buf), "%.0f ms", ms);
  } else if (ms < 120000) {
    std::snprintf(buf, sizeof(buf), "%.1f s", ms / 1000);
  } else if (ms < 7200000) {
    std::snprintf(buf, sizeof(buf), "%.1f min", ms / 60000);
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f h", ms / 3600000);
  }
  return buf;
}

// "name (id)" for ids the caller can name, the bare id otherwise.
std::string Label(const std::map<std::string, std::string>& names, const std::string& id) {
  auto it = names.find(id);
  if (it == names.end() || it->second.empty()) return id;
  return it->second;
}

std::string IdList(const json& list, const std::map<std::string, std::string>& names) {
  if (!list.is_array()) return "-";
  if (list.empty()) return "(none)";
  std::string out;
  for (const auto& id : list) {
    if (!out.empty()) out += ' ';
    out += Label(names, id.is_string() ? id.get<std::string>() : id.dump());
  }
  return out;
}

// Scalars of a nested object on one line: "a=1 b=2 c.d=x".
void Flatten(const json& j, const std::string& prefix, std::string* out) {
  if (j.is_object()) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      Flatten(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
    return;
  }
  if (!out->empty()) *out += ' ';
  *out += prefix + "=" + (j.is_string() ? j.get<std::string>() : j.dump());
}

int RunStatus(const ClusterFlags& f) {
  auto status = GetJson(f.http, "/v1/status");
  if (!status) return 1;
  if (f.json) {
    std::printf("%s\n", status->dump(2).c_str());
    return 0;
  }
  if (!status->is_object()) return Fail("the agent at " + f.http + " answered a status that is not a JSON object");
  const json& s = *status;
  std::map<std::string, std::string> names;
  const std::string self = JsonText(s, "node_id");
  names[self] = "self";
  std::printf("%-10s %s (id %s)\n", "node", JsonText(s, "name").c_str(), self.c_str());
  if (s.contains("cluster")) std::printf("%-10s %s\n", "cluster", JsonText(s, "cluster").c_str());
  if (s.contains("address")) std::printf("%-10s %s\n", "peers at", JsonText(s, "address").c_str());
  if (s.contains("http")) std::printf("%-10s %s\n", "http", JsonText(s, "http").c_str());
  std::printf("%-10s %s", "keys", JsonText(s, "key_count").c_str());
  if (s.contains("index")) std::printf(", local index %s", JsonText(s, "index").c_str());
  if (s.contains("held_back")) std::printf(", %s deltas held back", JsonText(s, "held_back").c_str());
  std::printf("\n");
  if (s.contains("applied") && s["applied"].is_object()) {
    std::string line;
    for (auto it = s["applied"].begin(); it != s["applied"].end(); ++it) {
      line += ' ' + it.key() + "=" + it.value().dump();
    }
    std::printf("%-10s %zu origin(s):%s\n", "applied", s["applied"].size(), line.c_str());
  }
  for (const char* view : {"active", "eager", "lazy", "passive"}) {
    if (!s.contains(view)) continue;
    const json& list = s[view];
    std::printf("%-10s %zu: %s\n", view, list.is_array() ? list.size() : 0, IdList(list, names).c_str());
  }
  if (s.contains("wal")) {
    std::string line;
    Flatten(s["wal"], "", &line);
    std::printf("%-10s %s\n", "wal", line.c_str());
  }
  if (s.contains("uptime_ms") && s["uptime_ms"].is_number()) {
    std::printf("%-10s %s\n", "uptime", Duration(s["uptime_ms"].get<double>()).c_str());
  }
  // Anything this summary does not know yet, so no figure is hidden.
  static const char* kShown[] = {"node_id", "name",  "cluster", "address", "http",    "key_count", "index",
                                 "held_back", "applied", "active", "eager", "lazy", "passive", "wal", "uptime_ms"};
  for (auto it = s.begin(); it != s.end(); ++it) {
    if (std::find_if(std::begin(kShown), std::end(kShown), [&](const char* k) { return it.key() == k; }) !=
        std::end(kShown)) {
      continue;
    }
    std::string line;
    if (it.value().is_object()) {
      Flatten(it.value(), "", &line);
    } else {
      line = it.value().is_string() ? it.value().get<std::string>() : it.value().dump();
    }
    std::printf("%-10s %s\n", it.key().c_str(), line.c_str());
  }
  return 0;
}

int RunMembers(const MembersFlags& f) {
  // The status filter and the first tag filter go to the agent; further tag
  // filters (all must match) are applied here.
  std::vector<std::pair<std::string, std::string>> tags;
  for (const std::string& tag : f.tags) {
    const auto eq = tag.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("--tag '" + tag + "' is not KEY=VALUE");
    tags.emplace_back(tag.substr(0, eq), tag.substr(eq + 1));
  }
  std::string target = "/v1/members";
  char sep = '?';
  if (!f.status.empty()) {
    target += sep + std::string("status=") + EncodeQueryValue(f.status);
    sep = '&';
  }
  if (!tags.empty()) target += sep + std::string("tag=") + EncodeQueryValue(tags[0].first + "=" + tags[0].second);
  auto members = GetJson(f.http, target);
  if (!members) return 1;
  if (!members->is_array()) return Fail("the agent at " + f.http + " answered a member list that is not an array");
  json listed = json::array();
  for (const auto& m : *members) {
    bool match = true;
    for (const auto& [key, value] : tags) {
      match = match && m.contains("tags") && m["tags"].is_object() && m["tags"].contains(key) &&
              m["tags"][key].is_string() && m["tags"][key].get<std::string>() == value;
    }
    if (match) listed.push_back(m);
  }
  if (f.json) {
    std::printf("%s\n", listed.dump(2).c_str());
    return 0;
  }
  std::printf("%-16s %-16s %-22s %-8s %s\n", "NAME", "ID", "ADDRESS", "STATUS", "TAGS");
  for (const auto& m : listed) {
    std::string tag_text;
    if (m.contains("tags") && m["tags"].is_object()) {
      for (auto it = m["tags"].begin(); it != m["tags"].end(); ++it) {
        if (!tag_text.empty()) tag_text += ',';
        tag_text += it.key() + "=" + (it.value().is_string() ? it.value().get<std::string>() : it.value().dump());
      }
    }
    std::printf("%-16s %-16s %-22s %-8s %s\n", JsonText(m, "name").c_str(), JsonText(m, "id").c_str(),
                JsonText(m, "address").c_str(), JsonText(m, "status").c_str(), tag_text.c_str());
  }
  return 0;
}

int RunTopology(const ClusterFlags& f) {
  auto topology = GetJson(f.http, "/v1/topology");
  if (!topology) return 1;
  if (f.json) {
    std::printf("%s\n", topology->dump(2).c_str());
    return 0;
  }
  const json& t = *topology;
  if (!t.is_object() || !t.contains("nodes") || !t["nodes"].is_array()) {
    return Fail("the agent at " + f.http + " answered a topology without a \"nodes\" array");
  }
  std::map<std::string, std::string> names;
  for (const auto& n : t["nodes"]) names[JsonText(n, "id")] = JsonText(n, "name");
  std::map<std::string, std::size_t> edges_by_kind;
  std::size_t edges = 0;
  if (t.contains("edges") && t["edges"].is_array()) {
    for (const auto& e : t["edges"]) {
      ++edges_by_kind[JsonText(e, "kind")];
      ++edges;
    }
  }
  std::string kinds;
  for (const auto& [kind, count] : edges_by_kind) kinds += (kinds.empty() ? "" : ", ") + kind + " " + std::to_string(count);
  std::printf("%zu node(s), %zu edge(s)%s%s%s\n", t["nodes"].size(), edges, kinds.empty() ? "" : " (",
              kinds.c_str(), kinds.empty() ? "" : ")");
  std::vector<json> nodes(t["nodes"].begin(), t["nodes"].end());
  std::sort(nodes.begin(), nodes.end(), [](const json& a, const json& b) {
    return std::make_pair(JsonText(a, "name"), JsonText(a, "id")) < std::make_pair(JsonText(b, "name"), JsonText(b, "id"));
  });
  for (const auto& n : nodes) {
    std::string age;
    if (n.contains("age_ms") && n["age_ms"].is_number()) age = ", record " + Duration(n["age_ms"].get<double>()) + " old";
    std::printf("%s (%s) %s%s\n", JsonText(n, "name").c_str(), JsonText(n, "id").c_str(),
                JsonText(n, "address").c_str(), age.c_str());
    for (const char* view : {"active", "eager", "lazy"}) {
      if (n.contains(view)) std::printf("  %-8s %s\n", view, IdList(n[view], names).c_str());
    }
    if (n.contains("passive") && n["passive"].is_array()) {
      std::printf("  %-8s %zu peer(s)\n", "passive", n["passive"].size());
    }
  }
  return 0;
}

}  // namespace

void AddClusterCommands(CLI::App& app) {
  auto status_flags = std::make_shared<ClusterFlags>();
  auto* status = app.add_subcommand("status", "Show the local agent: identity, keys, applied vector, views, WAL");
  status->add_flag("--json", status_flags->json, "print GET /v1/status as received");
  AddHttpOption(status, &status_flags->http);
  status->callback([status_flags] { ExitCode() = RunStatus(*status_flags); });

  auto members_flags = std::make_shared<MembersFlags>();
  auto* members = app.add_subcommand(
      "members", "List the cluster's members (GET /v1/members): name, id, peer address, status, tags");
  members->add_flag("--json", members_flags->json, "print the (filtered) list as JSON");
  members->add_option("--status", members_flags->status, "only members with this status")
      ->check(CLI::IsMember({"alive", "suspect", "failed", "left"}));
  members->add_option("--tag", members_flags->tags, "only members with tag KEY=VALUE (repeatable: all must match)");
  AddHttpOption(members, &members_flags->http);
  members->callback([members_flags] { ExitCode() = RunMembers(*members_flags); });

  auto topology_flags = std::make_shared<ClusterFlags>();
  auto* topology = app.add_subcommand(
      "topology", "Show the overlay as the local agent sees it: per node its active peers, eager and lazy links");
  topology->add_flag("--json", topology_flags->json, "print GET /v1/topology as received");
  AddHttpOption(topology, &topology_flags->http);
  topology->callback([topology_flags] { ExitCode() = RunTopology(*topology_flags); });
}

}  // namespace gv::cli
