// SIGKILL in sync mode loses no acknowledged write: client threads PUT
// distinct keys as fast as they can, the agent is SIGKILLed while they do,
// restarted on the same data dir, and must hold every key whose PUT was
// answered 200, with its value.
//
// A single agent, on purpose: a peer would hand the writes back through
// anti-entropy and hide a WAL that lost them.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace gv::integration {
namespace {

constexpr int kWriterThreads = 4;
// Kill once this many writes were acknowledged (so the kill lands mid-stream,
// with every thread still writing).
constexpr std::uint64_t kAcksBeforeKill = 2000;
// With compaction: enough writes (~900 bytes each) to fill an 8 MiB WAL
// segment, so whole segments get deleted while the writers run.
constexpr std::uint64_t kAcksBeforeKillCompacting = 10000;

std::string KeyFor(int thread, int i) { return "durable/t" + std::to_string(thread) + "/" + std::to_string(i); }
std::string ValueFor(int thread, int i) {
  // Distinct per key, and long enough to span more than one WAL block now and then.
  return "value-" + std::to_string(thread) + "-" + std::to_string(i) + "-" + std::string(static_cast<std::size_t>(i % 7) * 300, 'v');
}

void SigkillKeepsAcknowledgedWrites(const std::string& label, const std::vector<std::string>& extra_args,
                                    std::uint64_t acks_before_kill) {
  Cluster cluster(label);
  AgentOptions options;
  options.durability = "sync";
  options.log_level = "info";  // thousands of writes: keep the log small
  options.extra_args = extra_args;
  Agent& agent = cluster.AddAgent("solo", options);
  Status started = cluster.Start(agent);
  REQUIRE_MESSAGE(started.ok(), started.ToString());

  struct WriterResult {
    std::vector<int> acked;       // i of every PUT answered 200
    std::string unexpected;       // a non-200 answer while the agent was alive
    std::string ended_by;         // the error that stopped the thread
  };
  std::vector<WriterResult> results(kWriterThreads);
  std::atomic<std::uint64_t> total_acked{0};
  std::atomic<bool> killed{false};
  std::atomic<bool> writer_failed{false};  // a non-200 answer while the agent was alive
  std::atomic<int> writers_done{0};        // threads that stopped (before the kill: the agent died)
  std::vector<std::thread> writers;
  for (int t = 0; t < kWriterThreads; ++t) {
    writers.emplace_back([&, t] {
      auto client = agent.NewClient(20000);
      WriterResult& result = results[static_cast<std::size_t>(t)];
      for (int i = 0;; ++i) {
        auto response = client->Request("PUT", "/v1/kv/" + KeyFor(t, i), ValueFor(t, i));
        if (!response.ok()) {
          result.ended_by = response.status().ToString();
          ++writers_done;
          return;  // the agent is gone
        }
        if (response->status == 200) {
          result.acked.push_back(i);
          ++total_acked;
        } else if (!killed.load()) {
          result.unexpected = "PUT " + KeyFor(t, i) + " answered " + std::to_string(response->status) + ": " +
                              response->body;
          writer_failed = true;
          ++writers_done;
          return;
        }
      }
    });
  }

  Status enough = WaitFor("the writers to have " + std::to_string(acks_before_kill) + " acknowledged writes",
                          milliseconds(120000), [&](std::string& last_seen) {
                            last_seen = std::to_string(total_acked.load()) + " acknowledged";
                            // A writer that stopped early cannot add more.
                            if (writer_failed.load() || writers_done.load() > 0) return true;
                            return total_acked.load() >= acks_before_kill;
                          });
  killed = true;
  Status kill = cluster.Kill(agent);
  for (auto& writer : writers) writer.join();
  REQUIRE_MESSAGE(enough.ok(), enough.ToString());
  REQUIRE_MESSAGE(total_acked.load() >= acks_before_kill,
                  "a writer stopped before the kill (" << total_acked.load() << " acknowledged)");
  REQUIRE_MESSAGE(kill.ok(), kill.ToString());
  for (const auto& result : results) {
    CHECK_MESSAGE(result.unexpected.empty(), result.unexpected);
    // Every thread was still writing when the kill came (it ended on a
    // transport error, not earlier).
    CHECK_FALSE(result.ended_by.empty());
  }
  const std::uint64_t acked = total_acked.load();
  MESSAGE("acknowledged before SIGKILL: " << acked << " writes from " << kWriterThreads << " threads");

  Status restarted = cluster.Restart(agent);
  REQUIRE_MESSAGE(restarted.ok(), restarted.ToString());

  // One prefix read returns every surviving key.
  auto entries = GetJson(agent.http(), "/v1/kv/durable/?recurse");
  REQUIRE_MESSAGE(entries.ok(), entries.status().ToString());
  REQUIRE(entries->is_array());
  std::map<std::string, std::string> present;
  for (const auto& entry : *entries) {
    present[entry.value("key", "")] = entry.value("value", "");
  }
  std::uint64_t missing = 0;
  std::uint64_t wrong = 0;
  std::string first_problems;
  for (int t = 0; t < kWriterThreads; ++t) {
    for (int i : results[static_cast<std::size_t>(t)].acked) {
      auto it = present.find(KeyFor(t, i));
      if (it == present.end()) {
        ++missing;
        if (first_problems.size() < 500) first_problems += " missing " + KeyFor(t, i);
      } else if (it->second != ValueFor(t, i)) {
        ++wrong;
        if (first_problems.size() < 500) first_problems += " wrong value at " + KeyFor(t, i);
      }
    }
  }
  CHECK_MESSAGE(missing == 0, missing << " of " << acked << " acknowledged writes lost:" << first_problems);
  CHECK_MESSAGE(wrong == 0, wrong << " of " << acked << " acknowledged writes have another value:" << first_problems);
  // Writes in flight at the kill may or may not have survived; nothing else exists.
  CHECK(present.size() >= acked);
  CHECK(present.size() <= acked + kWriterThreads);

  // The restarted agent accepts writes again.
  Status put = Put(agent.http(), "durable/after-restart", "ok");
  CHECK_MESSAGE(put.ok(), put.ToString());
}

TEST_CASE("an agent SIGKILLed in sync mode keeps every acknowledged write") {
  SigkillKeepsAcknowledgedWrites("sigkill", {}, kAcksBeforeKill);
}

// The same while local snapshots and WAL compaction run under the writes: the
// kill may land while a snapshot is written or segments are deleted.
TEST_CASE("an agent SIGKILLed in sync mode while snapshots compact its WAL keeps every acknowledged write") {
  SigkillKeepsAcknowledgedWrites("sigkill-compacting", {"--snapshot-every", "300", "--catchup-tail", "100"},
                                 kAcksBeforeKillCompacting);
}

}  // namespace
}  // namespace gv::integration
