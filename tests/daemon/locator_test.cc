// Locator (daemon/locator.h) over a real uv loop: three or four Locators in
// one process whose broadcast / send_to_peer hooks deliver to each other
// through a tiny in-test fan-out (every broadcast reaches every live node,
// asynchronously, as Plumtree would), each with its own HTTP server driven by
// the blocking HttpClient from another thread.
//
// The last case drives the same API with this build's grapevine binary.
//
// Waiting is on facts, never on sleeps: a client waits with the API's own
// blocking reads (?index&wait) or by running a check on the loop.
#include "daemon/locator.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <sys/wait.h>

#include <csignal>
#include <cstdio>
#include <tuple>
#include <deque>
#include <future>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon/http_client.h"

using namespace gv;
using namespace gv::daemon;
using gv::cli::HttpClient;
using gv::cli::HttpResponse;
using nlohmann::json;

namespace {

constexpr std::uint64_t kSuspicionTimeoutMs = 300;

std::uint64_t RealWallMs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

struct Node {
  NodeId id;
  std::string name;
  std::unique_ptr<Locator> locator;
  std::unique_ptr<http::HttpServer> server;
  bool down = false;  // killed: sends and receives nothing
  bool deaf = false;  // receives no broadcasts (only tables)
  int port = 0;
};

class Cluster {
 public:
  explicit Cluster(int count, std::uint64_t state_sync_interval_ms = 30000)
      : state_sync_interval_ms_(state_sync_interval_ms) {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop_);
    uv_async_init(&loop_, &wake_, [](uv_async_t* a) { static_cast<Cluster*>(a->data)->Drain(); });
    wake_.data = this;
    for (int i = 0; i < count; ++i) Add();
  }

  // Creates (not starts) a node; on the loop thread or before Run.
  Node& Add() {
    auto node = std::make_unique<Node>();
    const std::size_t index = nodes_.size();
    node->id = NodeId(0x100 + index);
    node->name = "node" + std::to_string(index);
    LocatorHost host;
    host.self = node->id;
    host.name = node->name;
    host.peer_address = "127.0.0." + std::to_string(index + 1) + ":7400";
    host.http_address = "127.0.0.1:0";
    host.dns_address = "127.0.0.1:0";
    host.tags = {{"index", std::to_string(index)}, {"role", index % 2 == 0 ? "even" : "odd"}};
    host.broadcast = [this, index](std::string payload) { Fanout(index, std::move(payload)); };
    host.send_to_peer = [this, index](NodeId peer, std::string data) { SendTo(index, peer, std::move(data)); };
    host.wall_ms = RealWallMs;
    LocatorOptions options;
    options.suspicion_timeout_ms = kSuspicionTimeoutMs;
    options.check_interval_ms = 20;
    options.state_sync_interval_ms = state_sync_interval_ms_;
    node->locator = std::make_unique<Locator>(&loop_, std::move(host), options);
    node->server = std::make_unique<http::HttpServer>(&loop_, http::HttpServerOptions{});
    node->locator->RegisterRoutes(*node->server);
    REQUIRE(node->server->Listen("127.0.0.1:0").ok());
    node->port = node->server->port();
    nodes_.push_back(std::move(node));
    return *nodes_.back();
  }

  Node& node(std::size_t i) { return *nodes_[i]; }
  std::size_t size() const { return nodes_.size(); }

  // Runs `fn` on the loop thread and returns its result (from the client thread).
  template <typename F>
  auto Call(F fn) -> decltype(fn()) {
    using R = decltype(fn());
    auto promise = std::make_shared<std::promise<R>>();
    auto future = promise->get_future();
    Post([promise, fn]() mutable {
      if constexpr (std::is_void_v<R>) {
        fn();
        promise->set_value();
      } else {
        promise->set_value(fn());
      }
    });
    return future.get();
  }

  // Runs the loop until `client` (on its own thread) returns, then closes everything.
  void Run(const std::function<void()>& client) {
    std::thread t([&] {
      client();
      Post([this] { CloseAll(); });
    });
    uv_run(&loop_, UV_RUN_DEFAULT);
    t.join();
    CHECK(uv_loop_close(&loop_) == 0);
  }

