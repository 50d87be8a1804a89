// Integration harness: real `grapevine agent` processes on loopback.
//
// A Cluster owns a fresh temporary directory (one data dir and one log file
// per agent) and every process it starts. Agents are started by fork+exec of
// the built binary (GV_GRAPEVINE_BINARY) with free loopback ports; each
// agent's stdout/stderr go to its log file, which is printed (tail) when the
// running doctest test case has failed. The destructor SIGKILLs every agent it
// started — by PID, nothing else — reaps it, and removes the directory, so a
// failing test leaves nothing behind. Children also get PR_SET_PDEATHSIG, so
// even a crashed or timed-out test binary takes its agents with it.
//
// Every wait is a bounded poll with a failure message that says what was
// awaited and what was last seen; nothing here sleeps in place of
// synchronisation.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "daemon/http_client.h"

namespace gv::integration {

using std::chrono::milliseconds;

// Bounds used across the tests. Generous: agents run under ASan at -O1 on a
// shared 2-core machine; a healthy run is far below them.
inline constexpr milliseconds kStartTimeout{30000};
inline constexpr milliseconds kExitTimeout{20000};
inline constexpr milliseconds kConvergeTimeout{30000};

// Polls `probe` (every poll_interval) until it returns true or `timeout`
// passes. `probe` writes what it observed into `last_seen`; the failure names
// `what` and that observation.
Status WaitFor(std::string_view what, milliseconds timeout,
               const std::function<bool(std::string& last_seen)>& probe,
               milliseconds poll_interval = milliseconds(20));

struct AgentOptions {
  std::string durability = "sync";
  std::string cluster = "integration";
  std::string log_level = "debug";
  std::vector<std::string> extra_args;  // e.g. {"--sync-interval", "2s"}
};

class Agent {
 public:
  const std::string& name() const { return name_; }
  std::string peer_address() const;  // "127.0.0.1:PORT" (--bind)
  std::string http_address() const;  // "127.0.0.1:PORT" (--http)
  int peer_port() const { return peer_port_; }
  int http_port() const { return http_port_; }
  int dns_port() const { return dns_port_; }  // UDP (--dns)
  const std::string& data_dir() const { return data_dir_; }
  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }
  // The node id (16 hex digits) /v1/status reported when the agent became ready.
  const std::string& node_id() const { return node_id_; }
  // A client for the test's main thread (HttpClient is not thread-safe; other
  // threads make their own with NewClient()).
  cli::HttpClient& http() { return *http_; }
  std::unique_ptr<cli::HttpClient> NewClient(std::uint64_t timeout_ms = 10000) const;

 private:
  friend class Cluster;
  std::string name_;
  AgentOptions options_;
  int peer_port_ = 0;
  int http_port_ = 0;
  int dns_port_ = 0;
  std::string data_dir_;
  std::string log_path_;
  std::vector<std::string> join_;
  pid_t pid_ = 0;
  std::string node_id_;
  std::unique_ptr<cli::HttpClient> http_;
};

class Cluster {
 public:
  // `label` names the temporary directory (/tmp/gv-integ-<label>-XXXXXX).
  explicit Cluster(std::string label);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Assigns free ports, a data dir and a log file; does not start it.
  Agent& AddAgent(std::string name, AgentOptions options = {});

  // Spawns the agent (joining `seeds`, remembered for Restart) and waits until
  // GET /v1/status answers 200 with its node id.
  Status Start(Agent& agent, const std::vector<const Agent*>& seeds = {});
  // Starts `count` agents named <prefix>0..: the first alone, each next one
  // joining all the agents before it; then waits until every agent has at
  // least one active peer. The agents are returned in start order.
  Result<std::vector<Agent*>> StartCluster(std::size_t count, const AgentOptions& options = {},
                                           std::string_view prefix = "n");

  // SIGKILL, then waits for the PID to exit.
  Status Kill(Agent& agent);
  // SIGTERM, then waits for the PID to exit; returns the raw wait status.
  Result<int> Terminate(Agent& agent);
  // Starts a stopped agent again: same data dir, ports and seeds.
  Status Restart(Agent& agent);
  // Waits (bounded) for the agent's PID to exit; returns the raw wait status.
  Result<int> WaitExit(Agent& agent, milliseconds timeout = kExitTimeout);

  // Prints the tail of every agent's log to stderr.
  void PrintLogs(std::size_t tail_bytes = 24 * 1024) const;
  const std::string& root() const { return root_; }
  const std::vector<std::unique_ptr<Agent>>& agents() const { return agents_; }

 private:
  Status Spawn(Agent& agent);
  Status WaitReady(Agent& agent);
  std::string root_;
  std::vector<std::unique_ptr<Agent>> agents_;
};

// Runs a program (argv[0] is its path) with stdout and stderr captured,
// bounded by `timeout` (then SIGKILLed and reported as Aborted).
struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal
  std::string output;  // stdout and stderr interleaved
};
Result<CommandResult> RunCommand(const std::vector<std::string>& argv, milliseconds timeout = milliseconds(120000));
// RunCommand of the grapevine binary under test with `args`.
Result<CommandResult> RunGrapevine(const std::vector<std::string>& args, milliseconds timeout = milliseconds(120000));

// True when the doctest test case that is running has failed an assertion
// (a listener in cluster.cc tracks it); the Cluster prints logs then.
bool CurrentTestFailed();

// Describes a wait status ("exited 0", "killed by signal 9").
std::string DescribeWaitStatus(int wait_status);

// ---- HTTP helpers (all bounded by the client's timeout) ----

Result<nlohmann::json> GetJson(cli::HttpClient& client, std::string_view target);
Result<nlohmann::json> AgentStatus(Agent& agent);
// The node ids (16 hex) in /v1/status "active".
Result<std::vector<std::string>> ActiveView(Agent& agent);
// PUT /v1/kv/<key>; OK only on 200.
Status Put(cli::HttpClient& client, std::string_view key, std::string_view value);
// DELETE /v1/kv/<key>; OK only on 200.
Status Delete(cli::HttpClient& client, std::string_view key);
// GET /v1/kv/<key>?raw: the value, nullopt on 404, an error on anything else.
Result<std::optional<std::string>> GetRaw(cli::HttpClient& client, std::string_view key);
// Waits until every agent in `agents` reads `expected` (nullopt = absent) for `key`.
Status WaitForValue(const std::vector<Agent*>& agents, std::string_view key,
                    const std::optional<std::string>& expected, milliseconds timeout = kConvergeTimeout);

// ---- /metrics ----

// Sum of the samples of metric `name` whose label set contains every
// `label="value"` pair in `labels` (no labels: every sample). NotFound if no
// sample matches — a missing metric name is reported, never read as zero.
Result<double> MetricValue(std::string_view exposition,
                           std::string_view name,
                           const std::map<std::string, std::string>& labels = {});
// Scrapes GET /metrics and returns MetricValue over it.
Result<double> ScrapeMetric(Agent& agent, std::string_view name, const std::map<std::string, std::string>& labels = {});
// As ScrapeMetric, but 0 when the agent has not exposed the sample yet (a
// labelled counter may appear only after its first increment). Use for "before"
// readings only; the "after" reading must use ScrapeMetric.
Result<double> ScrapeMetricOrZero(Agent& agent, std::string_view name,
                                  const std::map<std::string, std::string>& labels = {});

}  // namespace gv::integration
