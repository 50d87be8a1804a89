#include "daemon/kv_service.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <vector>

#include "fs/posix_file_system.h"
#include "tests/daemon/http_test_client.h"
#include "wire/delta_codec.h"

using namespace gv;
using namespace gv::daemon;
using gv::testing::BodyOf;
using gv::testing::Request;
using gv::testing::StatusOf;
using nlohmann::json;

namespace {

std::string HeaderOf(const std::string& response, std::string name) {
  std::string lower = response.substr(0, response.find("\r\n\r\n"));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t p = lower.find("\r\n" + name + ": ");
  if (p == std::string::npos) return "";
  p += name.size() + 4;
  return response.substr(p, response.find("\r\n", p) - p);
}

// One agent's local KV stack on a private loop: WAL on disk, store, HTTP.
struct KvFixture {
  std::string dir;
  uv_loop_t loop{};
  fs::PosixFileSystem posix;
  std::unique_ptr<wal::Wal> log;
  statestore::Store store{NodeId(0x1111), statestore::StoreLimits{}};
  std::unique_ptr<WalWriter> writer;
  std::unique_ptr<http::HttpServer> server;
  std::unique_ptr<KvService> kv;
  std::uint64_t fake_wall_ms = 1'700'000'000'000;
  int durable_deltas = 0;
  uv_async_t done{};

