// catchup_bench: `make bench-catchup` (issue 5: "catch-up time of an agent
// that missed 1M updates", target <= 3 s on loopback).
//
// One round: 3 agents (--sync-interval 1s, the mode's --catchup-tail and
// --snapshot-every on every agent); the third is stopped with SIGTERM; the
// first takes --updates writes (distinct 16-byte keys, 100-byte values) from
// --writers threads, each a keep-alive HTTP connection doing PUT after PUT;
// once the second agent holds the same state as the writer, the third is
// started again on its old data directory and timed from its start until its
// state digest (GET /v1/status?digest) equals the writer's. Its
// /metrics say which path it took (grapevine_snapshot_installs_total,
// grapevine_antientropy_deltas_total).
//
// Modes: "deltas" gives the peers a catch-up tail longer than the gap (the
// missing deltas come from the tail); "snapshot" a short one (the gap is beyond
// the tail, so the peer streams a snapshot).
//
// While waiting, the restarted agent's plain /v1/status is polled (cheap) and
// compared by applied vector; the digest, which reads every key, is asked for
// only once the vectors match, so the polling does not slow the catch-up it
// measures. Performance is reported, never asserted: the exit status is
// non-zero only when a measurement could not be taken.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "bench/cluster_bench.h"
#include "bench/report.h"
#include "daemon/http_client.h"

namespace gv::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr double kTargetCatchUpSeconds = 3.0;
constexpr std::size_t kKeyBytes = 16;
constexpr std::size_t kAgents = 3;

struct Config {
  std::string grapevine = "build/grapevine";
  std::string base_dir;
  std::uint16_t base_port = 28000;
  std::uint64_t updates = 1000000;
  std::size_t writers = 32;
  std::size_t value_bytes = 100;
  std::vector<std::string> modes = {"deltas", "snapshot"};
  int rounds = 1;
  std::string durability = "none";
  std::uint64_t snapshot_every = 100000;
  std::uint64_t small_tail = 10000;  // "snapshot" mode's --catchup-tail
  int catchup_timeout_s = 300;
  int converge_timeout_s = 600;
  std::string agent_log_level = "info";
};

std::string Figure(double value, int decimals = 2) { return FormatFixed(value, decimals); }

double SecondsSince(Clock::time_point from) { return std::chrono::duration<double>(Clock::now() - from).count(); }

// Key i: exactly kKeyBytes bytes ("c" + 15 digits; --updates is at most 1e8);
// value: value_bytes bytes.
std::string UpdateKey(std::uint64_t i) {
  char key[32];
  std::snprintf(key, sizeof(key), "c%015llu", static_cast<unsigned long long>(i));
  return key;
}

std::string UpdateValue(std::uint64_t i, std::size_t bytes) {
  std::string value = "v" + std::to_string(i) + "-";
  value.resize(std::max(bytes, value.size()), 'x');
  return value;
}

Result<nlohmann::json> GetJson(const std::string& address, const std::string& target, std::uint64_t timeout_ms) {
  cli::HttpClient client(address, ClientTimeout(timeout_ms));
  auto response = client.Get(target);
  if (!response.ok()) return response.status();
  if (response->status != 200) {
    return Status::Unavailable("GET http://" + address + target + " answered " + std::to_string(response->status));
  }
  nlohmann::json parsed = nlohmann::json::parse(response->body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::Corruption("GET http://" + address + target + ": not a JSON object");
  }
  return parsed;
}

Result<std::string> Digest(const std::string& address) {
  auto status = GetJson(address, "/v1/status?digest", 60000);
  if (!status.ok()) return status.status();
  if (!status->contains("digest") || !(*status)["digest"].is_string()) {
    return Status::Corruption(address + " /v1/status?digest has no digest");
  }
  return (*status)["digest"].get<std::string>();
}

Result<nlohmann::json> Applied(const std::string& address, std::uint64_t timeout_ms) {
  auto status = GetJson(address, "/v1/status", timeout_ms);
  if (!status.ok()) return status.status();
  if (!status->contains("applied") || !(*status)["applied"].is_object()) {
    return Status::Corruption(address + " /v1/status has no applied vector");
  }
  return (*status)["applied"];
}