  void Connect(std::size_t a, std::size_t b) {
    nodes_[a]->locator->OnNeighborUp(nodes_[b]->id);
    nodes_[b]->locator->OnNeighborUp(nodes_[a]->id);
  }

  std::uint64_t broadcasts = 0;

 private:
  void Post(std::function<void()> fn) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      commands_.push_back(std::move(fn));
    }
    uv_async_send(&wake_);
  }

  void Drain() {
    for (;;) {
      std::function<void()> fn;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (commands_.empty()) return;
        fn = std::move(commands_.front());
        commands_.pop_front();
      }
      fn();
    }
  }

  // Deliveries go through the queue too: a hook never re-enters a Locator.
  void Fanout(std::size_t from, std::string payload) {
    ++broadcasts;
    if (nodes_[from]->down) return;
    auto shared = std::make_shared<std::string>(std::move(payload));
    const NodeId origin = nodes_[from]->id;
    Post([this, from, shared, origin] {
      for (std::size_t i = 0; i < nodes_.size(); ++i) {
        if (i == from || nodes_[i]->down || nodes_[i]->deaf || closing_) continue;
        nodes_[i]->locator->OnBroadcast(*shared, origin);
      }
    });
  }

  void SendTo(std::size_t from, NodeId peer, std::string data) {
    if (nodes_[from]->down) return;
    auto shared = std::make_shared<std::string>(std::move(data));
    const NodeId sender = nodes_[from]->id;
    Post([this, peer, shared, sender] {
      for (auto& node : nodes_) {
        if (node->id == peer && !node->down && !closing_) node->locator->OnPeerState(sender, *shared);
      }
    });
  }

  void CloseAll() {
    closing_ = true;
    for (auto& node : nodes_) {
      Node* n = node.get();
      n->locator->Close([this, n] { n->server->Close([this] { OneClosed(); }); });
    }
  }

  void OneClosed() {
    if (++closed_ == nodes_.size()) uv_close(reinterpret_cast<uv_handle_t*>(&wake_), nullptr);
  }

  std::uint64_t state_sync_interval_ms_;
  uv_loop_t loop_{};
  uv_async_t wake_{};
  std::mutex mu_;
  std::deque<std::function<void()>> commands_;
  std::vector<std::unique_ptr<Node>> nodes_;
  bool closing_ = false;
  std::size_t closed_ = 0;
};

std::string Addr(const Node& n) { return "127.0.0.1:" + std::to_string(n.port); }

HttpResponse Do(const Node& n, const std::string& method, const std::string& target, const std::string& body = "") {
  HttpClient client(Addr(n), gv::cli::HttpClientOptions{30000, 64u << 20});
  auto r = client.Request(method, target, body);
  REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  return *r;
}

json JsonOf(const HttpResponse& r) {
  json j = json::parse(r.body, nullptr, false);
  REQUIRE_MESSAGE(!j.is_discarded(), r.body);
  return j;
}

std::uint64_t IndexOf(const HttpResponse& r) { return std::stoull(std::string(r.Header("x-grapevine-index"))); }

// Reads `target` with ?index until `done(body)` holds; each round waits for
// a change (at most `rounds` changes or ~10 s without one).
json WaitFor(const Node& n, const std::string& target, const std::function<bool(const json&)>& done, int rounds = 50) {
  HttpResponse r = Do(n, "GET", target);
  for (int i = 0; i < rounds; ++i) {
    json j = JsonOf(r);
    if (done(j)) return j;
    const char sep = target.find('?') == std::string::npos ? '?' : '&';
    r = Do(n, "GET", target + sep + "index=" + std::to_string(IndexOf(r)) + "&wait=10s");
  }
  FAIL("condition not reached on " << target << ": " << r.body);
  return {};
}

json MemberNamed(const json& members, const std::string& name) {
  for (const auto& m : members) {
    if (m["name"] == name) return m;
  }
  return json();
}

std::string StatusOfMember(const json& members, const std::string& name) {
  json m = MemberNamed(members, name);
  return m.is_object() ? m["status"].get<std::string>() : "";
}

}  // namespace