  KvFixture() {
    std::signal(SIGPIPE, SIG_IGN);
    dir = "/tmp/gv_kv_service_test_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    uv_loop_init(&loop);
    wal::WalOptions options;
    options.dir = dir + "/wal";
    options.segment_bytes = 8 << 20;
    options.max_record_bytes = statestore::kMaxEncodedDeltaBytes;
    options.prepare_segments_in_background = false;
    auto opened = wal::Wal::Open(posix, options, [](wal::Lsn, std::string_view) { return Status::Ok(); });
    REQUIRE_MESSAGE(opened.ok(), opened.status().ToString());
    log = std::move(*opened);
    writer = std::make_unique<WalWriter>(&loop, *log);
    server = std::make_unique<http::HttpServer>(&loop, http::HttpServerOptions{});
    kv = std::make_unique<KvService>(
        &loop, store, *writer, [this] { return fake_wall_ms++; },
        [this](const statestore::Delta&, const std::string&) { ++durable_deltas; });
    kv->RegisterRoutes(*server);
    // Test-only probe of server-side state, so the client can order its steps
    // on facts rather than sleeps.
    server->Route("GET", "/test/blocking", [this](http::Request&, http::Responder r) {
      r.Finish(http::Response::Json(200, std::to_string(kv->metrics().blocking_reads)));
    });
    server->Route("GET", "/test/deltas", [this](http::Request&, http::Responder r) {
      r.Finish(http::Response::Json(200, std::to_string(durable_deltas)));
    });
    // Blocks the loop thread until the client releases it (bounded), so the
    // requests the client sends meanwhile are all ready when the loop polls
    // again: they are read in one loop iteration.
    server->Route("GET", "/test/hold", [this](http::Request&, http::Responder r) {
      holding = true;
      for (int i = 0; i < 5000 && !released; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      r.Finish(http::Response::Json(200, released ? "\"released\"" : "\"timed out\""));
    });
    REQUIRE(server->Listen("127.0.0.1:0").ok());
  }
  std::atomic<bool> holding{false};
  std::atomic<bool> released{false};

  void Run(const std::function<void(int port)>& client) {
    done.data = this;
    uv_async_init(&loop, &done, [](uv_async_t* a) {
      auto* f = static_cast<KvFixture*>(a->data);
      f->kv->Close([f] {
        f->server->Close([f] { f->writer->Close([] {}); });
      });
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    std::thread t([&] {
      client(server->port());
      uv_async_send(&done);
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    t.join();
    CHECK(uv_loop_close(&loop) == 0);
    server.reset();
    REQUIRE(log->Close().ok());
  }

  ~KvFixture() { std::filesystem::remove_all(dir); }
};

}  // namespace

TEST_CASE("kv api over real HTTP: writes, reads, CAS, limits, blocking reads, watch, and the WAL holds it all") {
  KvFixture f;
  std::atomic<bool> watch_ok{false};
  f.Run([&](int port) {
    // Put and read back.
    std::string put = Request(port, "PUT", "/v1/kv/config/a", "1");
    REQUIRE(StatusOf(put) == 200);
    json put_body = json::parse(BodyOf(put));
    const std::uint64_t v1 = put_body["version"];
    CHECK(v1 >= 1);
    CHECK(put_body["origin"] == "0000000000001111");

    std::string get = Request(port, "GET", "/v1/kv/config/a");
    REQUIRE(StatusOf(get) == 200);
    json entry = json::parse(BodyOf(get));
    CHECK(entry["value"] == "1");
    CHECK(entry["version"] == v1);
    CHECK(entry["conflict"] == false);
    CHECK(std::stoull(HeaderOf(get, "X-Grapevine-Index")) >= v1);
    CHECK(BodyOf(Request(port, "GET", "/v1/kv/config/a?raw")) == "1");
    CHECK(StatusOf(Request(port, "GET", "/v1/kv/config/nope")) == 404);

    // Binary values come back base64.
    REQUIRE(StatusOf(Request(port, "PUT", "/v1/kv/config/bin", std::string("\xff\x00\x01", 3))) == 200);
    json bin = json::parse(BodyOf(Request(port, "GET", "/v1/kv/config/bin")));
    CHECK(bin["encoding"] == "base64");
    CHECK(bin["value"] == "/wAB");

    // Prefix reads.
    json all = json::parse(BodyOf(Request(port, "GET", "/v1/kv/config/?recurse")));
    CHECK(all.size() == 2);
    json keys = json::parse(BodyOf(Request(port, "GET", "/v1/kv/config/?keys")));
    CHECK(keys == json::array({"config/a", "config/bin"}));

    // Compare-and-set.
    CHECK(StatusOf(Request(port, "PUT", "/v1/kv/config/a?cas=0", "x")) == 409);
    std::string cas_ok = Request(port, "PUT", "/v1/kv/config/a?cas=" + std::to_string(v1), "2");
    REQUIRE(StatusOf(cas_ok) == 200);
    std::string stale = Request(port, "PUT", "/v1/kv/config/a?cas=" + std::to_string(v1), "3");
    CHECK(StatusOf(stale) == 409);
    CHECK(json::parse(BodyOf(stale))["code"] == "cas_mismatch");
    CHECK(StatusOf(Request(port, "PUT", "/v1/kv/config/new?cas=0", "n")) == 200);
    CHECK(StatusOf(Request(port, "PUT", "/v1/kv/config/a?cas=abc", "x")) == 400);

    // Limits and bad input: JSON errors, nothing written.
    std::string big = Request(port, "PUT", "/v1/kv/config/big", std::string(64 * 1024 + 1, 'v'));
    CHECK(StatusOf(big) == 413);
    CHECK(json::parse(BodyOf(big))["code"] == "too_large");
    std::string long_key = Request(port, "PUT", "/v1/kv/" + std::string(1025, 'k'), "v");
    CHECK((StatusOf(long_key) == 400 || StatusOf(long_key) == 413));
    CHECK(StatusOf(Request(port, "PUT", "/v1/kv/", "v")) == 400);
    CHECK(StatusOf(Request(port, "GET", "/v1/kv/config/a?index=1&wait=forever")) == 400);
    CHECK(StatusOf(Request(port, "GET", "/v1/kv/config/big")) == 404);

    // A blocking read wakes on a change to its key.
    const std::string index = HeaderOf(Request(port, "GET", "/v1/kv/config/a"), "X-Grapevine-Index");
    std::string woken;
    std::thread waiter([&] { woken = Request(port, "GET", "/v1/kv/config/a?index=" + index + "&wait=30s"); });
    bool registered = false;
    for (int i = 0; i < 500 && !registered; ++i) {
      registered = BodyOf(Request(port, "GET", "/test/blocking")) == "1";
      if (!registered) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    CHECK(registered);
    REQUIRE(StatusOf(Request(port, "PUT", "/v1/kv/config/other", "o")) == 200);  // not its key: keeps waiting
    CHECK(BodyOf(Request(port, "GET", "/test/blocking")) == "1");
    REQUIRE(StatusOf(Request(port, "PUT", "/v1/kv/config/a", "woke")) == 200);
    waiter.join();
    REQUIRE_MESSAGE(StatusOf(woken) == 200, woken);
    CHECK(json::parse(BodyOf(woken))["value"] == "woke");
    CHECK(std::stoull(HeaderOf(woken, "X-Grapevine-Index")) > std::stoull(index));

    // An SSE watch sees a put and a delete under its prefix.
    int fd = gv::testing::ConnectLoopback(port);
    REQUIRE(fd >= 0);
    REQUIRE(gv::testing::SendAll(fd, "GET /v1/watch?prefix=config/ HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string stream;
    char buf[4096];
    auto read_until = [&](const std::string& needle) {
      for (int i = 0; i < 200 && stream.find(needle) == std::string::npos; ++i) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        stream.append(buf, static_cast<std::size_t>(n));
      }
      return stream.find(needle) != std::string::npos;
    };
    CHECK(read_until(": watching prefix 'config/'"));
    REQUIRE(StatusOf(Request(port, "PUT", "/v1/kv/config/watched", "w")) == 200);
    REQUIRE(StatusOf(Request(port, "PUT", "/v1/kv/elsewhere/x", "e")) == 200);
    REQUIRE(StatusOf(Request(port, "DELETE", "/v1/kv/config/bin")) == 200);
    CHECK(read_until("\"key\":\"config/watched\""));
    CHECK(read_until("event: delete"));
    CHECK(stream.find("elsewhere") == std::string::npos);
    watch_ok = stream.find("event: put") != std::string::npos;
    ::close(fd);

    // Recursive delete.
    std::string deleted = Request(port, "DELETE", "/v1/kv/config/?recurse");
    REQUIRE(StatusOf(deleted) == 200);
    CHECK(json::parse(BodyOf(deleted))["deleted"] == 4);
    CHECK(StatusOf(Request(port, "GET", "/v1/kv/config/?recurse")) == 404);
    CHECK(StatusOf(Request(port, "GET", "/v1/kv/elsewhere/x")) == 200);
  });
  CHECK(watch_ok);
  CHECK(f.kv->metrics().cas_conflicts == 2);

  // Every acknowledged write is in the WAL: replaying it into a fresh store
  // reproduces the served state exactly.
  statestore::Store replayed(NodeId(0x1111), statestore::StoreLimits{});
  wal::WalOptions options;
  options.dir = f.dir + "/wal";
  options.segment_bytes = 8 << 20;
  options.max_record_bytes = statestore::kMaxEncodedDeltaBytes;
  options.prepare_segments_in_background = false;
  int records = 0;
  auto reopened = wal::Wal::Open(f.posix, options, [&](wal::Lsn, std::string_view payload) {
    auto delta = wire::DecodeDelta(payload);
    if (!delta.ok()) return delta.status();
    ++records;
    auto result = replayed.Apply(*delta, 0);
    return result.status == statestore::ApplyStatus::kApplied ? Status::Ok() : result.error;
  });
  REQUIRE(reopened.ok());
  CHECK(records == f.durable_deltas);
  CHECK(replayed.Digest() == f.store.Digest());
  REQUIRE((*reopened)->Close().ok());
}

TEST_CASE("kv writes read in one loop iteration become one delta; a refused one fails alone") {
  KvFixture f;
  f.Run([&](int port) {
    // Holds the loop, queues one PUT per connection in the kernel, releases:
    // the loop then reads them all in one iteration. Returns the responses
    // in the order of `targets`; the bodies are "value<i>".
    auto burst = [&](const std::vector<std::string>& targets) {
      f.released = false;
      f.holding = false;
      std::string hold_response;
      std::thread hold([&] { hold_response = Request(port, "GET", "/test/hold"); });
      for (int i = 0; i < 5000 && !f.holding; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::vector<int> fds;
      for (std::size_t i = 0; i < targets.size(); ++i) {
        int fd = gv::testing::ConnectLoopback(port);
        const std::string body = "value" + std::to_string(i);
        if (fd >= 0) {
          gv::testing::SendAll(fd, "PUT " + targets[i] + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" +
                                       "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
        }
        fds.push_back(fd);
      }
      f.released = true;
      hold.join();
      CHECK(BodyOf(hold_response) == "\"released\"");
      std::vector<std::string> responses;
      for (int fd : fds) {
        std::string out;
        char buf[4096];
        for (ssize_t n; fd >= 0 && (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
        if (fd >= 0) ::close(fd);
        responses.push_back(out);
      }
      return responses;
    };
    auto deltas = [&] { return std::stoi(BodyOf(Request(port, "GET", "/test/deltas"))); };

    std::string first = Request(port, "PUT", "/v1/kv/g/existing", "v");
    REQUIRE(StatusOf(first) == 200);
    const std::uint64_t existing_version = json::parse(BodyOf(first))["version"];

    // Three writes and a ?cas mismatch: the three share one delta (one HLC);
    // the mismatch fails alone with its own 409 and changes nothing.
    int before = deltas();
    std::vector<std::string> r = burst({"/v1/kv/g/a", "/v1/kv/g/b", "/v1/kv/g/c",
                                        "/v1/kv/g/existing?cas=" + std::to_string(existing_version + 100)});
    std::set<std::string> hlcs;
    for (int i = 0; i < 3; ++i) {
      REQUIRE_MESSAGE(StatusOf(r[i]) == 200, r[i]);
      hlcs.insert(json::parse(BodyOf(r[i]))["hlc"].get<std::string>());
      CHECK(json::parse(BodyOf(Request(port, "GET", "/v1/kv/g/" + std::string(1, "abc"[i]))))["value"] ==
            "value" + std::to_string(i));
    }
    CHECK(hlcs.size() == 1);
    CHECK(StatusOf(r[3]) == 409);
    CHECK(json::parse(BodyOf(Request(port, "GET", "/v1/kv/g/existing")))["value"] == "v");
    CHECK(deltas() == before + 1);

    // Two writes of one key never share a delta: the second sees the first
    // (?cas=0 on both: exactly one wins).
    before = deltas();
    r = burst({"/v1/kv/g/dup?cas=0", "/v1/kv/g/dup?cas=0"});
    const int winner = StatusOf(r[0]) == 200 ? 0 : 1;
    CHECK(StatusOf(r[winner]) == 200);
    CHECK(StatusOf(r[1 - winner]) == 409);
    CHECK(json::parse(BodyOf(Request(port, "GET", "/v1/kv/g/dup")))["value"] == "value" + std::to_string(winner));
    CHECK(deltas() == before + 1);
  });
  CHECK(f.kv->metrics().writes == 5);
  CHECK(f.kv->metrics().cas_conflicts == 2);
  CHECK(f.kv->metrics().write_groups == 3);    // g/existing; a+b+c; the winning g/dup
  CHECK(f.kv->metrics().grouped_writes == 5);
}
