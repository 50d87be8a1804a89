// Membership with real agents: a gracefully stopped agent restarts on its
// data dir, rejoins and catches up on what it missed; the first agent of a
// cluster (no --join) restarted the same way finds its cluster through the
// peers it remembered in DATA/peers; a SIGKILLed agent disappears from the
// survivors' active views and the survivors keep replicating; the agents
// elect one broadcast root, and another when it is killed.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/integration/cluster.h"

namespace gv::integration {
namespace {

bool Contains(const std::vector<std::string>& ids, const std::string& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

std::string Join(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (const auto& id : ids) out += (out.size() > 1 ? "," : "") + id;
  return out + "]";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_CASE("an agent stopped with SIGTERM restarts, rejoins and pulls the writes it missed") {
  Cluster cluster("restart");
  AgentOptions options;
  // Anti-entropy every 2 s instead of 10 s keeps the test short; the catch-up
  // it exercises is the same.
  options.extra_args = {"--sync-interval", "2s"};
  auto agents = cluster.StartCluster(4, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*> all = *agents;
  Agent& leaver = *all[3];
  const std::vector<Agent*> others = {all[0], all[1], all[2]};

  for (int i = 0; i < 5; ++i) {
    REQUIRE(Put(all[static_cast<std::size_t>(i) % 4]->http(), "before/" + std::to_string(i), "b" + std::to_string(i)).ok());
  }
  for (int i = 0; i < 5; ++i) {
    Status converged = WaitForValue(all, "before/" + std::to_string(i), "b" + std::to_string(i));
    REQUIRE_MESSAGE(converged.ok(), converged.ToString());
  }

  const std::string leaver_id = leaver.node_id();
  auto exit_status = cluster.Terminate(leaver);
  REQUIRE_MESSAGE(exit_status.ok(), exit_status.status().ToString());
  CHECK_MESSAGE(DescribeWaitStatus(*exit_status) == "exited 0",
                "SIGTERM should leave gracefully and exit 0, got " << DescribeWaitStatus(*exit_status));

  // A graceful leave: nobody keeps the leaver as an active peer.
  for (Agent* agent : others) {
    Status left = WaitFor(agent->name() + " to drop the departed " + leaver_id + " from its active view",
                          kConvergeTimeout, [&](std::string& last_seen) {
                            auto view = ActiveView(*agent);
                            if (!view.ok()) {
                              last_seen = view.status().ToString();
                              return false;
                            }
                            last_seen = Join(*view);
                            return !Contains(*view, leaver_id);
                          });
    CHECK_MESSAGE(left.ok(), left.ToString());
  }

  // Writes while it is away: new keys, an overwrite and a delete.
  for (int i = 0; i < 12; ++i) {
    REQUIRE(Put(others[static_cast<std::size_t>(i) % 3]->http(), "while-down/" + std::to_string(i),
                "w" + std::to_string(i))
                .ok());
  }
  REQUIRE(Put(others[1]->http(), "before/0", "b0-updated").ok());
  REQUIRE(Delete(others[2]->http(), "before/1").ok());

  Status restarted = cluster.Restart(leaver);
  REQUIRE_MESSAGE(restarted.ok(), restarted.ToString());
  CHECK_MESSAGE(leaver.node_id() == leaver_id, "node id changed across the restart: " << leaver_id << " -> "
                                                                                     << leaver.node_id());

  Status rejoined = WaitFor("the restarted agent to have active peers", kConvergeTimeout, [&](std::string& last_seen) {
    auto view = ActiveView(leaver);
    if (!view.ok()) {
      last_seen = view.status().ToString();
      return false;
    }
    last_seen = Join(*view);
    return !view->empty();
  });
  CHECK_MESSAGE(rejoined.ok(), rejoined.ToString());

  // Everything it missed arrives (Plumtree does not resend old messages: this
  // is anti-entropy's work), and what it had survives.
  for (int i = 0; i < 12; ++i) {
    Status caught_up = WaitForValue({&leaver}, "while-down/" + std::to_string(i), "w" + std::to_string(i));
    CHECK_MESSAGE(caught_up.ok(), caught_up.ToString());
  }
  Status updated = WaitForValue({&leaver}, "before/0", std::string("b0-updated"));
  CHECK_MESSAGE(updated.ok(), updated.ToString());
  Status deleted = WaitForValue({&leaver}, "before/1", std::nullopt);
  CHECK_MESSAGE(deleted.ok(), deleted.ToString());
  for (int i = 2; i < 5; ++i) {
    auto value = GetRaw(leaver.http(), "before/" + std::to_string(i));
    REQUIRE_MESSAGE(value.ok(), value.status().ToString());
    CHECK(*value == std::optional<std::string>("b" + std::to_string(i)));
  }

  // And it takes part again: its own write reaches everyone.
  REQUIRE(Put(leaver.http(), "after/rejoin", "back").ok());
  Status spread = WaitForValue(all, "after/rejoin", std::string("back"));
  CHECK_MESSAGE(spread.ok(), spread.ToString());
}

TEST_CASE("the first agent, started and restarted without --join, finds its cluster again through DATA/peers") {
  Cluster cluster("known-peers");
  auto agents = cluster.StartCluster(3);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*> all = *agents;
  Agent& first = *all[0];  // started alone: no seeds to restart with
  const std::vector<Agent*> others = {all[1], all[2]};

  // It writes down its peers' addresses as soon as it has an active peer.
  const std::string peers_path = first.data_dir() + "/peers";
  Status remembered = WaitFor(peers_path + " to list a peer's address", kConvergeTimeout, [&](std::string& last_seen) {
    last_seen = ReadFile(peers_path);
    return last_seen.rfind("grapevine-peers 1\n", 0) == 0 &&
           (last_seen.find(others[0]->peer_address() + "\n") != std::string::npos ||
            last_seen.find(others[1]->peer_address() + "\n") != std::string::npos);
  });
  REQUIRE_MESSAGE(remembered.ok(), remembered.ToString());

  const std::string first_id = first.node_id();
  auto exit_status = cluster.Terminate(first);
  REQUIRE_MESSAGE(exit_status.ok(), exit_status.status().ToString());
  CHECK(DescribeWaitStatus(*exit_status) == "exited 0");
  for (Agent* agent : others) {
    Status dropped = WaitFor(agent->name() + " to drop the departed first agent", kConvergeTimeout,
                             [&](std::string& last_seen) {
                               auto view = ActiveView(*agent);
                               last_seen = view.ok() ? Join(*view) : view.status().ToString();
                               return view.ok() && !Contains(*view, first_id);
                             });
    REQUIRE_MESSAGE(dropped.ok(), dropped.ToString());
  }
  REQUIRE(Put(others[0]->http(), "while-down/k", "v").ok());

  // Restarted exactly as before (no --join): without DATA/peers it would start
  // an overlay of its own, which nobody dials (they saw it leave).
  Status restarted = cluster.Restart(first);
  REQUIRE_MESSAGE(restarted.ok(), restarted.ToString());
  Status rejoined = WaitFor("the restarted first agent to have active peers", kConvergeTimeout,
                            [&](std::string& last_seen) {
                              auto view = ActiveView(first);
                              last_seen = view.ok() ? Join(*view) : view.status().ToString();
                              return view.ok() && !view->empty();
                            });
  REQUIRE_MESSAGE(rejoined.ok(), rejoined.ToString());
  Status caught_up = WaitForValue({&first}, "while-down/k", std::string("v"));
  CHECK_MESSAGE(caught_up.ok(), caught_up.ToString());
  REQUIRE(Put(first.http(), "after/first-rejoined", "yes").ok());
  Status spread = WaitForValue(all, "after/first-rejoined", std::string("yes"));
  CHECK_MESSAGE(spread.ok(), spread.ToString());
}

TEST_CASE("after kill -9 of one agent the survivors' active views drop it and writes reach every survivor") {
  Cluster cluster("kill9");
  auto agents = cluster.StartCluster(5);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*> all = *agents;
  Agent& victim = *all[4];
  const std::vector<Agent*> survivors = {all[0], all[1], all[2], all[3]};
  const std::string victim_id = victim.node_id();

  // The victim must be somebody's active peer first, or the check below proves nothing.
  Status linked = WaitFor("a survivor to have the victim " + victim_id + " as an active peer", kConvergeTimeout,
                          [&](std::string& last_seen) {
                            last_seen.clear();
                            for (Agent* agent : survivors) {
                              auto view = ActiveView(*agent);
                              if (!view.ok()) {
                                last_seen += agent->name() + ": " + view.status().ToString() + "; ";
                                continue;
                              }
                              last_seen += agent->name() + ": " + Join(*view) + "; ";
                              if (Contains(*view, victim_id)) return true;
                            }
                            return false;
                          });
  REQUIRE_MESSAGE(linked.ok(), linked.ToString());

  Status killed = cluster.Kill(victim);
  REQUIRE_MESSAGE(killed.ok(), killed.ToString());
  const auto killed_at = std::chrono::steady_clock::now();

  for (Agent* agent : survivors) {
    Status repaired = WaitFor(agent->name() + " to drop the killed " + victim_id + " and keep an active peer",
                              kConvergeTimeout, [&](std::string& last_seen) {
                                auto view = ActiveView(*agent);
                                if (!view.ok()) {
                                  last_seen = view.status().ToString();
                                  return false;
                                }
                                last_seen = Join(*view);
                                return !Contains(*view, victim_id) && !view->empty();
                              });
    CHECK_MESSAGE(repaired.ok(), repaired.ToString());
  }
  MESSAGE("every survivor dropped the SIGKILLed agent from its active view within "
          << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at).count()
          << " ms");

  for (std::size_t i = 0; i < survivors.size(); ++i) {
    const std::string key = "after-kill/" + std::to_string(i);
    REQUIRE(Put(survivors[i]->http(), key, "from " + survivors[i]->name()).ok());
  }
  for (std::size_t i = 0; i < survivors.size(); ++i) {
    Status spread = WaitForValue(survivors, "after-kill/" + std::to_string(i), "from " + survivors[i]->name());
    CHECK_MESSAGE(spread.ok(), spread.ToString());
  }
}

// The broadcast root every agent reports, or why there is none yet.
struct RootsSeen {
  std::string root;        // empty unless all agents agree on a non-null root
  std::size_t eager_links = 0;  // sum of eager set sizes / 2
  std::string description;
};

RootsSeen ReadRoots(const std::vector<Agent*>& agents) {
  RootsSeen seen;
  std::size_t eager = 0;
  bool agree = true;
  std::string first;
  for (Agent* agent : agents) {
    auto status = AgentStatus(*agent);
    if (!status.ok()) {
      seen.description += agent->name() + ": " + status.status().ToString() + "; ";
      agree = false;
      continue;
    }
    const nlohmann::json& json = *status;
    const std::string root = json.contains("broadcast_root") && json["broadcast_root"].is_string()
                                 ? json["broadcast_root"].get<std::string>()
                                 : "";
    if (json.contains("eager") && json["eager"].is_array()) eager += json["eager"].size();
    seen.description += agent->name() + ": root " + (root.empty() ? "none" : root) + " eager " +
                        (json.contains("eager") ? json["eager"].dump() : "?") + " active " +
                        (json.contains("active") ? json["active"].dump() : "?") + "; ";
    if (root.empty() || (!first.empty() && root != first)) agree = false;
    if (first.empty()) first = root;
  }
  if (agree) seen.root = first;
  seen.eager_links = eager / 2;
  return seen;
}

TEST_CASE("the agents elect one broadcast root whose beacons shape a spanning tree; killing it elects another") {
  Cluster cluster("root");
  auto agents = cluster.StartCluster(5);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*> all = *agents;

  // One root everywhere, and the eager links a spanning tree of the 5 agents
  // (4 links: the root's tree after its duplicates pruned every cycle).
  // Election within 5 s, then a beacon every 5 s.
  std::string root;
  Status elected = WaitFor("one broadcast root and a spanning tree", kConvergeTimeout, [&](std::string& last_seen) {
    const RootsSeen seen = ReadRoots(all);
    last_seen = seen.description;
    root = seen.root;
    return !seen.root.empty() && seen.eager_links == all.size() - 1;
  });
  REQUIRE_MESSAGE(elected.ok(), elected.ToString());
  Agent* root_agent = nullptr;
  for (Agent* agent : all) {
    if (agent->node_id() == root) root_agent = agent;
  }
  REQUIRE_MESSAGE(root_agent != nullptr, "root " << root << " is none of the agents");
  auto beacons = ScrapeMetric(*root_agent, "grapevine_broadcast_root_beacons_sent_total");
  REQUIRE(beacons.ok());
  CHECK(*beacons >= 1);

  // The root dies: after 16 s without its beacons the survivors elect another.
  // Killed this early, before shuffles have mixed the passive views, the
  // survivors used to be left in two pairs that knew nothing of each other
  // (in one run of four); they now ask the members they know of
  // (HyParView's KnownPeers), so there is one overlay, one root, one tree.
  Status killed = cluster.Kill(*root_agent);
  REQUIRE_MESSAGE(killed.ok(), killed.ToString());
  std::vector<Agent*> survivors;
  for (Agent* agent : all) {
    if (agent != root_agent) survivors.push_back(agent);
  }
  Status reelected = WaitFor("the survivors to agree on a new root", milliseconds(45000), [&](std::string& last_seen) {
    const RootsSeen seen = ReadRoots(survivors);
    last_seen = seen.description;
    return !seen.root.empty() && seen.root != root && seen.eager_links == survivors.size() - 1;
  });
  REQUIRE_MESSAGE(reelected.ok(), reelected.ToString());
  // And the new tree carries writes to everyone.
  REQUIRE(Put(survivors[0]->http(), "after-root/x", "y").ok());
  Status spread = WaitForValue(survivors, "after-root/x", "y");
  CHECK_MESSAGE(spread.ok(), spread.ToString());
}

TEST_CASE("grapevine sim runs its heap on transparent huge pages; an agent only when GLIBC_TUNABLES asks") {
  // `grapevine sim` executes itself again with glibc.malloc.hugetlb=1
  // before it starts (common/huge_pages.h); the agent is left as started,
  // and reports what it got in /v1/status. The processes inherit this
  // test's environment: start from none, put it back after.
  struct RestoreTunables {
    std::optional<std::string> saved;
    RestoreTunables() {
      if (const char* v = std::getenv("GLIBC_TUNABLES")) saved = v;
      ::unsetenv("GLIBC_TUNABLES");
    }
    ~RestoreTunables() {
      if (saved) {
        ::setenv("GLIBC_TUNABLES", saved->c_str(), 1);
      } else {
        ::unsetenv("GLIBC_TUNABLES");
      }
    }
  } restore;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  const std::string on_state = "sanitizer", off_state = "sanitizer";  // the binary is built alike
#else
  const std::string modes = ReadFile("/sys/kernel/mm/transparent_hugepage/enabled");
  const bool thp = modes.find("[madvise]") != std::string::npos || modes.find("[always]") != std::string::npos;
  const std::string on_state = thp ? "on" : "unavailable", off_state = "off";
#endif
  auto sim = RunGrapevine({"sim", "--nodes", "20", "--scenario", "overlay", "--broadcasts", "1", "--json"});
  REQUIRE_MESSAGE(sim.ok(), sim.status().ToString());
  REQUIRE_MESSAGE(sim->exit_code == 0, sim->output);
  const auto report = nlohmann::json::parse(sim->output.substr(sim->output.find('{')));
  CHECK(report["malloc_huge_pages"] == on_state);

  Cluster cluster("hugepages");
  // Starts an agent with this test's environment; checks what /v1/status
  // reports and the GLIBC_TUNABLES the running process was executed with.
  auto start_and_check = [&](const std::string& name, const std::string& state, const std::string& environment) {
    Agent& agent = cluster.AddAgent(name);
    REQUIRE(cluster.Start(agent).ok());
    auto status = AgentStatus(agent);
    REQUIRE_MESSAGE(status.ok(), status.status().ToString());
    CHECK((*status)["malloc_huge_pages"] == state);
    const std::string proc = "/proc/" + std::to_string(agent.pid());
    const std::string env = ReadFile(proc + "/environ");
    CHECK(env.find("GLIBC_TUNABLES=") == (environment.empty() ? std::string::npos : env.find(environment + '\0')));
    CHECK(ReadFile(proc + "/comm") == "grapevine\n");
  };
  start_and_check("plain", off_state, "");
  REQUIRE(::setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1) == 0);
  start_and_check("asked", on_state, "GLIBC_TUNABLES=glibc.malloc.hugetlb=1");
}

}  // namespace
}  // namespace gv::integration
