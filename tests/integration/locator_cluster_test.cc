// The service locator with real agents and real clients (issue 6): a service
// registered at one agent is answered by `dig` against another agent's DNS
// port; a lapsed TTL takes it out of the answers; kill -9 of its agent takes
// it out everywhere and the agent is `failed` in every member list; a
// graceful leave shows `left`. Elapsed times are printed, never asserted
// beyond generous bounds (the benchmark measures them: make bench-members).
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/cluster.h"

namespace gv::integration {
namespace {

constexpr const char* kDig = "/usr/bin/dig";

// `dig +short` output for `name` of `type` asked of `agent`'s DNS port.
Result<std::string> DigShort(const Agent& agent, const std::string& name, const std::string& type) {
  auto run = RunCommand({kDig, "@127.0.0.1", "-p", std::to_string(agent.dns_port()), "+tries=1", "+time=2", "+short",
                         name, type},
                        milliseconds(10000));
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) return Status::Unavailable("dig exited " + std::to_string(run->exit_code) + ": " + run->output);
  return run->output;
}

// dig's status line ("status: NXDOMAIN") for `name`.
Result<std::string> DigStatus(const Agent& agent, const std::string& name, const std::string& type) {
  auto run = RunCommand({kDig, "@127.0.0.1", "-p", std::to_string(agent.dns_port()), "+tries=1", "+time=2", name,
                         type},
                        milliseconds(10000));
  if (!run.ok()) return run.status();
  const auto at = run->output.find("status: ");
  if (at == std::string::npos) return Status::Unavailable("no status line in dig's output: " + run->output);
  return run->output.substr(at + 8, run->output.find(',', at) - at - 8);
}

Status RegisterService(Agent& agent, const nlohmann::json& body) {
  auto r = agent.http().Request("PUT", "/v1/services", body.dump());
  if (!r.ok()) return r.status();
  if (r->status != 200) return Status::Aborted("PUT /v1/services answered " + std::to_string(r->status) + ": " + r->body);
  return Status::Ok();
}

// The status `agent` lists for the member named `name` ("" if absent).
std::string MemberStatus(Agent& agent, const std::string& name) {
  auto members = GetJson(agent.http(), "/v1/members");
  if (!members.ok() || !members->is_array()) return "";
  for (const auto& m : *members) {
    if (m.value("name", "") == name) return m.value("status", "");
  }
  return "";
}

long long MillisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - start).count();
}

