// cluster_bench: grapevine agents — start/stop, propagation through SSE
// watches, sustained writes with a full check of what every agent holds.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench/cluster_bench.h"
#include "daemon/http_client.h"

namespace gv::bench {
namespace {

using Clock = std::chrono::steady_clock;

double MillisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

Status MakeDirectories(const std::string& path) {
  std::error_code error;
  std::filesystem::create_directories(path, error);
  if (error) return Status::IOError("cannot create directory " + path + ": " + error.message());
  return Status::Ok();
}

std::string Loopback(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

Result<nlohmann::json> GetJson(cli::HttpClient& client, const std::string& target) {
  auto response = client.Get(target);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Unavailable("GET http://" + client.address() + target + " answered " +
                               std::to_string(response->status) + ": " + response->body.substr(0, 300));
  }
  nlohmann::json parsed = nlohmann::json::parse(response->body, nullptr, false);
  if (parsed.is_discarded()) {
    return Status::Corruption("GET http://" + client.address() + target + ": not JSON: " + response->body.substr(0, 300));
  }
  return parsed;
}

Status Put(cli::HttpClient& client, const std::string& key, const std::string& value) {
  auto response = client.Request("PUT", "/v1/kv/" + cli::EncodeKeyPath(key), value);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Unavailable("PUT http://" + client.address() + "/v1/kv/" + key + " answered " +
                               std::to_string(response->status) + ": " + response->body.substr(0, 300));
  }
  return Status::Ok();
}

// Summed over every agent's /metrics.
struct GossipCounters {
  double gossip_sent = 0;
  double duplicates = 0;
  double grafts = 0;
  double prunes = 0;
  double graft_timeouts = 0;
  double hop_optimizations = 0;
  double origin_trees_created = 0;
  // grapevine_broadcast_payload_messages_sent_total{kind="delta"}: GOSSIP
  // messages that carried a KV delta (not an overlay or membership record).
  // Absent from older agents; then only the GOSSIP figure with the background
  // subtracted is available.
  std::optional<double> delta_payloads_sent;
  Clock::time_point at;  // midpoint of the scrape round
};

// Summed over every agent's /metrics: (deltas made from grouped writes,
// writes they carried); nullopt when an agent does not count them.
Result<std::optional<std::pair<double, double>>> ScrapeWriteGroups(const std::vector<GrapevineAgent>& agents) {
  std::pair<double, double> totals{0, 0};
  for (const GrapevineAgent& agent : agents) {
    cli::HttpClient client(agent.http, ClientTimeout(10000));
    auto response = client.Get("/metrics");
    if (!response.ok()) return response.status();
    auto samples = ParsePrometheusText(response->body);
    if (!samples.ok()) return Status::Corruption(agent.name + " /metrics: " + samples.status().message());
    if (!HasMetric(*samples, "grapevine_kv_write_groups_total")) return std::optional<std::pair<double, double>>();
    totals.first += SumSamples(*samples, "grapevine_kv_write_groups_total");
    totals.second += SumSamples(*samples, "grapevine_kv_grouped_writes_total");
  }
  return std::optional<std::pair<double, double>>(totals);
}

Result<GossipCounters> ScrapeGossip(const std::vector<GrapevineAgent>& agents) {
  GossipCounters totals;
  const Clock::time_point start = Clock::now();
  for (const GrapevineAgent& agent : agents) {
    cli::HttpClient client(agent.http, ClientTimeout(10000));
    auto response = client.Get("/metrics");
    if (!response.ok()) return response.status();
    if (response->status != 200) {
      return Status::Unavailable("GET " + agent.http + "/metrics answered " + std::to_string(response->status));
    }
    auto samples = ParsePrometheusText(response->body);
    if (!samples.ok()) return Status::Corruption(agent.name + " /metrics: " + samples.status().message());
    if (!HasMetric(*samples, "grapevine_peer_messages_sent_total")) {
      return Status::NotFound(agent.name + " /metrics has no grapevine_peer_messages_sent_total");
    }
    totals.gossip_sent += SumSamples(*samples, "grapevine_peer_messages_sent_total", {{"type", "GOSSIP"}});
    totals.duplicates += SumSamples(*samples, "grapevine_broadcast_duplicates_total");
    totals.grafts += SumSamples(*samples, "grapevine_broadcast_grafts_sent_total");
    totals.prunes += SumSamples(*samples, "grapevine_broadcast_prunes_sent_total");
    totals.graft_timeouts += SumSamples(*samples, "grapevine_broadcast_graft_timeouts_total");
    totals.hop_optimizations += SumSamples(*samples, "grapevine_broadcast_hop_optimizations_total");
    totals.origin_trees_created += SumSamples(*samples, "grapevine_broadcast_origin_trees_created_total");
    if (HasMetric(*samples, "grapevine_broadcast_payload_messages_sent_total")) {
      totals.delta_payloads_sent = totals.delta_payloads_sent.value_or(0) +
                                   SumSamples(*samples, "grapevine_broadcast_payload_messages_sent_total",
                                              {{"kind", "delta"}});
    }
  }
  totals.at = start + (Clock::now() - start) / 2;
  return totals;
}

// One SSE watch (GET /v1/watch?prefix=bench/) per agent, each on its own
// thread, recording when each key was first seen there (steady clock, the
// same clock the writer stamps its sends with).
class WatchSet {
 public:
  explicit WatchSet(const std::vector<GrapevineAgent>& agents) : seen_(agents.size()), errors_(agents.size()) {
    for (std::size_t i = 0; i < agents.size(); ++i) {
      threads_.emplace_back([this, i, address = agents[i].http] { Run(i, address); });
    }
  }

