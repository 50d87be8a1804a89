// cluster_bench: `make bench-cluster` (issue #4). Local clusters of grapevine
// agents measured beside Serf agents and a libh2o hello-world in the same run:
//
//   http         wrk GET req/s against one agent's GET /v1/kv/<key>?raw and
//                against bench/h2o_hello, alternating, several rounds; ratio
//                (and each server's CPU per request).
//   sustained    10 agents, many concurrent HTTP writers for ~10 s, several
//                runs: cluster-wide acknowledged writes/s, then every
//                acknowledged write checked on every agent.
//   propagation  for N in --sizes: time from a PUT's send until the last
//                agent's SSE watch saw the key (median, p99, max over
//                --writes writes) and payload messages per write per agent;
//                the same for Serf user events; the ratio grapevine / serf.
//
// Performance is reported, never asserted: the process exits non-zero only
// when a measurement could not be taken (an agent died, a write was refused,
// a write never reached every agent's watch during the warm-up) or when an
// acknowledged write was missing or wrong on some agent — never because a
// target was missed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/cluster_bench_process.h"
#include "common/prng.h"
#include "common/status.h"
#include "daemon/http_client.h"

namespace gv::bench {

inline cli::HttpClientOptions ClientTimeout(std::uint64_t timeout_ms) {
  cli::HttpClientOptions options;
  options.timeout_ms = timeout_ms;
  return options;
}

inline SpawnOptions LogTo(std::string log_path) {
  SpawnOptions options;
  options.log_path = std::move(log_path);
  return options;
}

// ---- statistics ---------------------------------------------------------------

struct Summary {
  std::size_t count = 0;
  double median = 0;
  double p99 = 0;  // nearest rank: with 100 samples the second largest, with 50 the largest
  double max = 0;
};
Summary Summarize(std::vector<double> values);
double Median(std::vector<double> values);

// ---- Prometheus text ----------------------------------------------------------

struct MetricSample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
// Parses the text exposition format (comments skipped; malformed lines are an error).
Result<std::vector<MetricSample>> ParsePrometheusText(const std::string& text);
// Sum of the samples named `name` whose labels include every pair of `match`.
double SumSamples(const std::vector<MetricSample>& samples, const std::string& name,
                  const std::map<std::string, std::string>& match = {});
bool HasMetric(const std::vector<MetricSample>& samples, const std::string& name);

// ---- propagation (shared by both systems) -------------------------------------

struct PropagationOptions {
  std::size_t writes = 100;
  std::chrono::milliseconds spacing_min{100};
  std::chrono::milliseconds spacing_max{200};
  // After the last write: how long to wait for every agent to see every write.
  std::chrono::milliseconds drain_timeout{30000};
  // Each write goes to a random one of the first `origins` agents (0: any agent).
  std::size_t origins = 0;
};

struct PropagationResult {
  std::size_t agents = 0;
  std::size_t writes = 0;
  std::vector<double> time_to_last_ms;  // one per write that reached every agent
  std::size_t incomplete_writes = 0;    // writes some agent never saw within the drain timeout
  std::size_t missing_deliveries = 0;   // (write, agent) pairs never seen
  // grapevine only: payload messages per write per agent — counted directly
  // (GOSSIP carrying a KV delta) where the agent exports that, and estimated as
  // all GOSSIP minus the background rate (see MeasureGrapevinePropagation).
  std::optional<double> delta_payloads_per_write_per_agent;  // from the agents' payload-by-kind counter
  std::optional<double> gossip_per_write_per_agent;
  std::optional<double> gossip_raw_per_write_per_agent;
  std::optional<double> background_gossip_per_s;
  std::optional<double> duplicates_per_write_per_agent;
  std::optional<double> grafts_during_writes;  // GRAFTs sent by all agents (writes and overlay records)
  std::optional<double> prunes_during_writes;  // PRUNEs sent by all agents
  std::optional<double> graft_timeouts_during_writes;  // graft timers that found the id still missing
  std::optional<double> hop_optimizations_during_writes;  // hop-difference repairs
  std::optional<double> origin_trees_created_during_writes;  // per-origin trees created, summed over agents
  // serf only: wall time of one `serf event` command (fork to exit).
  std::vector<double> serf_cli_ms;
  // The slowest complete writes, slowest first (at most 3): where they were
  // written and which agent saw them last — for looking into the agents' logs.
  struct SlowWrite {
    std::string key;
    std::string origin;
    std::string last;
    double ms = 0;
  };
  std::vector<SlowWrite> slowest;
};

// ---- grapevine agents ----------------------------------------------------------

struct GrapevineOptions {
  std::string binary;  // absolute path of build/grapevine
  std::string base_dir;
  std::string durability = "sync";
  std::string log_level = "warn";
  std::uint64_t wal_segment_bytes = 8u << 20;
  std::string cluster_name = "bench";
  std::chrono::milliseconds spawn_interval{20};
  std::chrono::milliseconds ready_timeout{120000};
};

struct GrapevineAgent {
  std::string name;
  std::string bind;  // peer address IP:PORT
  std::string http;
  std::string dns;
  std::string data_dir;
  std::string log_path;
  pid_t pid = -1;
};

class GrapevineCluster {
 public:
  GrapevineCluster(GrapevineOptions options, PortAllocator& ports) : options_(std::move(options)), ports_(ports) {}
  ~GrapevineCluster() { Stop(); }
  GrapevineCluster(const GrapevineCluster&) = delete;
  GrapevineCluster& operator=(const GrapevineCluster&) = delete;

