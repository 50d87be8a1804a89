// The KV API across real agents on loopback: replication of puts and deletes
// (also of the largest value allowed), blocking reads woken by a remote write,
// SSE watches fed by a remote write, and compare-and-set.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/integration/cluster.h"

namespace gv::integration {
namespace {

// X-Grapevine-Index of a response as a number (0 when absent or malformed, so
// a check "> N" fails loudly).
std::uint64_t IndexHeader(const cli::HttpResponse& response) {
  const std::string text(response.Header("x-grapevine-index"));
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(text);
}

TEST_CASE("a write on one agent is read on every other agent, and so is a delete") {
  Cluster cluster("replicate");
  auto agents = cluster.StartCluster(4);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*>& all = *agents;

  // One key written on each agent; values with spaces, UTF-8 and a key with
  // characters that need percent-encoding.
  const std::vector<std::pair<std::string, std::string>> writes = {
      {"config/db/url", "postgres://db.internal:5432/app"},
      {"config/feature flags", "alpha=on beta=off"},
      {"service/web/Ä-ü", "grüße, 世界"},
      {"a", std::string(4000, 'x')},
  };
  for (std::size_t i = 0; i < writes.size(); ++i) {
    Status put = Put(all[i % all.size()]->http(), writes[i].first, writes[i].second);
    REQUIRE_MESSAGE(put.ok(), put.ToString());
  }
  for (const auto& [key, value] : writes) {
    Status converged = WaitForValue(all, key, value);
    CHECK_MESSAGE(converged.ok(), converged.ToString());
  }

  // Overwrite on another agent than the first writer: the newer value wins everywhere.
  Status overwrite = Put(all[3]->http(), "config/db/url", "postgres://db2.internal:5432/app");
  REQUIRE_MESSAGE(overwrite.ok(), overwrite.ToString());
  Status overwritten = WaitForValue(all, "config/db/url", std::string("postgres://db2.internal:5432/app"));
  CHECK_MESSAGE(overwritten.ok(), overwritten.ToString());

  // A delete on one agent removes the key on all; the others stay.
  Status deleted = Delete(all[2]->http(), "config/feature flags");
  REQUIRE_MESSAGE(deleted.ok(), deleted.ToString());
  Status gone = WaitForValue(all, "config/feature flags", std::nullopt);
  CHECK_MESSAGE(gone.ok(), gone.ToString());
  for (Agent* agent : all) {
    auto value = GetRaw(agent->http(), "service/web/Ä-ü");
    REQUIRE_MESSAGE(value.ok(), value.status().ToString());
    CHECK(*value == std::optional<std::string>("grüße, 世界"));
    // Every agent lists the same three live keys.
    auto keys = GetJson(agent->http(), "/v1/kv/?keys");
    REQUIRE_MESSAGE(keys.ok(), keys.status().ToString());
    CHECK_MESSAGE(keys->size() == 3, agent->name() << " lists " << keys->dump());
  }
}

TEST_CASE("a write of the largest value the agent accepts reaches every agent by broadcast") {
  // Anti-entropy is pushed out to an hour, so only the broadcast can carry
  // the write (a lone write leaves no gap for gap repair to notice either).
  Cluster cluster("bigvalue");
  AgentOptions options;
  options.log_level = "info";
  options.extra_args = {"--max-value-bytes", "1048576", "--sync-interval", "1h"};
  auto agents = cluster.StartCluster(3, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  std::vector<Agent*>& all = *agents;
  for (const std::size_t size : {std::size_t{64} << 10, std::size_t{1} << 20}) {
    CAPTURE(size);
    const std::string key = "big/" + std::to_string(size);
    std::string value(size, 'v');
    value.replace(0, key.size(), key);
    Status put = Put(all[0]->http(), key, value);
    REQUIRE_MESSAGE(put.ok(), put.ToString());
    Status spread = WaitForValue(all, key, value, milliseconds(15000));
    CHECK_MESSAGE(spread.ok(), spread.ToString().substr(0, 300));
  }
}

TEST_CASE("a blocking read on agent B wakes when agent A writes the key") {
  Cluster cluster("blocking");
  auto agents = cluster.StartCluster(3);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& a = *(*agents)[0];
  Agent& b = *(*agents)[2];

  REQUIRE(Put(a.http(), "blocking/key", "before").ok());
  Status seen = WaitForValue({&b}, "blocking/key", std::string("before"));
  REQUIRE_MESSAGE(seen.ok(), seen.ToString());
  auto initial = b.http().Get("/v1/kv/blocking/key");
  REQUIRE_MESSAGE(initial.ok(), initial.status().ToString());
  REQUIRE(initial->status == 200);
  const std::uint64_t index = IndexHeader(*initial);
  REQUIRE(index > 0);

  // With nothing written, the read is held for its whole wait and then
  // answers the unchanged value at the same index: the agent really holds it.
  {
    const auto start = std::chrono::steady_clock::now();
    auto held = b.http().Get("/v1/kv/blocking/key?raw&index=" + std::to_string(index) + "&wait=1s");
    const auto held_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
    REQUIRE_MESSAGE(held.ok(), held.status().ToString());
    CHECK(held->status == 200);
    CHECK(held->body == "before");
    CHECK(IndexHeader(*held) == index);
    CHECK_MESSAGE(held_ms >= 900, "a read with ?index=" << index << "&wait=1s and no change answered after "
                                                        << held_ms << " ms");
  }

  // Now a 10 s blocking read, woken by a write on A.
  std::atomic<bool> returned{false};
  Result<cli::HttpResponse> woken = Status::Aborted("the blocking read did not run");
  std::chrono::steady_clock::time_point returned_at;
  auto reader_client = b.NewClient(30000);
  std::thread reader([&] {
    woken = reader_client->Get("/v1/kv/blocking/key?raw&index=" + std::to_string(index) + "&wait=10s");
    returned_at = std::chrono::steady_clock::now();
    returned = true;
  });
  // The read must be parked at B before A writes, otherwise an immediate
  // answer would pass for a wake-up. B exposes how many reads are waiting.
  Status parked = WaitFor("B to hold one blocking read", milliseconds(10000), [&](std::string& last_seen) {
    auto waiting = ScrapeMetric(b, "grapevine_kv_blocking_reads");
    if (!waiting.ok()) {
      last_seen = waiting.status().ToString();
      return false;
    }
    last_seen = std::to_string(*waiting) + " waiting";
    return *waiting >= 1;
  });
  CHECK_MESSAGE(parked.ok(), parked.ToString());
  CHECK_FALSE(returned.load());

  const auto write_at = std::chrono::steady_clock::now();
  Status put = Put(a.http(), "blocking/key", "after");
  CHECK_MESSAGE(put.ok(), put.ToString());
  reader.join();
  REQUIRE_MESSAGE(woken.ok(), woken.status().ToString());
  CHECK(woken->status == 200);
  CHECK(woken->body == "after");
  CHECK_MESSAGE(IndexHeader(*woken) > index, "X-Grapevine-Index " << IndexHeader(*woken) << " after index " << index);
  CHECK(returned_at >= write_at);
  const auto wake_ms = std::chrono::duration_cast<std::chrono::milliseconds>(returned_at - write_at).count();
  // (The new value and the higher index already prove it answered because of
  // the change: the 10 s timeout would answer "before" at `index`.)
  MESSAGE("blocking read on B answered " << wake_ms << " ms after the PUT on A started");
}

TEST_CASE("an SSE watch on agent B receives puts and deletes written on agent C") {
  Cluster cluster("watch");
  auto agents = cluster.StartCluster(3);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& b = *(*agents)[1];
  Agent& c = *(*agents)[2];

  struct Event {
    std::string name;
    nlohmann::json data;
  };
  std::mutex mu;
  std::vector<Event> events;
  std::atomic<bool> stop{false};
  Status stream_status;
  auto watch_client = b.NewClient(30000);
  std::thread watcher([&] {
    stream_status = watch_client->StreamEvents("/v1/watch?prefix=watch%2F", 20000,
                                               [&](std::string_view name, std::string_view data) {
                                                 std::lock_guard<std::mutex> lock(mu);
                                                 events.push_back({std::string(name),
                                                                   nlohmann::json::parse(data, nullptr, false)});
                                                 return !stop.load();
                                               });
  });
  auto find_event = [&](const std::string& name, const std::string& key) -> std::optional<Event> {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& event : events) {
      if (event.name == name && event.data.is_object() && event.data.value("key", "") == key) return event;
    }
    return std::nullopt;
  };
  auto event_summary = [&] {
    std::lock_guard<std::mutex> lock(mu);
    std::string out = std::to_string(events.size()) + " events:";
    for (const auto& event : events) out += " " + event.name + " " + event.data.dump();
    return out.substr(0, 2000);
  };
  // Stops the stream whatever happened: a local write gives the callback a
  // chance to return false.
  auto finish_watch = [&] {
    stop = true;
    Status ignored = Put(b.http(), "watch/zz-stop", "1");
    (void)ignored;
    watcher.join();
  };

  // The stream is open once a write on B itself shows up in it (writes made
  // before the watch registered are not replayed, so retry with new values).
  int probe = 0;
  Status open = WaitFor("the watch stream on B to carry a local write", milliseconds(15000),
                        [&](std::string& last_seen) {
                          if (find_event("put", "watch/probe")) return true;
                          Status put = Put(b.http(), "watch/probe", std::to_string(++probe));
                          last_seen = put.ok() ? event_summary() : put.ToString();
                          return false;
                        },
                        milliseconds(100));
  if (!open.ok()) finish_watch();
  REQUIRE_MESSAGE(open.ok(), open.ToString());

  REQUIRE(Put(c.http(), "watch/service/api", "10.0.0.7:8080").ok());
  Status got_put = WaitFor("B's watch to deliver the put written on C", kConvergeTimeout, [&](std::string& last_seen) {
    last_seen = event_summary();
    return find_event("put", "watch/service/api").has_value();
  });
  CHECK_MESSAGE(got_put.ok(), got_put.ToString());
  if (auto event = find_event("put", "watch/service/api")) {
    CHECK(event->data.value("value", "") == "10.0.0.7:8080");
    CHECK(event->data.value("origin", "") == c.node_id());
  }

  REQUIRE(Delete(c.http(), "watch/service/api").ok());
  Status got_delete = WaitFor("B's watch to deliver the delete made on C", kConvergeTimeout,
                              [&](std::string& last_seen) {
                                last_seen = event_summary();
                                return find_event("delete", "watch/service/api").has_value();
                              });
  CHECK_MESSAGE(got_delete.ok(), got_delete.ToString());

  // A key outside the prefix is not streamed.
  REQUIRE(Put(c.http(), "elsewhere/key", "x").ok());
  REQUIRE(WaitForValue({&b}, "elsewhere/key", std::string("x")).ok());
  finish_watch();
  CHECK_MESSAGE(stream_status.ok(), stream_status.ToString());
  CHECK_FALSE(find_event("put", "elsewhere/key").has_value());
}

TEST_CASE("CAS: a mismatch answers 409 and changes nothing; a match succeeds") {
  Cluster cluster("cas");
  auto agents = cluster.StartCluster(3);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& a = *(*agents)[0];
  Agent& b = *(*agents)[1];

  // cas=0: create only if absent.
  auto created = a.http().Request("PUT", "/v1/kv/cas/key?cas=0", "v1");
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  REQUIRE_MESSAGE(created->status == 200, created->body);
  auto entry = GetJson(a.http(), "/v1/kv/cas/key");
  REQUIRE_MESSAGE(entry.ok(), entry.status().ToString());
  const std::uint64_t version = (*entry)["version"].get<std::uint64_t>();
  REQUIRE(version > 0);

  auto count_conflicts = [&]() { return ScrapeMetricOrZero(a, "grapevine_http_responses_total", {{"status", "409"}}); };
  auto conflicts_before = count_conflicts();
  REQUIRE_MESSAGE(conflicts_before.ok(), conflicts_before.status().ToString());

  // Mismatches: a wrong version, and create-only on a key that exists.
  for (const std::string& cas : {std::to_string(version + 7), std::string("0")}) {
    auto mismatch = a.http().Request("PUT", "/v1/kv/cas/key?cas=" + cas, "clobbered");
    REQUIRE_MESSAGE(mismatch.ok(), mismatch.status().ToString());
    CHECK_MESSAGE(mismatch->status == 409, "cas=" << cas << " answered " << mismatch->status << " " << mismatch->body);
    auto error = nlohmann::json::parse(mismatch->body, nullptr, false);
    CHECK_MESSAGE((error.is_object() && error.contains("error") && error.contains("code")), mismatch->body);
  }
  auto delete_mismatch = a.http().Request("DELETE", "/v1/kv/cas/key?cas=" + std::to_string(version + 7));
  REQUIRE(delete_mismatch.ok());
  CHECK(delete_mismatch->status == 409);

  // Nothing changed: same value, same version.
  auto unchanged = GetJson(a.http(), "/v1/kv/cas/key");
  REQUIRE_MESSAGE(unchanged.ok(), unchanged.status().ToString());
  CHECK((*unchanged)["value"] == "v1");
  CHECK((*unchanged)["version"].get<std::uint64_t>() == version);
  auto conflicts_after = ScrapeMetric(a, "grapevine_http_responses_total", {{"status", "409"}});
  REQUIRE_MESSAGE(conflicts_after.ok(), conflicts_after.status().ToString());
  CHECK(*conflicts_after >= *conflicts_before + 3);

  // The matching version succeeds, and the new value replicates.
  auto matched = a.http().Request("PUT", "/v1/kv/cas/key?cas=" + std::to_string(version), "v2");
  REQUIRE_MESSAGE(matched.ok(), matched.status().ToString());
  CHECK_MESSAGE(matched->status == 200, matched->body);
  Status replicated = WaitForValue({&a, &b}, "cas/key", std::string("v2"));
  CHECK_MESSAGE(replicated.ok(), replicated.ToString());

  // The old version is now stale.
  auto stale = a.http().Request("PUT", "/v1/kv/cas/key?cas=" + std::to_string(version), "v3");
  REQUIRE(stale.ok());
  CHECK(stale->status == 409);
  auto still = GetRaw(a.http(), "cas/key");
  REQUIRE(still.ok());
  CHECK(*still == std::optional<std::string>("v2"));
}

}  // namespace
}  // namespace gv::integration