  // Ends every watch: each returns on its next event (the caller then writes
  // one) or after the idle timeout, or when its agent closes the stream.
  void RequestStop() { stop_ = true; }

  ~WatchSet() {
    stop_ = true;
    for (std::thread& t : threads_) t.join();
  }

  // Waits until every watch thread has returned; false on timeout.
  bool WaitFinished(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return finished_ == threads_.size(); });
  }

  // Waits until every agent saw `key`; false on timeout.
  bool WaitAllSaw(const std::string& key, Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return CountSawLocked(key) == seen_.size(); });
  }

  std::size_t CountSaw(const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    return CountSawLocked(key);
  }

  // When agent `agent` first saw `key`, if it did.
  std::optional<Clock::time_point> SawAt(std::size_t agent, const std::string& key) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = seen_[agent].find(key);
    if (it == seen_[agent].end()) return std::nullopt;
    return it->second;
  }

  std::vector<std::string> Errors() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const std::string& e : errors_) {
      if (!e.empty()) out.push_back(e);
    }
    return out;
  }

 private:
  std::size_t CountSawLocked(const std::string& key) const {
    std::size_t n = 0;
    for (const auto& agent_seen : seen_) n += agent_seen.count(key);
    return n;
  }

  void Run(std::size_t index, const std::string& address) {
    // The stream outlives any one request timeout; the agent sends a keepalive
    // comment every 15 s, so 40 s without a byte means the stream is dead.
    constexpr std::uint64_t kIdleTimeoutMs = 40000;
    cli::HttpClient client(address, ClientTimeout(10000));
    Status status = client.StreamEvents("/v1/watch?prefix=bench/", kIdleTimeoutMs,
                                        [&](std::string_view event, std::string_view data) {
                                          const Clock::time_point now = Clock::now();
                                          if (event == "put") {
                                            nlohmann::json j = nlohmann::json::parse(data, nullptr, false);
                                            if (!j.is_discarded() && j.contains("key") && j["key"].is_string()) {
                                              std::lock_guard<std::mutex> lock(mutex_);
                                              seen_[index].emplace(j["key"].get<std::string>(), now);
                                              changed_.notify_all();
                                            }
                                          }
                                          return !stop_.load();
                                        });
    std::lock_guard<std::mutex> lock(mutex_);
    if (!status.ok() && !stop_.load()) errors_[index] = "watch on " + address + ": " + status.ToString();
    ++finished_;
    changed_.notify_all();
  }

  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::map<std::string, Clock::time_point>> seen_;
  std::vector<std::string> errors_;
  std::size_t finished_ = 0;
  std::vector<std::thread> threads_;
};