  // Starts `count` agents under base_dir/<label>/: agent 1 first, then the
  // rest joining agent 1. Returns once every agent answers GET /v1/status and
  // has at least one active peer (when count > 1).
  Status Start(const std::string& label, std::size_t count);
  // An error naming every agent that has exited, with the tail of its log.
  Status CheckAlive();
  // SIGTERM (graceful leave), SIGKILL after 10 s; returns how many needed SIGKILL.
  int Stop();

  const std::vector<GrapevineAgent>& agents() const { return agents_; }
  const GrapevineOptions& options() const { return options_; }

 private:
  GrapevineOptions options_;
  PortAllocator& ports_;
  ProcessGroup processes_;
  std::vector<GrapevineAgent> agents_;
};

Result<PropagationResult> MeasureGrapevinePropagation(GrapevineCluster& cluster, const PropagationOptions& options,
                                                     Prng& prng);

struct SustainedOptions {
  std::string key_prefix = "sustain/";  // keys are <key_prefix>t<writer>/<index>; must be new in the cluster
  std::size_t writers = 256;
  std::chrono::seconds duration{10};
  std::size_t value_bytes = 32;
  std::chrono::milliseconds converge_timeout{180000};
  std::size_t value_samples = 200;  // acknowledged keys whose value is read back on every agent
};

struct SustainedResult {
  std::string durability;
  std::size_t agents = 0;
  std::size_t writers = 0;
  double seconds = 0;
  std::uint64_t acknowledged = 0;
  std::uint64_t refused = 0;    // an HTTP error status
  std::uint64_t uncertain = 0;  // transport error or timeout: may or may not be applied
  double writes_per_s = 0;
  // CPU used during the load, in cores: the benchmark's writer threads (is the
  // client the limit?) and all agents together (are the agents?).
  double writer_cpu_cores = 0;
  double agents_cpu_cores = 0;
  Summary ack_latency_ms;
  double converge_seconds = 0;         // from the end of the load until every agent held every write
  std::uint64_t verified_keys = 0;     // acknowledged keys found on every agent by ?keys listing
  std::uint64_t missing = 0;           // (key, agent) pairs acknowledged but absent — must be 0
  std::uint64_t values_checked = 0;    // (key, agent) values read back and compared
  std::uint64_t values_wrong = 0;
  std::optional<bool> digests_equal;   // /v1/status "digest" identical on every agent, if reported
  // Acknowledged writes per delta their agents made (grapevine_kv_grouped_writes_total
  // over grapevine_kv_write_groups_total), if the agents count them.
  std::optional<double> writes_per_delta;
};

Result<SustainedResult> MeasureSustainedWrites(GrapevineCluster& cluster, const SustainedOptions& options, Prng& prng);

// ---- Serf agents ---------------------------------------------------------------

struct SerfOptions {
  std::string binary;  // absolute path of serf
  std::string base_dir;
  std::chrono::milliseconds spawn_interval{20};
  std::chrono::milliseconds ready_timeout{120000};
};

struct SerfAgent {
  std::string name;
  std::string bind;
  std::string rpc;
  std::string events_path;  // the event handler appends "<epoch seconds.micros> <payload>" here
  std::string log_path;
  pid_t pid = -1;
};

class SerfCluster {
 public:
  SerfCluster(SerfOptions options, PortAllocator& ports) : options_(std::move(options)), ports_(ports) {}
  ~SerfCluster() { Stop(); }
  SerfCluster(const SerfCluster&) = delete;
  SerfCluster& operator=(const SerfCluster&) = delete;

  // Agent 1 first, the rest with -join agent 1; returns once `serf members` on
  // the first and the last agent lists `count` alive members.
  Status Start(const std::string& label, std::size_t count);
  Status CheckAlive();
  int Stop();
  const std::vector<SerfAgent>& agents() const { return agents_; }
  const SerfOptions& options() const { return options_; }

 private:
  Result<std::size_t> AliveMembers(const SerfAgent& agent);
  SerfOptions options_;
  PortAllocator& ports_;
  ProcessGroup processes_;
  std::vector<SerfAgent> agents_;
};

Result<PropagationResult> MeasureSerfPropagation(SerfCluster& cluster, const PropagationOptions& options, Prng& prng);

// ---- HTTP GET throughput with wrk -----------------------------------------------

struct WrkOptions {
  std::string binary;  // absolute path of wrk
  int threads = 2;
  int connections = 64;
  int seconds = 10;
};

struct WrkResult {
  double requests_per_s = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t socket_errors = 0;
  std::string latency_avg;  // as wrk prints it ("1.23ms")
};

Result<WrkResult> RunWrk(const WrkOptions& options, const std::string& url);

}  // namespace gv::bench