TEST_CASE("locator: members, services, TTL, failure detection, refutation and leave across three nodes") {
  Cluster c(3);
  c.Run([&] {
    c.Call([&] {
      for (std::size_t i = 0; i < c.size(); ++i) c.node(i).locator->Start();
      c.Connect(0, 1);
      c.Connect(1, 2);
    });
    // Every node lists every member alive, with its tags.
    for (std::size_t i = 0; i < 3; ++i) {
      json members = WaitFor(c.node(i), "/v1/members", [](const json& m) { return m.size() == 3; });
      for (const auto& m : members) {
        CHECK(m["status"] == "alive");
        CHECK(m.contains("incarnation"));
      }
      CHECK(MemberNamed(members, "node1")["tags"] == json{{"index", "1"}, {"role", "odd"}});
      CHECK(MemberNamed(members, "node2")["address"] == "127.0.0.3:7400");
    }
    json odd = JsonOf(Do(c.node(0), "GET", "/v1/members?tag=role%3Dodd"));
    REQUIRE(odd.size() == 1);
    CHECK(odd[0]["name"] == "node1");
    CHECK(Do(c.node(0), "GET", "/v1/members?status=bogus").status == 400);

    // A service registered at node 2 is answered by node 0.
    HttpResponse reg = Do(c.node(2), "PUT", "/v1/services",
                          R"({"id":"web-2","name":"web","address":"10.0.0.2","port":8080,"tags":["v1"],)"
                          R"("meta":{"zone":"b"},"ttl":"10s"})");
    REQUIRE_MESSAGE(reg.status == 200, reg.body);
    json web = WaitFor(c.node(0), "/v1/services/web", [](const json& j) { return j.size() == 1; });
    CHECK(web[0]["id"] == "web-2");
    CHECK(web[0]["node_name"] == "node2");
    CHECK(web[0]["node"] == NodeId(0x102).ToString());
    CHECK(web[0]["address"] == "10.0.0.2");
    CHECK(web[0]["port"] == 8080);
    CHECK(web[0]["tags"] == json::array({"v1"}));
    CHECK(web[0]["meta"] == json{{"zone", "b"}});
    CHECK(web[0]["status"] == "passing");
    CHECK(JsonOf(Do(c.node(0), "GET", "/v1/services")) == json::array({"web"}));
    auto answers = c.Call([&] { return c.node(1).locator->HealthyInstances("web"); });
    REQUIRE(answers.size() == 1);
    CHECK(answers[0].node_name == "node2");
    CHECK(answers[0].address == "10.0.0.2");
    CHECK(answers[0].port == 8080);
    CHECK(c.Call([&] { return c.node(0).locator->NodeAddress("node2"); }) == std::optional<std::string>("127.0.0.3"));
    CHECK(c.Call([&] { return c.node(0).locator->NodeAddress("nobody"); }) == std::nullopt);

    // A blocking read on node 0 wakes when a second instance appears.
    const HttpResponse before = Do(c.node(0), "GET", "/v1/services/web");
    std::future<HttpResponse> waiting = std::async(std::launch::async, [&] {
      return Do(c.node(0), "GET", "/v1/services/web?index=" + std::to_string(IndexOf(before)) + "&wait=20s");
    });
    // A short TTL that nobody refreshes: passing, then critical.
    REQUIRE(Do(c.node(1), "PUT", "/v1/services", R"({"id":"web-1","name":"web","address":"10.0.0.1","port":80,"ttl":"200ms"})").status == 200);
    HttpResponse woken = waiting.get();
    CHECK(woken.status == 200);
    CHECK(IndexOf(woken) > IndexOf(before));
    CHECK(JsonOf(woken).size() == 2);
    json lapsed = WaitFor(c.node(0), "/v1/services/web?all", [](const json& j) {
      for (const auto& s : j) {
        if (s["id"] == "web-1" && s["status"] == "critical") return true;
      }
      return false;
    });
    CHECK(lapsed.size() == 2);
    // Healthy answers leave it out.
    json healthy = JsonOf(Do(c.node(0), "GET", "/v1/services/web"));
    REQUIRE(healthy.size() == 1);
    CHECK(healthy[0]["id"] == "web-2");
    // A pass brings it back.
    REQUIRE(Do(c.node(1), "PUT", "/v1/services/web-1/pass").status == 200);
    WaitFor(c.node(0), "/v1/services/web", [](const json& j) { return j.size() == 2; });
    // Re-registered without a TTL: healthy while node 1 lives.
    REQUIRE(Do(c.node(1), "PUT", "/v1/services", R"({"id":"web-1","name":"web","address":"10.0.0.1","port":80})").status == 200);

    // A false suspicion (node 0 loses its link to node 1, which is alive)
    // is refuted: node 1 stays alive everywhere with a higher incarnation.
    const std::uint64_t incarnation =
        MemberNamed(JsonOf(Do(c.node(2), "GET", "/v1/members")), "node1")["incarnation"].get<std::uint64_t>();
    c.Call([&] { c.node(0).locator->OnPeerFailed(c.node(1).id); });
    WaitFor(c.node(2), "/v1/members", [&](const json& m) {
      json n1 = MemberNamed(m, "node1");
      return n1["status"] == "alive" && n1["incarnation"].get<std::uint64_t>() > incarnation;
    });
    // Past the suspicion timeout, on every node: still alive.
    std::this_thread::sleep_for(std::chrono::milliseconds(2 * kSuspicionTimeoutMs));  // the absence of a failure
    for (std::size_t i = 0; i < 3; ++i) CHECK(StatusOfMember(JsonOf(Do(c.node(i), "GET", "/v1/members")), "node1") == "alive");
    CHECK(c.Call([&] { return c.node(1).locator->members().metrics().refutations; }) == 1);

    // node 2 dies: its neighbour (node 1) reports it; everyone declares it
    // failed after the timeout, and its service turns critical.
    c.Call([&] {
      c.node(2).down = true;
      c.node(1).locator->OnPeerFailed(c.node(2).id);
    });
    for (std::size_t i = 0; i < 2; ++i) {
      WaitFor(c.node(i), "/v1/members", [](const json& m) { return StatusOfMember(m, "node2") == "failed"; });
    }
    json after_failure = WaitFor(c.node(0), "/v1/services/web?all", [](const json& j) {
      for (const auto& s : j) {
        if (s["id"] == "web-2") return s["status"] == "critical";
      }
      return false;
    });
    CHECK(c.Call([&] { return c.node(0).locator->HealthyInstances("web").size(); }) == 1);
    CHECK(c.Call([&] { return c.node(0).locator->NodeAddress("node2"); }) == std::nullopt);

    // node 1 leaves gracefully: "left" on node 0, its service gone.
    c.Call([&] { c.node(1).locator->Leave(); });
    WaitFor(c.node(0), "/v1/members", [](const json& m) { return StatusOfMember(m, "node1") == "left"; });
    json remaining = JsonOf(Do(c.node(0), "GET", "/v1/services/web?all"));
    REQUIRE(remaining.size() == 1);
    CHECK(remaining[0]["id"] == "web-2");

    const std::string metrics = c.Call([&] {
      PrometheusWriter w;
      c.node(0).locator->WriteMetrics(w);
      return w.text();
    });
    CHECK(metrics.find("grapevine_members{status=\"alive\"} 1") != std::string::npos);
    CHECK(metrics.find("grapevine_members{status=\"failed\"} 1") != std::string::npos);
    CHECK(metrics.find("grapevine_members{status=\"left\"} 1") != std::string::npos);
    CHECK(metrics.find("grapevine_services{status=\"critical\"} 1") != std::string::npos);
  });
}