// Ends a WatchSet on every path out of a measurement: asks the watches to stop,
// writes one more key so each sees an event and returns, and if some watch
// still has not returned (its agent missed the key), stops the cluster, which
// closes every stream. Declared after the WatchSet, so it runs first.
class WatchStopper {
 public:
  WatchStopper(WatchSet& watches, GrapevineCluster& cluster, cli::HttpClient& client)
      : watches_(watches), cluster_(cluster), client_(client) {}
  ~WatchStopper() {
    watches_.RequestStop();
    auto response = client_.Request("PUT", "/v1/kv/bench/stop", "stop");
    (void)response;  // if the agent is gone, stopping the cluster below ends the streams
    if (!watches_.WaitFinished(Clock::now() + std::chrono::seconds(5))) {
      std::printf("# some watch did not see bench/stop within 5 s: stopping the cluster to end it\n");
      cluster_.Stop();
    }
  }
  WatchStopper(const WatchStopper&) = delete;
  WatchStopper& operator=(const WatchStopper&) = delete;

 private:
  WatchSet& watches_;
  GrapevineCluster& cluster_;
  cli::HttpClient& client_;
};

// Waits until every agent counts an open watch (grapevine_kv_watchers >= 1),
// so the warm-up write is not sent before the streams exist. An agent that
// does not export the gauge is not waited for: the warm-up retries cover it.
Status WaitForWatchers(const std::vector<GrapevineAgent>& agents, Clock::time_point deadline) {
  std::vector<bool> open(agents.size(), false);
  for (;;) {
    std::size_t open_count = 0;
    for (std::size_t a = 0; a < agents.size(); ++a) {
      if (!open[a]) {
        cli::HttpClient client(agents[a].http, ClientTimeout(10000));
        auto response = client.Get("/metrics");
        if (!response.ok()) return response.status();
        auto samples = ParsePrometheusText(response->body);
        if (!samples.ok()) return Status::Corruption(agents[a].name + " /metrics: " + samples.status().message());
        open[a] = !HasMetric(*samples, "grapevine_kv_watchers") || SumSamples(*samples, "grapevine_kv_watchers") >= 1;
      }
      open_count += open[a] ? 1 : 0;
    }
    if (open_count == agents.size()) return Status::Ok();
    if (Clock::now() > deadline) {
      return Status::Unavailable(std::to_string(agents.size() - open_count) +
                                 " agents never counted the benchmark's watch (grapevine_kv_watchers)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Waits until every agent holds `expected_keys` (status key_count) or the deadline passes.
struct KeyCounts {
  std::vector<std::uint64_t> per_agent;
};

Result<KeyCounts> ReadKeyCounts(const std::vector<GrapevineAgent>& agents) {
  KeyCounts counts;
  for (const GrapevineAgent& agent : agents) {
    cli::HttpClient client(agent.http, ClientTimeout(10000));
    auto status = GetJson(client, "/v1/status");
    if (!status.ok()) return status.status();
    if (!status->contains("key_count") || !(*status)["key_count"].is_number_unsigned()) {
      return Status::Corruption(agent.name + " /v1/status has no numeric key_count");
    }
    counts.per_agent.push_back((*status)["key_count"].get<std::uint64_t>());
  }
  return counts;
}

// Keys of one writer: <prefix>t<writer>/<index>.
std::string WriterPrefix(const std::string& prefix, std::size_t writer) {
  return prefix + "t" + std::to_string(writer) + "/";
}

std::string SustainedKey(const std::string& prefix, std::size_t writer, std::uint64_t index) {
  return WriterPrefix(prefix, writer) + std::to_string(index);
}

// The value written under SustainedKey(writer, index): recomputable, so the
// check needs no copy of what was written.
std::string SustainedValue(std::size_t writer, std::uint64_t index, std::size_t bytes) {
  std::string value = "v" + std::to_string(writer) + "-" + std::to_string(index) + "-";
  value.resize(std::max(bytes, value.size()), 'x');
  return value;
}

}  // namespace

// ---- GrapevineCluster -------------------------------------------------------------

Status GrapevineCluster::Start(const std::string& label, std::size_t count) {
  const std::string dir = options_.base_dir + "/" + label;
  GV_RETURN_IF_ERROR(MakeDirectories(dir));
  agents_.clear();
  for (std::size_t i = 0; i < count; ++i) {
    GrapevineAgent agent;
    char name[32];
    std::snprintf(name, sizeof(name), "gv%03zu", i + 1);
    agent.name = name;
    for (std::string* address : {&agent.bind, &agent.http, &agent.dns}) {
      auto port = ports_.Next();
      if (!port.ok()) return port.status();
      *address = Loopback(*port);
    }
    agent.data_dir = dir + "/" + agent.name;
    agent.log_path = dir + "/" + agent.name + ".log";
    GV_RETURN_IF_ERROR(MakeDirectories(agent.data_dir));
    std::vector<std::string> argv = {options_.binary,
                                     "agent",
                                     "--name",
                                     agent.name,
                                     "--data-dir",
                                     agent.data_dir,
                                     "--bind",
                                     agent.bind,
                                     "--http",
                                     agent.http,
                                     "--dns",
                                     agent.dns,
                                     "--cluster",
                                     options_.cluster_name,
                                     "--durability",
                                     options_.durability,
                                     "--wal-segment-bytes",
                                     std::to_string(options_.wal_segment_bytes),
                                     "--log-level",
                                     options_.log_level};
    if (i > 0) {
      argv.push_back("--join");
      argv.push_back(agents_[0].bind);
    }
    auto pid = processes_.Spawn(argv, LogTo(agent.log_path));
    if (!pid.ok()) return pid.status();
    agent.pid = *pid;
    agents_.push_back(agent);

    // The seed must answer before anyone joins it; the others start staggered.
    if (i == 0) {
      const Clock::time_point deadline = Clock::now() + options_.ready_timeout;
      for (;;) {
        GV_RETURN_IF_ERROR(CheckAlive());
        cli::HttpClient client(agent.http, ClientTimeout(1000));
        auto status = client.Get("/v1/status");
        if (status.ok() && status->status == 200) break;
        if (Clock::now() > deadline) {
          return Status::Unavailable(agent.name + " did not answer GET /v1/status on " + agent.http + "; log " +
                                     agent.log_path + ":\n" + TailOfFile(agent.log_path, 2000));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    } else {
      std::this_thread::sleep_for(options_.spawn_interval);
    }
  }

  // Every agent answers and (in a cluster) has an active peer.
  const Clock::time_point deadline = Clock::now() + options_.ready_timeout;
  std::vector<bool> ready(agents_.size(), false);
  for (;;) {
    GV_RETURN_IF_ERROR(CheckAlive());
    std::size_t ready_count = 0;
    std::string last_problem;
    for (std::size_t i = 0; i < agents_.size(); ++i) {
      if (!ready[i]) {
        cli::HttpClient client(agents_[i].http, ClientTimeout(2000));
        auto status = GetJson(client, "/v1/status");
        if (!status.ok()) {
          last_problem = agents_[i].name + ": " + status.status().ToString();
        } else if (count > 1 && (!status->contains("active") || !(*status)["active"].is_array())) {
          return Status::Corruption(agents_[i].name + " /v1/status has no \"active\" array: " +
                                    status->dump().substr(0, 300));
        } else if (count > 1 && (*status)["active"].empty()) {
          last_problem = agents_[i].name + " has no active peer yet";
        } else {
          ready[i] = true;
        }
      }
      ready_count += ready[i] ? 1 : 0;
    }
    if (ready_count == agents_.size()) return Status::Ok();
    if (Clock::now() > deadline) {
      return Status::Unavailable(std::to_string(ready_count) + " of " + std::to_string(agents_.size()) +
                                 " agents ready after the start timeout; last problem: " + last_problem);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Status GrapevineCluster::CheckAlive() {
  std::string report;
  for (const GrapevineAgent& agent : agents_) {
    if (!processes_.Alive(agent.pid)) {
      report += "\n  " + agent.name + " (pid " + std::to_string(agent.pid) + ") " +
                processes_.ExitDescription(agent.pid) + "; last lines of " + agent.log_path + ":\n" +
                TailOfFile(agent.log_path, 1500);
    }
  }
  if (report.empty()) return Status::Ok();
  return Status::Aborted("grapevine agent(s) exited:" + report);
}

int GrapevineCluster::Stop() { return processes_.TerminateAll(std::chrono::milliseconds(10000)); }

// ---- propagation --------------------------------------------------------------------

// Payload messages per write per agent, two ways, both summed over all agents
// from the first write until the last agent saw the last one, divided by
// writes × agents:
// - counted: GOSSIP messages that carried a KV delta (the agent's
//   grapevine_broadcast_payload_messages_sent_total{kind="delta"});
// - estimated, only for an agent without that counter: every GOSSIP message
//   sent, minus the GOSSIP the cluster sends with no writes at all (membership
//   and overlay-record broadcasts) at the rate measured over an idle window of
//   the same length right before (noisy: overlay records come in bursts).
Result<PropagationResult> MeasureGrapevinePropagation(GrapevineCluster& cluster, const PropagationOptions& options,
                                                     Prng& prng) {
  const std::vector<GrapevineAgent>& agents = cluster.agents();
  const std::size_t n = agents.size();
  PropagationResult result;
  result.agents = n;
  result.writes = options.writes;

  std::vector<std::unique_ptr<cli::HttpClient>> clients;
  for (const GrapevineAgent& agent : agents) {
    clients.push_back(std::make_unique<cli::HttpClient>(agent.http, ClientTimeout(10000)));
  }

  WatchSet watches(agents);
  WatchStopper stopper(watches, cluster, *clients[0]);
  GV_RETURN_IF_ERROR(WaitForWatchers(agents, Clock::now() + std::chrono::seconds(30)));
  // Warm-up: a write every agent's watch sees proves every watch is open and
  // the overlay connected. The first may go out before some watch is open.
  bool warmed_up = false;
  std::size_t best = 0;
  for (int attempt = 0; attempt < 10 && !warmed_up; ++attempt) {
    const std::string key = "bench/warmup-" + std::to_string(attempt);
    GV_RETURN_IF_ERROR(Put(*clients[static_cast<std::size_t>(attempt) % n], key, "warmup"));
    warmed_up = watches.WaitAllSaw(key, Clock::now() + std::chrono::seconds(5));
    best = std::max(best, watches.CountSaw(key));
    GV_RETURN_IF_ERROR(cluster.CheckAlive());
  }
  if (!warmed_up) {
    std::string errors;
    for (const std::string& e : watches.Errors()) errors += "\n  " + e;
    return Status::Unavailable("no warm-up write reached every agent's watch (best: " + std::to_string(best) + " of " +
                               std::to_string(n) + ")" + errors);
  }

  // Background GOSSIP rate over an idle window as long as the write phase —
  // needed only when the agent does not count delta payloads itself.
  auto idle_start = ScrapeGossip(agents);
  if (!idle_start.ok()) return idle_start.status();
  double background_per_s = 0;
  double background_duplicates_per_s = 0;
  if (!idle_start->delta_payloads_sent) {
    const auto mean_spacing = (options.spacing_min + options.spacing_max) / 2;
    std::this_thread::sleep_for(mean_spacing * static_cast<long>(options.writes));
    auto idle_end = ScrapeGossip(agents);
    if (!idle_end.ok()) return idle_end.status();
    const double idle_seconds = std::chrono::duration<double>(idle_end->at - idle_start->at).count();
    background_per_s = (idle_end->gossip_sent - idle_start->gossip_sent) / idle_seconds;
    background_duplicates_per_s = (idle_end->duplicates - idle_start->duplicates) / idle_seconds;
  }

  auto before = ScrapeGossip(agents);
  if (!before.ok()) return before.status();
  std::vector<Clock::time_point> sent_at;
  std::vector<std::size_t> origins;
  std::vector<std::string> keys;
  for (std::size_t i = 0; i < options.writes; ++i) {
    const std::string key = "bench/w" + std::to_string(i);
    const std::size_t origin = prng.Index(options.origins == 0 ? n : std::min(n, options.origins));
    const Clock::time_point send = Clock::now();
    GV_RETURN_IF_ERROR(Put(*clients[origin], key, "value-" + std::to_string(i)));
    sent_at.push_back(send);
    origins.push_back(origin);
    keys.push_back(key);
    std::this_thread::sleep_for(std::chrono::milliseconds(
        prng.Range(options.spacing_min.count(), options.spacing_max.count())));
  }
  const Clock::time_point drain_deadline = Clock::now() + options.drain_timeout;
  for (const std::string& key : keys) watches.WaitAllSaw(key, drain_deadline);
  auto after = ScrapeGossip(agents);
  if (!after.ok()) return after.status();

  for (std::size_t i = 0; i < keys.size(); ++i) {
    std::optional<Clock::time_point> last;
    std::size_t last_agent = 0;
    std::size_t missing = 0;
    for (std::size_t a = 0; a < n; ++a) {
      auto at = watches.SawAt(a, keys[i]);
      if (!at) {
        ++missing;
      } else if (!last || *at > *last) {
        last = at;
        last_agent = a;
      }
    }
    if (missing > 0) {
      ++result.incomplete_writes;
      result.missing_deliveries += missing;
    } else {
      const double ms = MillisBetween(sent_at[i], *last);
      result.time_to_last_ms.push_back(ms);
      result.slowest.push_back({keys[i], agents[origins[i]].name, agents[last_agent].name, ms});
    }
  }
  std::sort(result.slowest.begin(), result.slowest.end(),
            [](const PropagationResult::SlowWrite& a, const PropagationResult::SlowWrite& b) { return a.ms > b.ms; });
  if (result.slowest.size() > 3) result.slowest.resize(3);

  const double window_seconds = std::chrono::duration<double>(after->at - before->at).count();
  const double denominator = static_cast<double>(options.writes) * static_cast<double>(n);
  const double raw = after->gossip_sent - before->gossip_sent;
  result.gossip_raw_per_write_per_agent = raw / denominator;
  result.grafts_during_writes = after->grafts - before->grafts;
  result.prunes_during_writes = after->prunes - before->prunes;
  result.graft_timeouts_during_writes = after->graft_timeouts - before->graft_timeouts;
  result.hop_optimizations_during_writes = after->hop_optimizations - before->hop_optimizations;
  result.origin_trees_created_during_writes = after->origin_trees_created - before->origin_trees_created;
  if (after->delta_payloads_sent && before->delta_payloads_sent) {
    result.delta_payloads_per_write_per_agent = (*after->delta_payloads_sent - *before->delta_payloads_sent) / denominator;
    // Duplicates cannot be split by kind: this one includes overlay records.
    result.duplicates_per_write_per_agent = (after->duplicates - before->duplicates) / denominator;
  } else {
    result.background_gossip_per_s = background_per_s;
    result.gossip_per_write_per_agent = (raw - background_per_s * window_seconds) / denominator;
    result.duplicates_per_write_per_agent =
        (after->duplicates - before->duplicates - background_duplicates_per_s * window_seconds) / denominator;
  }

  GV_RETURN_IF_ERROR(cluster.CheckAlive());
  return result;
}

// ---- sustained writes -------------------------------------------------------------

Result<SustainedResult> MeasureSustainedWrites(GrapevineCluster& cluster, const SustainedOptions& options, Prng& prng) {
  const std::vector<GrapevineAgent>& agents = cluster.agents();
  const std::size_t n = agents.size();
  SustainedResult result;
  result.durability = cluster.options().durability;
  result.agents = n;
  result.writers = options.writers;

  auto baseline = ReadKeyCounts(agents);
  if (!baseline.ok()) return baseline.status();
  auto groups_before = ScrapeWriteGroups(agents);
  if (!groups_before.ok()) return groups_before.status();

  struct WriterState {
    std::vector<std::uint64_t> acknowledged;  // indexes
    std::vector<std::uint64_t> uncertain;
    std::uint64_t refused = 0;
    std::string first_refusal;
    std::vector<double> latency_ms;
    Clock::time_point finished;
  };
  std::vector<WriterState> writers(options.writers);
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  Clock::time_point start;
  Clock::time_point deadline;
  std::mutex start_mutex;
  std::condition_variable start_cv;
  for (std::size_t w = 0; w < options.writers; ++w) {
    threads.emplace_back([&, w] {
      WriterState& state = writers[w];
      cli::HttpClient client(agents[w % n].http, ClientTimeout(10000));
      {
        std::unique_lock<std::mutex> lock(start_mutex);
        start_cv.wait(lock, [&] { return go.load(); });
      }
      for (std::uint64_t i = 0; Clock::now() < deadline; ++i) {
        const Clock::time_point send = Clock::now();
        auto response = client.Request("PUT", "/v1/kv/" + cli::EncodeKeyPath(SustainedKey(options.key_prefix, w, i)),
                                       SustainedValue(w, i, options.value_bytes));
        const Clock::time_point done = Clock::now();
        if (!response.ok()) {
          state.uncertain.push_back(i);
        } else if (response->status == 200) {
          state.acknowledged.push_back(i);
          state.latency_ms.push_back(MillisBetween(send, done));
        } else {
          if (state.refused++ == 0) {
            state.first_refusal = std::to_string(response->status) + ": " + response->body.substr(0, 200);
          }
        }
      }
      state.finished = Clock::now();
    });
  }
  rusage usage_before{};
  getrusage(RUSAGE_SELF, &usage_before);
  double agents_cpu_before = 0;
  for (const GrapevineAgent& agent : agents) agents_cpu_before += ProcessCpuSeconds(agent.pid);
  {
    std::lock_guard<std::mutex> lock(start_mutex);
    start = Clock::now();
    deadline = start + options.duration;
    go = true;
  }
  start_cv.notify_all();
  for (std::thread& t : threads) t.join();
  rusage usage_after{};
  getrusage(RUSAGE_SELF, &usage_after);
  double agents_cpu_after = 0;
  for (const GrapevineAgent& agent : agents) agents_cpu_after += ProcessCpuSeconds(agent.pid);

  Clock::time_point load_end = start;
  std::vector<double> latencies;
  std::string first_refusal;
  for (const WriterState& state : writers) {
    load_end = std::max(load_end, state.finished);
    result.acknowledged += state.acknowledged.size();
    result.uncertain += state.uncertain.size();
    result.refused += state.refused;
    if (first_refusal.empty()) first_refusal = state.first_refusal;
    latencies.insert(latencies.end(), state.latency_ms.begin(), state.latency_ms.end());
  }
  result.seconds = std::chrono::duration<double>(load_end - start).count();
  result.writes_per_s = static_cast<double>(result.acknowledged) / result.seconds;
  auto cpu_seconds = [](const rusage& u) {
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  result.writer_cpu_cores = (cpu_seconds(usage_after) - cpu_seconds(usage_before)) / result.seconds;
  result.agents_cpu_cores = (agents_cpu_after - agents_cpu_before) / result.seconds;
  result.ack_latency_ms = Summarize(std::move(latencies));
  auto groups_after = ScrapeWriteGroups(agents);
  if (!groups_after.ok()) return groups_after.status();
  if (*groups_before && *groups_after && (*groups_after)->first > (*groups_before)->first) {
    result.writes_per_delta = ((*groups_after)->second - (*groups_before)->second) /
                              ((*groups_after)->first - (*groups_before)->first);
  }
  if (result.refused > 0) {
    std::printf("# sustained: %llu writes refused; first: %s\n", static_cast<unsigned long long>(result.refused),
                first_refusal.c_str());
  }
  GV_RETURN_IF_ERROR(cluster.CheckAlive());

  // Convergence: every agent's key count covers every acknowledged write.
  const Clock::time_point converge_deadline = Clock::now() + options.converge_timeout;
  for (;;) {
    auto counts = ReadKeyCounts(agents);
    if (!counts.ok()) return counts.status();
    bool all = true;
    for (std::size_t a = 0; a < n; ++a) {
      if (counts->per_agent[a] < baseline->per_agent[a] + result.acknowledged) all = false;
    }
    if (all) break;
    if (Clock::now() > converge_deadline) {
      std::string detail;
      for (std::size_t a = 0; a < n; ++a) {
        detail += " " + agents[a].name + "=" +
                  std::to_string(static_cast<long long>(counts->per_agent[a] - baseline->per_agent[a]));
      }
      return Status::Unavailable("sustained: not every agent holds the " + std::to_string(result.acknowledged) +
                                 " acknowledged writes after the convergence timeout; new keys per agent:" + detail);
    }
    GV_RETURN_IF_ERROR(cluster.CheckAlive());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  result.converge_seconds = std::chrono::duration<double>(Clock::now() - load_end).count();

  // The exact check: every acknowledged key is listed on every agent
  // (GET /v1/kv/sustain/t<w>/?keys per writer keeps each answer small), and
  // nothing is listed that was never written.
  result.missing = 0;
  result.verified_keys = 0;
  std::uint64_t unexpected = 0;
  std::vector<std::set<std::uint64_t>> acknowledged_sets;
  std::vector<std::set<std::uint64_t>> uncertain_sets;
  for (const WriterState& state : writers) {
    acknowledged_sets.emplace_back(state.acknowledged.begin(), state.acknowledged.end());
    uncertain_sets.emplace_back(state.uncertain.begin(), state.uncertain.end());
  }
  std::vector<std::uint64_t> present_on_all(options.writers, 0);
  for (std::size_t a = 0; a < n; ++a) {
    cli::HttpClient client(agents[a].http, ClientTimeout(30000));
    for (std::size_t w = 0; w < options.writers; ++w) {
      const std::string prefix = WriterPrefix(options.key_prefix, w);
      auto response = client.Get("/v1/kv/" + cli::EncodeKeyPath(prefix) + "?keys");
      if (!response.ok()) return response.status();
      std::set<std::uint64_t> listed;
      if (response->status == 200) {
        nlohmann::json keys = nlohmann::json::parse(response->body, nullptr, false);
        if (keys.is_discarded() || !keys.is_array()) {
          return Status::Corruption(agents[a].name + " ?keys answer is not a JSON array");
        }
        for (const auto& key : keys) {
          if (!key.is_string()) return Status::Corruption(agents[a].name + " ?keys lists a non-string");
          const std::string text = key.get<std::string>();
          if (text.rfind(prefix, 0) != 0) {
            return Status::Corruption(agents[a].name + " lists '" + text + "' under prefix " + prefix);
          }
          listed.insert(std::strtoull(text.c_str() + prefix.size(), nullptr, 10));
        }
      } else if (response->status != 404) {
        return Status::Unavailable(agents[a].name + " GET ?keys for " + prefix + " answered " +
                                   std::to_string(response->status) + ": " + response->body.substr(0, 200));
      }
      for (std::uint64_t i : acknowledged_sets[w]) {
        if (listed.count(i) == 0) ++result.missing;
      }
      for (std::uint64_t i : listed) {
        if (acknowledged_sets[w].count(i) == 0 && uncertain_sets[w].count(i) == 0) ++unexpected;
      }
    }
  }
  for (const auto& s : acknowledged_sets) result.verified_keys += s.size();
  if (unexpected > 0) {
    return Status::Corruption("sustained: agents list " + std::to_string(unexpected) +
                              " keys that were never written");
  }

  // Values: a random sample of acknowledged keys read back on every agent.
  std::vector<std::pair<std::size_t, std::uint64_t>> sample;
  for (std::size_t s = 0; s < options.value_samples && result.acknowledged > 0; ++s) {
    std::size_t w = prng.Index(options.writers);
    if (writers[w].acknowledged.empty()) continue;
    sample.emplace_back(w, writers[w].acknowledged[prng.Index(writers[w].acknowledged.size())]);
  }
  for (std::size_t a = 0; a < n; ++a) {
    cli::HttpClient client(agents[a].http, ClientTimeout(10000));
    for (const auto& [w, i] : sample) {
      auto response = client.Get("/v1/kv/" + cli::EncodeKeyPath(SustainedKey(options.key_prefix, w, i)) + "?raw");
      if (!response.ok()) return response.status();
      ++result.values_checked;
      if (response->status != 200 || response->body != SustainedValue(w, i, options.value_bytes)) {
        ++result.values_wrong;
      }
    }
  }
  // The store digests, where the agent reports one: every agent holds the same state.
  std::set<std::string> digests;
  for (const GrapevineAgent& agent : agents) {
    cli::HttpClient client(agent.http, ClientTimeout(10000));
    auto status = GetJson(client, "/v1/status?digest");
    if (!status.ok()) return status.status();
    if (!status->contains("digest") || !(*status)["digest"].is_string()) {
      digests.clear();
      break;
    }
    digests.insert((*status)["digest"].get<std::string>());
  }
  if (!digests.empty()) result.digests_equal = digests.size() == 1;
  GV_RETURN_IF_ERROR(cluster.CheckAlive());
  return result;
}

}  // namespace gv::bench