TEST_CASE("a service registered on one agent is answered by dig on another; its lapsed TTL takes it out") {
  Cluster cluster("locator-dns");
  AgentOptions options;
  options.log_level = "info";
  auto agents = cluster.StartCluster(3, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& owner = *(*agents)[0];
  Agent& asked = *(*agents)[2];

  // Every agent lists all three members as alive.
  for (Agent* agent : *agents) {
    Status alive = WaitFor(agent->name() + " to list 3 alive members", kConvergeTimeout, [&](std::string& last_seen) {
      auto members = GetJson(agent->http(), "/v1/members?status=alive");
      last_seen = members.ok() ? members->dump() : members.status().ToString();
      return members.ok() && members->is_array() && members->size() == 3;
    });
    REQUIRE_MESSAGE(alive.ok(), alive.ToString());
  }

  const auto registered_at = std::chrono::steady_clock::now();
  REQUIRE(RegisterService(owner, {{"id", "api-1"}, {"name", "api"}, {"address", "127.0.0.1"}, {"port", 9000},
                                  {"tags", {"v1"}}, {"ttl", "3s"}})
              .ok());
  Status answered = WaitFor("dig on " + asked.name() + " to answer api's SRV", milliseconds(20000),
                            [&](std::string& last_seen) {
                              auto out = DigShort(asked, "api.service.grapevine.", "SRV");
                              last_seen = out.ok() ? *out : out.status().ToString();
                              return out.ok() && out->find(" 9000 " + owner.name() + ".node.grapevine.") != std::string::npos;
                            },
                            milliseconds(50));
  REQUIRE_MESSAGE(answered.ok(), answered.ToString());
  MESSAGE("dig on another agent answered the new service " << MillisSince(registered_at) << " ms after it was registered");

  auto a = DigShort(asked, "api.service.grapevine.", "A");
  REQUIRE(a.ok());
  CHECK(*a == "127.0.0.1\n");
  auto node = DigShort(asked, owner.name() + ".node.grapevine.", "A");
  REQUIRE(node.ok());
  CHECK(*node == "127.0.0.1\n");
  REQUIRE(Put(owner.http(), "config/db/url", "postgres://db:5432").ok());
  REQUIRE(WaitForValue({&asked}, "config/db/url", "postgres://db:5432").ok());
  auto txt = DigShort(asked, "config.db.url.kv.grapevine.", "TXT");
  REQUIRE(txt.ok());
  CHECK(*txt == "\"postgres://db:5432\"\n");
  // The owner's alive record, its service record and its one write came
  // seconds apart: bookkeeping records never make an agent a frequent
  // broadcast origin (they travel on the shared tree), and one write is no
  // burst, so no agent built a per-origin tree.
  for (Agent* agent : *agents) {
    auto trees = ScrapeMetric(*agent, "grapevine_broadcast_origin_trees_created_total");
    REQUIRE_MESSAGE(trees.ok(), trees.status().ToString());
    CHECK_MESSAGE(*trees == 0, agent->name() << " created " << *trees << " origin trees");
  }
  auto unknown = DigStatus(asked, "nothing.service.grapevine.", "A");
  REQUIRE(unknown.ok());
  CHECK(*unknown == "NXDOMAIN");

  // Heartbeats keep it; without them it turns critical and leaves the answers.
  for (int i = 0; i < 2; ++i) {
    auto pass = owner.http().Request("PUT", "/v1/services/api-1/pass");
    REQUIRE(pass.ok());
    CHECK(pass->status == 200);
  }
  const auto last_pass = std::chrono::steady_clock::now();
  Status gone = WaitFor("api to leave " + asked.name() + "'s DNS answers after its TTL lapsed", milliseconds(30000),
                        [&](std::string& last_seen) {
                          auto status = DigStatus(asked, "api.service.grapevine.", "SRV");
                          last_seen = status.ok() ? *status : status.status().ToString();
                          return status.ok() && *status == "NXDOMAIN";
                        },
                        milliseconds(100));
  REQUIRE_MESSAGE(gone.ok(), gone.ToString());
  MESSAGE("the lapsed service left the answers " << MillisSince(last_pass) << " ms after its last heartbeat (TTL 3 s)");
  auto all = GetJson(asked.http(), "/v1/services/api?all");
  REQUIRE(all.ok());
  REQUIRE(all->is_array());
  REQUIRE(all->size() == 1);
  CHECK((*all)[0].value("status", "") == "critical");

  // A heartbeat brings it back.
  auto pass = owner.http().Request("PUT", "/v1/services/api-1/pass");
  REQUIRE(pass.ok());
  Status back = WaitFor("api back in the answers after a heartbeat", milliseconds(20000), [&](std::string& last_seen) {
    auto out = DigShort(asked, "api.service.grapevine.", "SRV");
    last_seen = out.ok() ? *out : out.status().ToString();
    return out.ok() && out->find(" 9000 ") != std::string::npos;
  });
  CHECK_MESSAGE(back.ok(), back.ToString());
}

TEST_CASE("kill -9 of an agent: failed in every member list and its service gone; a graceful leave shows left") {
  Cluster cluster("locator-failure");
  AgentOptions options;
  options.log_level = "info";
  auto agents = cluster.StartCluster(4, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*> all = *agents;
  Agent& victim = *all[1];
  Agent& leaver = *all[3];
  REQUIRE(RegisterService(victim, {{"id", "web-1"}, {"name", "web"}, {"address", "127.0.0.1"}, {"port", 8080}}).ok());
  REQUIRE(RegisterService(*all[2], {{"id", "web-2"}, {"name", "web"}, {"address", "127.0.0.1"}, {"port", 8081}}).ok());
  for (Agent* agent : all) {
    Status seen = WaitFor(agent->name() + " to list both web instances", kConvergeTimeout, [&](std::string& last_seen) {
      auto web = GetJson(agent->http(), "/v1/services/web");
      last_seen = web.ok() ? web->dump() : web.status().ToString();
      return web.ok() && web->is_array() && web->size() == 2;
    });
    REQUIRE_MESSAGE(seen.ok(), seen.ToString());
  }

  const auto killed_at = std::chrono::steady_clock::now();
  REQUIRE(cluster.Kill(victim).ok());
  const std::vector<Agent*> survivors = {all[0], all[2], all[3]};
  for (Agent* agent : survivors) {
    Status failed = WaitFor(agent->name() + " to list " + victim.name() + " as failed", milliseconds(20000),
                            [&](std::string& last_seen) {
                              last_seen = MemberStatus(*agent, victim.name());
                              return last_seen == "failed";
                            },
                            milliseconds(20));
    REQUIRE_MESSAGE(failed.ok(), failed.ToString());
  }
  MESSAGE("every survivor listed the SIGKILLed agent as failed " << MillisSince(killed_at) << " ms after the kill");
  for (Agent* agent : survivors) {
    auto srv = DigShort(*agent, "web.service.grapevine.", "SRV");
    REQUIRE(srv.ok());
    CHECK_MESSAGE(srv->find(" 8080 ") == std::string::npos, agent->name() << " still answers the dead instance: " << *srv);
    CHECK_MESSAGE(srv->find(" 8081 ") != std::string::npos, agent->name() << " lost the live instance: " << *srv);
  }

  auto exit_status = cluster.Terminate(leaver);
  REQUIRE(exit_status.ok());
  CHECK(DescribeWaitStatus(*exit_status) == "exited 0");
  for (Agent* agent : {all[0], all[2]}) {
    Status left = WaitFor(agent->name() + " to list " + leaver.name() + " as left", milliseconds(20000),
                          [&](std::string& last_seen) {
                            last_seen = MemberStatus(*agent, leaver.name());
                            return last_seen == "left";
                          });
    CHECK_MESSAGE(left.ok(), left.ToString());
  }
  // The failed agent comes back alive when it restarts.
  REQUIRE(cluster.Restart(victim).ok());
  Status alive = WaitFor(all[0]->name() + " to list the restarted " + victim.name() + " as alive", kConvergeTimeout,
                         [&](std::string& last_seen) {
                           last_seen = MemberStatus(*all[0], victim.name());
                           return last_seen == "alive";
                         });
  CHECK_MESSAGE(alive.ok(), alive.ToString());
  auto members = RunGrapevine({"members", "--http", all[0]->http_address()});
  REQUIRE(members.ok());
  INFO(members->output);
  CHECK(members->exit_code == 0);
  CHECK(members->output.find(leaver.name()) != std::string::npos);
}

}  // namespace
}  // namespace gv::integration