TEST_CASE("locator: a late joiner learns every member and service from its first neighbour's table") {
  Cluster c(2);
  c.Run([&] {
    c.Call([&] {
      c.node(0).locator->Start();
      c.node(1).locator->Start();
      c.Connect(0, 1);
    });
    REQUIRE(Do(c.node(0), "PUT", "/v1/services", R"({"name":"db","address":"fd00::7","port":5432})").status == 200);
    WaitFor(c.node(1), "/v1/services/db", [](const json& j) { return j.size() == 1; });
    // The new node's start broadcast reaches everyone in this fan-out; what it
    // must learn by table is what was said before it existed.
    c.Call([&] {
      Node& late = c.Add();
      late.locator->Start();
      c.Connect(2, 1);
    });
    json members = WaitFor(c.node(2), "/v1/members", [](const json& m) { return m.size() == 3; });
    CHECK(StatusOfMember(members, "node0") == "alive");
    json db = WaitFor(c.node(2), "/v1/services/db", [](const json& j) { return j.size() == 1; });
    CHECK(db[0]["address"] == "fd00::7");
    CHECK(db[0]["id"] == "db");  // id defaults to the name
    CHECK(db[0]["node_name"] == "node0");
    WaitFor(c.node(0), "/v1/members", [](const json& m) { return m.size() == 3; });
  });
}