Result<std::vector<MetricSample>> Metrics(const std::string& address) {
  cli::HttpClient client(address, ClientTimeout(10000));
  auto response = client.Get("/metrics");
  if (!response.ok()) return response.status();
  if (response->status != 200) return Status::Unavailable(address + " /metrics answered " + std::to_string(response->status));
  return ParsePrometheusText(response->body);
}

// Three agents of one round. GrapevineCluster (cluster_bench) starts a
// cluster with fixed flags and cannot restart one agent on its data
// directory; this runs the same `grapevine agent` command line plus the
// catch-up flags, through the same ProcessGroup.
class Trio {
 public:
  Trio(const Config& config, PortAllocator& ports, std::string dir, std::uint64_t catchup_tail)
      : config_(config), ports_(ports), dir_(std::move(dir)), catchup_tail_(catchup_tail) {}
  ~Trio() { processes_.TerminateAll(std::chrono::milliseconds(10000)); }

  Status Start() {
    for (std::size_t i = 0; i < kAgents; ++i) {
      GrapevineAgent agent;
      agent.name = "cu" + std::to_string(i + 1);
      for (std::string* address : {&agent.bind, &agent.http, &agent.dns}) {
        auto port = ports_.Next();
        if (!port.ok()) return port.status();
        *address = "127.0.0.1:" + std::to_string(*port);
      }
      agent.data_dir = dir_ + "/" + agent.name;
      agent.log_path = dir_ + "/" + agent.name + ".log";
      std::error_code error;
      std::filesystem::create_directories(agent.data_dir, error);
      if (error) return Status::IOError("cannot create " + agent.data_dir + ": " + error.message());
      agents_.push_back(agent);
      GV_RETURN_IF_ERROR(Spawn(i));
      GV_RETURN_IF_ERROR(WaitAnswers(i, std::chrono::seconds(60)));
    }
    // Every agent lists all three alive: the overlay is whole before the test.
    const Clock::time_point deadline = Clock::now() + std::chrono::seconds(60);
    for (;;) {
      GV_RETURN_IF_ERROR(CheckAlive());
      std::size_t complete = 0;
      for (const GrapevineAgent& agent : agents_) {
        cli::HttpClient client(agent.http, ClientTimeout(2000));
        auto response = client.Get("/v1/members?status=alive");
        if (!response.ok() || response->status != 200) continue;
        nlohmann::json list = nlohmann::json::parse(response->body, nullptr, false);
        if (list.is_array() && list.size() == kAgents) ++complete;
      }
      if (complete == kAgents) return Status::Ok();
      if (Clock::now() > deadline) return Status::Unavailable("the 3 agents never all listed each other alive");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  // SIGTERM (a graceful leave), SIGKILL after 30 s.
  void StopAgent(std::size_t i) { processes_.Terminate(agents_[i].pid, std::chrono::milliseconds(30000)); }

  // Starts agent i again on its data directory, same ports and flags; its log
  // is appended to (the first run's lines stay for the report).
  Status Spawn(std::size_t i) {
    GrapevineAgent& agent = agents_[i];
    std::vector<std::string> argv = {config_.grapevine, "agent", "--name", agent.name, "--data-dir", agent.data_dir,
                                     "--bind", agent.bind, "--http", agent.http, "--dns", agent.dns,
                                     "--cluster", "catchup", "--durability", config_.durability,
                                     "--wal-segment-bytes", std::to_string(8u << 20), "--log-level",
                                     config_.agent_log_level, "--sync-interval", "1s", "--catchup-tail",
                                     std::to_string(catchup_tail_), "--snapshot-every",
                                     std::to_string(config_.snapshot_every)};
    if (i > 0) {
      argv.push_back("--join");
      argv.push_back(agents_[0].bind);
    }
    const std::string log = agent.log_path + (spawned_.count(i) ? ".restart" : "");
    auto pid = processes_.Spawn(argv, LogTo(log));
    if (!pid.ok()) return pid.status();
    spawned_.insert(i);
    agent.pid = *pid;
    return Status::Ok();
  }

  Status WaitAnswers(std::size_t i, std::chrono::seconds timeout) {
    const Clock::time_point deadline = Clock::now() + timeout;
    for (;;) {
      GV_RETURN_IF_ERROR(CheckAlive());
      if (Applied(agents_[i].http, 1000).ok()) return Status::Ok();
      if (Clock::now() > deadline) return Status::Unavailable(agents_[i].name + " never answered /v1/status");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  // An error naming every running agent that has exited (a stopped one is not running).
  Status CheckAlive() {
    std::string report;
    for (const GrapevineAgent& agent : agents_) {
      if (stopped_.count(agent.name) == 0 && !processes_.Alive(agent.pid)) {
        report += "\n  " + agent.name + " " + processes_.ExitDescription(agent.pid) + "; log " + agent.log_path +
                  ":\n" + TailOfFile(agent.log_path, 1500);
      }
    }
    if (report.empty()) return Status::Ok();
    return Status::Aborted("agent(s) exited:" + report);
  }
  void MarkStopped(std::size_t i, bool stopped) {
    if (stopped) {
      stopped_.insert(agents_[i].name);
    } else {
      stopped_.erase(agents_[i].name);
    }
  }

  const GrapevineAgent& agent(std::size_t i) const { return agents_[i]; }
  std::string restart_log(std::size_t i) const { return agents_[i].log_path + ".restart"; }

 private:
  const Config& config_;
  PortAllocator& ports_;
  std::string dir_;
  std::uint64_t catchup_tail_;
  ProcessGroup processes_;
  std::vector<GrapevineAgent> agents_;
  std::set<std::size_t> spawned_;
  std::set<std::string> stopped_;
};

struct WriteResult {
  std::uint64_t acknowledged = 0;
  std::uint64_t refused = 0;
  std::uint64_t uncertain = 0;
  std::string first_error;
  double seconds = 0;
};

// --updates PUTs of distinct keys against one agent from --writers threads.
WriteResult WriteUpdates(const Config& config, const std::string& address) {
  std::atomic<std::uint64_t> next{0};
  std::atomic<std::uint64_t> acknowledged{0}, refused{0}, uncertain{0};
  std::mutex error_mutex;
  std::string first_error;
  const Clock::time_point start = Clock::now();
  std::vector<std::thread> threads;
  for (std::size_t w = 0; w < config.writers; ++w) {
    threads.emplace_back([&] {
      cli::HttpClient client(address, ClientTimeout(30000));
      for (std::uint64_t i = next++; i < config.updates; i = next++) {
        auto response = client.Request("PUT", "/v1/kv/" + UpdateKey(i), UpdateValue(i, config.value_bytes));
        std::string error;
        if (!response.ok()) {
          ++uncertain;
          error = response.status().ToString();
        } else if (response->status != 200) {
          ++refused;
          error = std::to_string(response->status) + ": " + response->body.substr(0, 200);
        } else {
          ++acknowledged;
        }
        if (!error.empty()) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (first_error.empty()) first_error = error;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  WriteResult result;
  result.seconds = SecondsSince(start);
  result.acknowledged = acknowledged;
  result.refused = refused;
  result.uncertain = uncertain;
  result.first_error = first_error;
  return result;
}


// When a follower was seen holding the writer's state, in seconds since `from`:
// `state_equal_s` is when the answer to the /v1/status poll that found the
// applied vectors equal arrived (the agent built it at or before that moment;
// not the poll's send time: an agent whose loop is busy installing a snapshot
// answers a poll sent during the install only after it), and the digest asked
// for right after it matched (no writes are in flight, so the digest covers
// the state that poll saw); `digest_answered_s` is when that digest answer
// arrived — later by the time the follower takes to hash every key.
struct CaughtUp {
  double state_equal_s = 0;
  double digest_answered_s = 0;
  int digest_mismatches = 0;  // digests asked for with equal vectors that still differed
};

struct RoundResult {
  std::string mode;
  double write_rate = 0;
  CaughtUp caught_up;  // seconds since the restarted agent's start
  double snapshot_installs = 0;
  double antientropy_deltas = 0;
  std::string path;
};

Result<CaughtUp> WaitDigest(Trio& trio, std::size_t follower, const nlohmann::json& applied,
                            const std::string& digest, Clock::time_point from, std::chrono::seconds timeout) {
  const Clock::time_point deadline = from + timeout;
  CaughtUp result;
  for (;;) {
    GV_RETURN_IF_ERROR(trio.CheckAlive());
    auto follower_applied = Applied(trio.agent(follower).http, 5000);
    const double polled_s = SecondsSince(from);
    if (follower_applied.ok() && *follower_applied == applied) {
      auto follower_digest = Digest(trio.agent(follower).http);
      if (!follower_digest.ok()) return follower_digest.status();
      if (*follower_digest == digest) {
        result.state_equal_s = polled_s;
        result.digest_answered_s = SecondsSince(from);
        return result;
      }
      ++result.digest_mismatches;
    }
    if (Clock::now() > deadline) {
      return Status::Unavailable(trio.agent(follower).name + " did not reach the writer's state within " +
                                 std::to_string(timeout.count()) + " s (" +
                                 std::to_string(result.digest_mismatches) +
                                 " digests differed with equal applied vectors)");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// What the restarted agent's log says about its catch-up: snapshot transfer
// and install lines as they are; the per-reply "anti-entropy: N missing
// deltas" lines and the local snapshot lines (one per --snapshot-every deltas)
// summarised as counts with their first and last time.
std::vector<std::string> CatchUpLogLines(const std::string& path) {
  std::vector<std::string> lines;
  struct Run {
    std::size_t count = 0;
    std::string first, last;
  };
  Run replies, local_snapshots;
  auto note = [](Run& run, const std::string& line) {
    const std::string time = line.substr(0, line.find(' '));
    if (run.count++ == 0) run.first = time;
    run.last = time;
  };
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("anti-entropy:") != std::string::npos && line.find("missing deltas") != std::string::npos) {
      note(replies, line);
    } else if (line.find("] snapshot /") != std::string::npos) {
      note(local_snapshots, line);
    } else if (line.find("catch-up") != std::string::npos || line.find("snapshot") != std::string::npos) {
      lines.push_back(line.size() > 300 ? line.substr(0, 300) : line);
    }
  }
  if (replies.count > 0) {
    lines.push_back(std::to_string(replies.count) + " \"anti-entropy: N missing deltas\" lines, " + replies.first +
                    " .. " + replies.last);
  }
  if (local_snapshots.count > 0) {
    lines.push_back(std::to_string(local_snapshots.count) + " local snapshots written meanwhile, " +
                    local_snapshots.first + " .. " + local_snapshots.last);
  }
  return lines;
}

Result<RoundResult> RunRound(const Config& config, PortAllocator& ports, const std::string& mode, int round) {
  RoundResult result;
  result.mode = mode;
  // "deltas": the tail holds every missed delta with room to spare.
  const std::uint64_t tail = mode == "deltas" ? config.updates + config.updates / 10 + 1000 : config.small_tail;
  const std::string dir = config.base_dir + "/" + mode + "-" + std::to_string(round);
  Line("# " + mode + " round " + std::to_string(round) + ": 3 agents, --catchup-tail " + std::to_string(tail) +
       " --snapshot-every " + std::to_string(config.snapshot_every) + " --sync-interval 1s --durability " +
       config.durability + ", load " + LoadAverage());
  Trio trio(config, ports, dir, tail);
  GV_RETURN_IF_ERROR(trio.Start());
  constexpr std::size_t kWriter = 0, kPeer = 1, kLagger = 2;

  trio.MarkStopped(kLagger, true);
  trio.StopAgent(kLagger);
  Line("# stopped " + trio.agent(kLagger).name + " (SIGTERM); writing " + std::to_string(config.updates) +
       " updates to " + trio.agent(kWriter).name + " from " + std::to_string(config.writers) + " connections");

  WriteResult writes = WriteUpdates(config, trio.agent(kWriter).http);
  GV_RETURN_IF_ERROR(trio.CheckAlive());
  result.write_rate = static_cast<double>(writes.acknowledged) / writes.seconds;
  Line("writes " + mode + " round " + std::to_string(round) + ": " + std::to_string(writes.acknowledged) + " of " +
       std::to_string(config.updates) + " acknowledged in " + Figure(writes.seconds) + " s = " +
       Figure(result.write_rate, 0) + " writes/s (refused " + std::to_string(writes.refused) + ", uncertain " +
       std::to_string(writes.uncertain) + ")" + (writes.first_error.empty() ? "" : "; first error " + writes.first_error));
  if (writes.acknowledged == 0) return Status::Unavailable("no write was acknowledged");

  // The writer's final state, and the live peer holding it too, before the restart.
  auto applied = Applied(trio.agent(kWriter).http, 30000);
  if (!applied.ok()) return applied.status();
  auto digest = Digest(trio.agent(kWriter).http);
  if (!digest.ok()) return digest.status();
  const Clock::time_point converge_start = Clock::now();
  auto peer = WaitDigest(trio, kPeer, *applied, *digest, converge_start,
                         std::chrono::seconds(config.converge_timeout_s));
  if (!peer.ok()) return Status::Unavailable("the live peer: " + peer.status().ToString());
  Line("# " + trio.agent(kPeer).name + " held the writer's state " + Figure(peer->state_equal_s) +
       " s after the last write");

  const Clock::time_point restart = Clock::now();
  GV_RETURN_IF_ERROR(trio.Spawn(kLagger));
  trio.MarkStopped(kLagger, false);
  auto caught_up = WaitDigest(trio, kLagger, *applied, *digest, restart,
                              std::chrono::seconds(config.catchup_timeout_s));
  if (!caught_up.ok()) return caught_up.status();
  result.caught_up = *caught_up;

  auto metrics = Metrics(trio.agent(kLagger).http);
  if (!metrics.ok()) return metrics.status();
  result.snapshot_installs = SumSamples(*metrics, "grapevine_snapshot_installs_total");
  result.antientropy_deltas = SumSamples(*metrics, "grapevine_antientropy_deltas_total");
  result.path = result.snapshot_installs > 0 ? "snapshot" : result.antientropy_deltas > 0 ? "deltas" : "neither";
  for (const std::string& line : CatchUpLogLines(trio.restart_log(kLagger))) Line("#   " + line);
  Line("catch-up " + mode + " round " + std::to_string(round) + ": " + trio.agent(kLagger).name + " missed " +
       std::to_string(writes.acknowledged) + " updates; held the writer's state " +
       Figure(result.caught_up.state_equal_s) + " s after its start (applied vector equal, digest equal; the " +
       "digest answer arrived at " + Figure(result.caught_up.digest_answered_s) + " s" +
       (result.caught_up.digest_mismatches > 0
            ? ", after " + std::to_string(result.caught_up.digest_mismatches) + " unequal digests"
            : "") +
       "); path: " + result.path + " (snapshot installs " +
       Figure(result.snapshot_installs, 0) + ", anti-entropy deltas " + Figure(result.antientropy_deltas, 0) +
       "); target <= " + Figure(kTargetCatchUpSeconds, 0) + " s: " +
       (result.caught_up.state_equal_s <= kTargetCatchUpSeconds ? "met" : "missed"));
  if (result.path != mode) {
    Line("# note: the " + mode + " configuration took the " + result.path + " path");
  }
  return result;
}

}  // namespace
}  // namespace gv::bench

int main(int argc, char** argv) {
  using namespace gv::bench;
  Config config;
  CLI::App app{"catchup_bench: an agent that missed N updates catching up by deltas and by snapshot (issue 5)"};
  app.add_option("--grapevine", config.grapevine, "grapevine binary")->capture_default_str();
  app.add_option("--base-dir", config.base_dir, "agents' data and logs (default /tmp/catchup-bench-PID)");
  app.add_option("--base-port", config.base_port, "first 127.0.0.1 port to try")->capture_default_str();
  app.add_option("--updates", config.updates, "updates the stopped agent misses (distinct keys)")
      ->capture_default_str();
  app.add_option("--writers", config.writers, "concurrent keep-alive HTTP writers")->capture_default_str();
  app.add_option("--value-bytes", config.value_bytes, "bytes per value")->capture_default_str();
  app.add_option("--modes", config.modes, "deltas (tail covers the gap), snapshot (it does not)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--rounds", config.rounds, "rounds per mode, each on a fresh cluster")->capture_default_str();
  app.add_option("--durability", config.durability, "none or interval")->capture_default_str();
  app.add_option("--snapshot-every", config.snapshot_every, "agents' --snapshot-every")->capture_default_str();
  app.add_option("--small-tail", config.small_tail, "--catchup-tail in snapshot mode")->capture_default_str();
  app.add_option("--catchup-timeout-s", config.catchup_timeout_s, "give up on a catch-up after this long")
      ->capture_default_str();
  app.add_option("--agent-log-level", config.agent_log_level, "agents' --log-level")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (config.updates == 0 || config.updates > 100000000 || config.writers == 0 || config.writers > 1024 ||
      config.value_bytes == 0 || config.value_bytes > 65536 || config.rounds < 1 || config.small_tail == 0) {
    std::fprintf(stderr, "catchup_bench: --updates 1..1e8, --writers 1..1024, --value-bytes 1..65536, "
                         "--rounds >= 1, --small-tail >= 1\n");
    return 2;
  }
  for (const std::string& mode : config.modes) {
    if (mode != "deltas" && mode != "snapshot") {
      std::fprintf(stderr, "catchup_bench: unknown mode '%s' (deltas, snapshot)\n", mode.c_str());
      return 2;
    }
  }
  InstallEmergencyCleanup();
  if (config.base_dir.empty()) config.base_dir = "/tmp/catchup-bench-" + std::to_string(getpid());
  auto binary = ResolveProgram(config.grapevine);
  if (!binary.ok()) {
    std::fprintf(stderr, "catchup_bench: %s (make build builds it)\n", binary.status().message().c_str());
    return 2;
  }
  config.grapevine = *binary;
  Line("# catchup_bench " + UtcNow() + ", " + std::to_string(std::thread::hardware_concurrency()) + " cores, load " +
       LoadAverage() + ", data under " + config.base_dir + "; " + std::to_string(config.updates) + " updates of " +
       std::to_string(kKeyBytes) + "-byte keys and " + std::to_string(config.value_bytes) + "-byte values");
  PortAllocator ports(config.base_port);
  std::vector<std::string> failures;
  std::map<std::string, std::vector<double>> times, digest_times, rates;
  for (const std::string& mode : config.modes) {
    for (int round = 1; round <= config.rounds; ++round) {
      auto result = RunRound(config, ports, mode, round);
      if (!result.ok()) {
        failures.push_back(mode + " round " + std::to_string(round) + ": " + result.status().ToString());
        Line("# FAILED " + failures.back());
        continue;
      }
      times[mode].push_back(result->caught_up.state_equal_s);
      digest_times[mode].push_back(result->caught_up.digest_answered_s);
      rates[mode].push_back(result->write_rate);
    }
  }
  for (const auto& [mode, values] : times) {
    Summary s = Summarize(values);
    Line("catch-up " + mode + ": median " + Figure(s.median) + " s, max " + Figure(s.max) + " s over " +
         std::to_string(s.count) + " rounds of " + std::to_string(config.updates) +
         " missed updates (digest answered: median " + Figure(Median(digest_times[mode])) + " s); write rate median " +
         Figure(Median(rates[mode]), 0) + " writes/s");
  }
  if (!failures.empty()) {
    Line("# agent logs are kept under " + config.base_dir);
    return 1;
  }
  std::error_code ignored;
  std::filesystem::remove_all(config.base_dir, ignored);
  return 0;
}
