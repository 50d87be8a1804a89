// Snapshots with real agents (issue 5): catch-up by deltas when the peers'
// catch-up tail covers the gap and by snapshot when it does not; local
// snapshots that compact the WAL and restart the agent; a damaged newest
// snapshot that falls back to the previous one; online backup while writes go
// on, restore into a fresh agent that then converges; damaged backups refused
// without changing anything.
//
// GV_CATCHUP_KEYS sets how many keys the stopped agent misses (default 3000;
// `make test-catchup` runs the 100,000 against a release build).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace gv::integration {
namespace {

std::uint64_t CatchupKeys() {
  const char* env = std::getenv("GV_CATCHUP_KEYS");
  if (env == nullptr || *env == '\0') return 3000;
  return std::strtoull(env, nullptr, 10);
}

// Writes keys prefix/0..count-1 on `agent` from 4 client threads; every PUT
// must be answered 200.
Status WriteKeys(Agent& agent, const std::string& prefix, std::uint64_t count, std::size_t value_bytes = 40) {
  constexpr int kThreads = 4;
  std::atomic<std::uint64_t> next{0};
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto client = agent.NewClient(30000);
      for (std::uint64_t i = next++; i < count; i = next++) {
        std::string value = "v" + std::to_string(i) + std::string(value_bytes, 'x');
        Status put = Put(*client, prefix + std::to_string(i), value);
        if (!put.ok()) {
          errors[static_cast<std::size_t>(t)] = put.ToString();
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (const std::string& error : errors) {
    if (!error.empty()) return Status::Aborted("a writer failed: " + error);
  }
  return Status::Ok();
}

Result<std::string> Digest(Agent& agent) {
  auto status = GetJson(agent.http(), "/v1/status?digest");
  if (!status.ok()) return status.status();
  return status->value("digest", std::string());
}

// Waits until every agent reports the same state digest as `reference`.
Status WaitForSameDigest(Agent& reference, const std::vector<Agent*>& agents, milliseconds timeout) {
  return WaitFor("every agent to hold " + reference.name() + "'s state (equal digests)", timeout,
                 [&](std::string& last_seen) {
                   auto want = Digest(reference);
                   if (!want.ok()) {
                     last_seen = want.status().ToString();
                     return false;
                   }
                   last_seen = reference.name() + "=" + want->substr(0, 12);
                   bool all = true;
                   for (Agent* agent : agents) {
                     auto have = Digest(*agent);
                     last_seen += " " + agent->name() + "=" + (have.ok() ? have->substr(0, 12) : have.status().ToString());
                     all = all && have.ok() && *have == *want;
                   }
                   return all;
                 },
                 milliseconds(200));
}

std::vector<std::string> SnapshotFiles(const Agent& agent) {
  std::vector<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(agent.data_dir() + "/snapshots")) {
    if (entry.path().extension() == ".snap") files.push_back(entry.path().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST_CASE("an agent that missed fewer writes than the catch-up tail catches up by deltas") {
  const std::uint64_t keys = CatchupKeys();
  Cluster cluster("catchup-deltas");
  AgentOptions options;
  options.log_level = "info";
  options.extra_args = {"--sync-interval", "1s", "--catchup-tail", std::to_string(keys + 1000), "--snapshot-every",
                        std::to_string(keys * 4 + 1000)};
  auto agents = cluster.StartCluster(3, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& writer = *(*agents)[0];
  Agent& away = *(*agents)[2];

  auto stopped = cluster.Terminate(away);
  REQUIRE_MESSAGE(stopped.ok(), stopped.status().ToString());
  // Concurrent writes share deltas (one per loop iteration's group): count the deltas made.
  auto deltas_before = ScrapeMetric(writer, "grapevine_kv_write_groups_total");
  REQUIRE_MESSAGE(deltas_before.ok(), deltas_before.status().ToString());
  Status written = WriteKeys(writer, "missed/", keys);
  REQUIRE_MESSAGE(written.ok(), written.ToString());
  auto deltas_after = ScrapeMetric(writer, "grapevine_kv_write_groups_total");
  REQUIRE_MESSAGE(deltas_after.ok(), deltas_after.status().ToString());
  const double deltas_made = *deltas_after - *deltas_before;
  CHECK(deltas_made >= static_cast<double>(keys) / 4);  // WriteKeys has 4 writers, one request each

  const auto restart_at = std::chrono::steady_clock::now();
  Status restarted = cluster.Restart(away);
  REQUIRE_MESSAGE(restarted.ok(), restarted.ToString());
  Status same = WaitForSameDigest(writer, {&away, (*agents)[1]}, milliseconds(120000));
  REQUIRE_MESSAGE(same.ok(), same.ToString());
  MESSAGE("caught up on " << keys << " missed writes by deltas "
                          << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - restart_at).count()
                          << " ms after the restart");

  auto by_deltas = ScrapeMetric(away, "grapevine_antientropy_deltas_total");
  REQUIRE_MESSAGE(by_deltas.ok(), by_deltas.status().ToString());
  CHECK(*by_deltas >= deltas_made);
  auto installs = ScrapeMetric(away, "grapevine_snapshot_installs_total");
  REQUIRE_MESSAGE(installs.ok(), installs.status().ToString());
  CHECK(*installs == 0);
}

TEST_CASE("an agent that missed more writes than the catch-up tail catches up by snapshot") {
  const std::uint64_t keys = CatchupKeys();
  Cluster cluster("catchup-snapshot");
  AgentOptions options;
  options.log_level = "info";
  // The peers keep 200 deltas: the away agent misses far more.
  options.extra_args = {"--sync-interval", "1s", "--catchup-tail", "200", "--snapshot-every", "1000"};
  auto agents = cluster.StartCluster(3, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& writer = *(*agents)[0];
  Agent& away = *(*agents)[2];
  REQUIRE(Put(writer.http(), "before/a", "1").ok());
  REQUIRE(Put(writer.http(), "before/b", "2").ok());
  REQUIRE(WaitForValue(*agents, "before/b", "2").ok());

  auto stopped = cluster.Terminate(away);
  REQUIRE_MESSAGE(stopped.ok(), stopped.status().ToString());
  Status written = WriteKeys(writer, "missed/", keys);
  REQUIRE_MESSAGE(written.ok(), written.ToString());
  REQUIRE(Delete(writer.http(), "before/a").ok());  // a delete it must not miss

  const auto restart_at = std::chrono::steady_clock::now();
  Status restarted = cluster.Restart(away);
  REQUIRE_MESSAGE(restarted.ok(), restarted.ToString());
  Status same = WaitForSameDigest(writer, {&away, (*agents)[1]}, milliseconds(120000));
  REQUIRE_MESSAGE(same.ok(), same.ToString());
  MESSAGE("caught up on " << keys << " missed writes by snapshot "
                          << std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - restart_at).count()
                          << " ms after the restart");

  auto installs = ScrapeMetric(away, "grapevine_snapshot_installs_total");
  REQUIRE_MESSAGE(installs.ok(), installs.status().ToString());
  CHECK(*installs >= 1);
  auto served = ScrapeMetric(writer, "grapevine_snapshot_transfers_served_total");
  auto served_b = ScrapeMetric(*(*agents)[1], "grapevine_snapshot_transfers_served_total");
  REQUIRE(served.ok());
  REQUIRE(served_b.ok());
  CHECK(*served + *served_b >= 1);
  auto absent = GetRaw(away.http(), "before/a");
  REQUIRE(absent.ok());
  CHECK_FALSE(absent->has_value());

  // Deltas flow again after the install.
  REQUIRE(Put(writer.http(), "after/install", "yes").ok());
  Status after = WaitForValue({&away}, "after/install", "yes");
  CHECK_MESSAGE(after.ok(), after.ToString());
}

TEST_CASE("local snapshots compact the WAL; restart loads the newest valid snapshot and falls back past a damaged one") {
  Cluster cluster("local-snapshots");
  AgentOptions options;
  options.log_level = "info";
  // 2 KiB values: 12,000 writes fill three 8 MiB WAL segments; snapshots
  // every 500 deltas let compaction drop the first ones. (WriteKeys' 4
  // writers make 3,000 to 12,000 deltas: concurrent writes share deltas.)
  options.extra_args = {"--snapshot-every", "500", "--catchup-tail", "1000"};
  Agent& agent = cluster.AddAgent("solo", options);
  REQUIRE(cluster.Start(agent).ok());
  Status written = WriteKeys(agent, "k/", 12000, 2000);
  REQUIRE_MESSAGE(written.ok(), written.ToString());
  REQUIRE(Delete(agent.http(), "k/7").ok());

  Status snapshots = WaitFor("two local snapshots on disk", milliseconds(60000), [&](std::string& last_seen) {
    last_seen = std::to_string(SnapshotFiles(agent).size()) + " files";
    return SnapshotFiles(agent).size() >= 2;
  });
  REQUIRE_MESSAGE(snapshots.ok(), snapshots.ToString());
  auto written_total = ScrapeMetric(agent, "grapevine_snapshots_written_total");
  REQUIRE(written_total.ok());
  CHECK(*written_total >= 5);
  auto compactions = ScrapeMetric(agent, "grapevine_wal_compactions_total");
  REQUIRE(compactions.ok());
  CHECK(*compactions >= 1);
  // Compaction removed the first segments: the oldest left starts past LSN 1.
  std::uint64_t oldest_segment = UINT64_MAX;
  for (const auto& entry : std::filesystem::directory_iterator(agent.data_dir() + "/wal")) {
    if (entry.path().extension() == ".wal") {
      oldest_segment = std::min<std::uint64_t>(oldest_segment, std::stoull(entry.path().stem().string()));
    }
  }
  CHECK(oldest_segment != UINT64_MAX);
  CHECK(oldest_segment > 1);
  auto before = Digest(agent);
  REQUIRE(before.ok());

  REQUIRE(cluster.Terminate(agent).ok());
  REQUIRE(cluster.Restart(agent).ok());
  auto after = Digest(agent);
  REQUIRE(after.ok());
  CHECK(*after == *before);
  auto status = AgentStatus(agent);
  REQUIRE(status.ok());
  CHECK((*status)["recovery"].value("snapshot_entries", 0) > 0);
  const auto files = SnapshotFiles(agent);
  CHECK(files.size() <= 2);  // older ones pruned

  // Damage the newest snapshot: the agent must say so and use the previous one.
  REQUIRE(cluster.Terminate(agent).ok());
  const std::string newest = SnapshotFiles(agent).back();
  {
    std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(newest) / 2));
    file.put('\x5a');
    file.put('\xa5');
  }
  REQUIRE(cluster.Restart(agent).ok());
  auto fallback = Digest(agent);
  REQUIRE(fallback.ok());
  CHECK(*fallback == *before);
  CHECK(ReadFileText(agent.log_path()).find("snapshot unusable") != std::string::npos);
}

TEST_CASE("a backup taken while writes go on restores into a fresh agent, which converges; damaged backups are refused") {
  Cluster cluster("backup");
  AgentOptions options;
  options.log_level = "info";
  options.extra_args = {"--sync-interval", "1s"};
  auto agents = cluster.StartCluster(2, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& source = *(*agents)[0];
  REQUIRE(WriteKeys(source, "base/", 2000).ok());

  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> during{0};
  std::thread writer([&] {
    auto client = source.NewClient();
    for (std::uint64_t i = 0; !stop.load() && i < 100000; ++i) {
      if (Put(*client, "during/" + std::to_string(i), "d").ok()) ++during;
    }
  });
  const std::string backup = cluster.root() + "/backup.snap";
  auto saved = RunGrapevine({"snapshot", "save", backup, "--http", source.http_address()});
  stop = true;
  writer.join();
  REQUIRE(saved.ok());
  INFO(saved->output);
  REQUIRE(saved->exit_code == 0);
  CHECK(saved->output.find("all checksums good") != std::string::npos);
  CHECK(during.load() > 0);

  auto inspected = RunGrapevine({"snapshot", "inspect", backup});
  REQUIRE(inspected.ok());
  INFO(inspected->output);
  CHECK(inspected->exit_code == 0);
  CHECK(inspected->output.find("all good") != std::string::npos);
  CHECK(inspected->output.find("vector:") != std::string::npos);

  // A fresh agent joins and gets the backup restored.
  Agent& fresh = cluster.AddAgent("restored", options);
  REQUIRE(cluster.Start(fresh, {&source}).ok());
  auto restored = RunGrapevine({"snapshot", "restore", backup, "--http", fresh.http_address()});
  REQUIRE(restored.ok());
  INFO(restored->output);
  CHECK(restored->exit_code == 0);
  auto restores = ScrapeMetric(fresh, "grapevine_snapshot_restores_total");
  REQUIRE(restores.ok());
  CHECK(*restores == 1);
  REQUIRE(Put(source.http(), "after/restore", "1").ok());
  Status same = WaitForSameDigest(source, {&fresh, (*agents)[1]}, milliseconds(60000));
  CHECK_MESSAGE(same.ok(), same.ToString());

  // Damaged backups: the CLI names the problem and the agent is unchanged.
  auto digest_before = Digest(fresh);
  REQUIRE(digest_before.ok());
  const std::string bytes = ReadFileText(backup);
  const std::string truncated_path = cluster.root() + "/truncated.snap";
  std::ofstream(truncated_path, std::ios::binary) << bytes.substr(0, bytes.size() * 2 / 3);
  auto truncated = RunGrapevine({"snapshot", "restore", truncated_path, "--http", fresh.http_address()});
  REQUIRE(truncated.ok());
  CHECK(truncated->exit_code != 0);
  CHECK(truncated->output.find("not a valid snapshot") != std::string::npos);
  auto inspect_bad = RunGrapevine({"snapshot", "inspect", truncated_path});
  REQUIRE(inspect_bad.ok());
  CHECK(inspect_bad->exit_code != 0);

  std::string flipped = bytes;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x40);
  auto put = fresh.http().Request("PUT", "/v1/snapshot", flipped);
  REQUIRE(put.ok());
  CHECK(put->status == 400);
  CHECK(put->body.find("bad_snapshot") != std::string::npos);
  auto garbage = fresh.http().Request("PUT", "/v1/snapshot", "not a snapshot at all");
  REQUIRE(garbage.ok());
  CHECK(garbage->status == 400);
  auto digest_after = Digest(fresh);
  REQUIRE(digest_after.ok());
  CHECK(*digest_after == *digest_before);
}

TEST_CASE("restoring an older backup into a live agent merges: nothing newer is lost, its own seqs go on") {
  Cluster cluster("restore-merge");
  AgentOptions options;
  options.log_level = "info";
  options.extra_args = {"--catchup-tail", "10"};
  Agent& agent = cluster.AddAgent("solo", options);
  REQUIRE(cluster.Start(agent).ok());
  REQUIRE(WriteKeys(agent, "early/", 5).ok());
  auto backup = agent.http().Get("/v1/snapshot");
  REQUIRE(backup.ok());
  REQUIRE(backup->status == 200);
  // 50 more of its own writes (seqs 6..55, beyond its 10-delta tail), one of
  // them overwriting a key the backup holds, one deleting another.
  REQUIRE(WriteKeys(agent, "late/", 50).ok());
  REQUIRE(Put(agent.http(), "early/0", "newer").ok());
  REQUIRE(Delete(agent.http(), "early/1").ok());
  auto before = Digest(agent);
  REQUIRE(before.ok());
  auto put = agent.http().Request("PUT", "/v1/snapshot", backup->body);
  REQUIRE(put.ok());
  INFO(put->body);
  CHECK(put->status == 200);
  auto after = Digest(agent);
  REQUIRE(after.ok());
  CHECK(*after == *before);
  auto overwritten = GetRaw(agent.http(), "early/0");
  REQUIRE(overwritten.ok());
  CHECK(overwritten->value_or("") == "newer");
  auto deleted = GetRaw(agent.http(), "early/1");
  REQUIRE(deleted.ok());
  CHECK_FALSE(deleted->has_value());
  // It writes on with fresh seqs; a restart brings back the same state.
  REQUIRE(Put(agent.http(), "after/restore", "ok").ok());
  auto with_write = Digest(agent);
  REQUIRE(with_write.ok());
  REQUIRE(cluster.Terminate(agent).ok());
  REQUIRE(cluster.Restart(agent).ok());
  auto restarted = Digest(agent);
  REQUIRE(restarted.ok());
  CHECK(*restarted == *with_write);
}

}  // namespace
}  // namespace gv::integration
