// grapevine services register|deregister|pass|list|get: the service part of
// the HTTP API (daemon/locator.h) from the command line, one request each.
#include <cstdio>
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

struct ServicesFlags {
  std::string http;
  bool json = false;
  bool all = false;
  std::string id;
  std::string name;
  std::string address;
  int port = 0;
  std::vector<std::string> tags;
  std::vector<std::string> meta;  // KEY=VALUE
  std::string ttl;
};

// Sends one request; returns the parsed JSON answer of a 200, or prints the
// error line and returns nothing.
std::optional<json> Call(const ServicesFlags& f, const char* method, const std::string& target,
                         const std::string& body = {}) {
  HttpClient client(f.http);
  auto r = client.Request(method, target, body);
  if (!r.ok()) {
    Fail(r.status().message());
    return std::nullopt;
  }
  if (r->status != 200) {
    Fail(ServerError(*r));
    return std::nullopt;
  }
  json j = json::parse(r->body, nullptr, false);
  if (j.is_discarded()) {
    Fail("the agent at " + f.http + " answered invalid JSON to " + method + " " + target);
    return std::nullopt;
  }
  return j;
}

int RunRegister(const ServicesFlags& f) {
  json body{{"name", f.name}, {"port", f.port}, {"tags", f.tags}, {"meta", json::object()}};
  if (!f.id.empty()) body["id"] = f.id;
  if (!f.address.empty()) body["address"] = f.address;
  if (!f.ttl.empty()) body["ttl"] = f.ttl;
  for (const std::string& kv : f.meta) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) return Fail("--meta '" + kv + "' is not KEY=VALUE");
    body["meta"][kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  auto answer = Call(f, "PUT", "/v1/services", body.dump());
  if (!answer) return 1;
  if (f.json) {
    std::printf("%s\n", answer->dump(2).c_str());
  } else {
    std::printf("registered %s (%s)\n", JsonText(*answer, "id").c_str(), JsonText(*answer, "name").c_str());
  }
  return 0;
}

int RunDeregister(const ServicesFlags& f) {
  if (!Call(f, "DELETE", "/v1/services/" + EncodeQueryValue(f.id))) return 1;
  std::printf("deregistered %s\n", f.id.c_str());
  return 0;
}

int RunPass(const ServicesFlags& f) {
  if (!Call(f, "PUT", "/v1/services/" + EncodeQueryValue(f.id) + "/pass")) return 1;
  return 0;
}

int RunList(const ServicesFlags& f) {
  auto names = Call(f, "GET", "/v1/services");
  if (!names) return 1;
  if (f.json) {
    std::printf("%s\n", names->dump(2).c_str());
    return 0;
  }
  if (!names->is_array()) return Fail("the agent at " + f.http + " answered a service list that is not an array");
  for (const auto& name : *names) std::printf("%s\n", name.is_string() ? name.get<std::string>().c_str() : name.dump().c_str());
  return 0;
}

int RunGet(const ServicesFlags& f) {
  auto instances = Call(f, "GET", "/v1/services/" + EncodeQueryValue(f.name) + (f.all ? "?all" : ""));
  if (!instances) return 1;
  if (f.json) {
    std::printf("%s\n", instances->dump(2).c_str());
    return 0;
  }
  if (!instances->is_array()) return Fail("the agent at " + f.http + " answered instances that are not an array");
  std::printf("%-20s %-16s %-40s %-6s %-9s %s\n", "ID", "NODE", "ADDRESS", "PORT", "STATUS", "TAGS");
  for (const auto& s : *instances) {
    std::string tags;
    if (s.contains("tags") && s["tags"].is_array()) {
      for (const auto& t : s["tags"]) tags += (tags.empty() ? "" : ",") + (t.is_string() ? t.get<std::string>() : t.dump());
    }
    std::printf("%-20s %-16s %-40s %-6s %-9s %s\n", JsonText(s, "id").c_str(), JsonText(s, "node_name").c_str(),
                JsonText(s, "address").c_str(), JsonText(s, "port").c_str(), JsonText(s, "status").c_str(), tags.c_str());
  }
  return 0;
}

}  // namespace

void AddServicesCommand(CLI::App& app) {
  auto* services = app.add_subcommand("services", "Register, refresh, deregister and look up services");
  services->require_subcommand(1);

  auto reg_flags = std::make_shared<ServicesFlags>();
  auto* reg = services->add_subcommand("register", "Register a service at the local agent (PUT /v1/services)");
  reg->add_option("--name", reg_flags->name, "service name (a DNS label: [a-z0-9-])")->required();
  reg->add_option("--id", reg_flags->id, "instance id, unique on this agent (default: the name)");
  reg->add_option("--address", reg_flags->address, "IPv4/IPv6 address (default: the agent's)");
  reg->add_option("--port", reg_flags->port, "port")->check(CLI::Range(0, 65535));
  reg->add_option("--tag", reg_flags->tags, "tag (repeatable)");
  reg->add_option("--meta", reg_flags->meta, "metadata KEY=VALUE (repeatable)");
  reg->add_option("--ttl", reg_flags->ttl, "TTL such as 10s: critical unless `services pass` refreshes it in time");
  reg->add_flag("--json", reg_flags->json, "print the agent's answer as JSON");
  AddHttpOption(reg, &reg_flags->http);
  reg->callback([reg_flags] { ExitCode() = RunRegister(*reg_flags); });

  auto dereg_flags = std::make_shared<ServicesFlags>();
  auto* dereg = services->add_subcommand("deregister", "Remove a service registered at the local agent");
  dereg->add_option("id", dereg_flags->id, "instance id")->required();
  AddHttpOption(dereg, &dereg_flags->http);
  dereg->callback([dereg_flags] { ExitCode() = RunDeregister(*dereg_flags); });

  auto pass_flags = std::make_shared<ServicesFlags>();
  auto* pass = services->add_subcommand("pass", "Refresh a service's TTL (PUT /v1/services/<id>/pass)");
  pass->add_option("id", pass_flags->id, "instance id")->required();
  AddHttpOption(pass, &pass_flags->http);
  pass->callback([pass_flags] { ExitCode() = RunPass(*pass_flags); });

  auto list_flags = std::make_shared<ServicesFlags>();
  auto* list = services->add_subcommand("list", "List the names of services with instances (GET /v1/services)");
  list->add_flag("--json", list_flags->json, "print as JSON");
  AddHttpOption(list, &list_flags->http);
  list->callback([list_flags] { ExitCode() = RunList(*list_flags); });

  auto get_flags = std::make_shared<ServicesFlags>();
  auto* get = services->add_subcommand("get", "Show a service's healthy instances (GET /v1/services/<name>)");
  get->add_option("name", get_flags->name, "service name")->required();
  get->add_flag("--all", get_flags->all, "include critical instances");
  get->add_flag("--json", get_flags->json, "print as JSON");
  AddHttpOption(get, &get_flags->http);
  get->callback([get_flags] { ExitCode() = RunGet(*get_flags); });
}

}  // namespace gv::cli