TEST_CASE("locator: a node that missed the broadcasts catches up through the periodic table exchange") {
  Cluster c(2, /*state_sync_interval_ms=*/200);
  c.Run([&] {
    c.Call([&] {
      c.node(0).locator->Start();
      c.node(1).locator->Start();
      c.Connect(0, 1);
      c.node(1).deaf = true;
    });
    REQUIRE(Do(c.node(0), "PUT", "/v1/services", R"({"name":"queue","address":"10.9.9.9","port":5672})").status == 200);
    json queue = WaitFor(c.node(1), "/v1/services/queue", [](const json& j) { return j.size() == 1; });
    CHECK(queue[0]["node_name"] == "node0");
    CHECK(c.Call([&] { return c.node(1).locator->metrics().tables_received; }) >= 2);  // NeighborUp + sync
  });
}

TEST_CASE("locator: bad requests answer JSON errors and change nothing") {
  Cluster c(1);
  c.Run([&] {
    c.Call([&] { c.node(0).locator->Start(); });
    const Node& n = c.node(0);
    const std::uint64_t index = IndexOf(Do(n, "GET", "/v1/services"));
    struct Case {
      std::string body;
      int status;
    };
    const std::vector<Case> cases = {
        {"not json", 400},
        {"[]", 400},
        {R"({"address":"10.0.0.1"})", 400},                                  // no name
        {R"({"name":"Web"})", 400},                                          // not a DNS label
        {R"({"name":"web","id":"a/b"})", 400},                               // id with '/'
        {R"({"name":"web","address":"example.com"})", 400},                  // not an IP literal
        {R"({"name":"web","address":"10.0.0.1","port":70000})", 400},
        {R"({"name":"web","address":"10.0.0.1","port":"80"})", 400},
        {R"({"name":"web","address":"10.0.0.1","tags":"a"})", 400},
        {R"({"name":"web","address":"10.0.0.1","meta":{"a":1}})", 400},
        {R"({"name":"web","address":"10.0.0.1","ttl":"soon"})", 400},
        {R"({"name":"web","address":"10.0.0.1","ttl":"25h"})", 413},
        {R"({"name":"web","address":"10.0.0.1","colour":"red"})", 400},
        {R"({"name":"web","address":"10.0.0.1","meta":{"k":")" + std::string(5000, 'v') + R"("}})", 413},
    };
    for (const Case& bad : cases) {
      HttpResponse r = Do(n, "PUT", "/v1/services", bad.body);
      CHECK_MESSAGE(r.status == bad.status, bad.body.substr(0, 80) << " -> " << r.status << " " << r.body);
      json j = JsonOf(r);
      CHECK(j.contains("error"));
      CHECK(j.contains("code"));
    }
    CHECK(Do(n, "PUT", "/v1/services/nope/pass").status == 404);
    CHECK(Do(n, "DELETE", "/v1/services/nope").status == 404);
    CHECK(Do(n, "PUT", "/v1/services/nope").status == 404);
    CHECK(Do(n, "GET", "/v1/services/Not_A_Name").status == 400);
    CHECK(Do(n, "GET", "/v1/services/web?index=x").status == 400);
    CHECK(Do(n, "GET", "/v1/members?tag=novalue").status == 400);
    CHECK(IndexOf(Do(n, "GET", "/v1/services")) == index);
    CHECK(JsonOf(Do(n, "GET", "/v1/services")) == json::array());
    // No TTL: healthy while the owner lives; deregister removes it.
    REQUIRE(Do(n, "PUT", "/v1/services", R"({"name":"cache","port":6379})").status == 200);
    json cache = JsonOf(Do(n, "GET", "/v1/services/cache"));
    REQUIRE(cache.size() == 1);
    CHECK(cache[0]["address"] == "127.0.0.1");  // the agent's own address by default
    REQUIRE(Do(n, "DELETE", "/v1/services/cache").status == 200);
    CHECK(JsonOf(Do(n, "GET", "/v1/services/cache")) == json::array());
    CHECK(JsonOf(Do(n, "GET", "/v1/services")) == json::array());
  });
}

namespace {

// Runs the grapevine binary of this build with `args`; returns (exit code, stdout).
std::pair<int, std::string> RunCli(const std::string& args) {
  const std::string command = std::string(GV_GRAPEVINE_BINARY) + " " + args + " 2>/dev/null";
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("locator: the CLI — services register|pass|list|get|deregister and members with filters") {
  Cluster c(2);
  c.Run([&] {
    c.Call([&] {
      c.node(0).locator->Start();
      c.node(1).locator->Start();
      c.Connect(0, 1);
    });
    const std::string http0 = " --http " + Addr(c.node(0));
    const std::string http1 = " --http " + Addr(c.node(1));
    WaitFor(c.node(0), "/v1/members", [](const json& m) { return m.size() == 2; });

    auto [rc, out] = RunCli("services register --name api --id api-1 --address 10.1.1.1 --port 9000 --tag blue "
                            "--meta owner=team-a --ttl 30s" + http1);
    CHECK(rc == 0);
    CHECK(out == "registered api-1 (api)\n");
    WaitFor(c.node(0), "/v1/services/api", [](const json& j) { return j.size() == 1; });
    std::tie(rc, out) = RunCli("services get api --json" + http0);
    REQUIRE(rc == 0);
    json got = json::parse(out);
    REQUIRE(got.size() == 1);
    CHECK(got[0]["meta"] == json{{"owner", "team-a"}});
    CHECK(got[0]["tags"] == json::array({"blue"}));
    std::tie(rc, out) = RunCli("services get api" + http0);
    CHECK(rc == 0);
    CHECK(out.find("api-1") != std::string::npos);
    CHECK(out.find("10.1.1.1") != std::string::npos);
    CHECK(out.find("passing") != std::string::npos);
    std::tie(rc, out) = RunCli("services list" + http0);
    CHECK(rc == 0);
    CHECK(out == "api\n");
    CHECK(RunCli("services pass api-1" + http1).first == 0);
    CHECK(RunCli("services pass api-1" + http0).first == 1);  // owned by node 1, not node 0
    CHECK(RunCli("services register --name Bad_Name" + http1).first == 1);
    CHECK(RunCli("services deregister api-1" + http1).first == 0);
    WaitFor(c.node(0), "/v1/services/api", [](const json& j) { return j.empty(); });

    std::tie(rc, out) = RunCli("members --json --status alive --tag role=even" + http0);
    REQUIRE(rc == 0);
    json even = json::parse(out);
    REQUIRE(even.size() == 1);
    CHECK(even[0]["name"] == "node0");
    std::tie(rc, out) = RunCli("members --json --tag role=odd --tag index=1" + http0);
    REQUIRE(rc == 0);
    CHECK(json::parse(out).size() == 1);
    std::tie(rc, out) = RunCli("members --json --tag role=odd --tag index=0" + http0);
    REQUIRE(rc == 0);
    CHECK(json::parse(out).empty());
    std::tie(rc, out) = RunCli("members" + http0);
    CHECK(rc == 0);
    CHECK(out.find("node1") != std::string::npos);
    CHECK(out.find("role=odd") != std::string::npos);
    CHECK(RunCli("members --tag novalue" + http0).first == 1);
  });
}
