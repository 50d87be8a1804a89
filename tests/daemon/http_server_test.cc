#include "daemon/http/server.h"

#include <doctest/doctest.h>
#include <uv.h>

#include <atomic>
#include <csignal>
#include <cctype>
#include <functional>
#include <thread>

#include "tests/daemon/http_test_client.h"

using namespace gv;
using namespace gv::http;
using gv::testing::BodyOf;
using gv::testing::StatusOf;

namespace {

// Runs a server on a private loop in this thread while `client` runs in
// another; when the client is done the server closes and the loop must end
// with no handle left open.
struct ServerFixture {
  uv_loop_t loop{};
  std::unique_ptr<HttpServer> server;
  uv_async_t done_async{};
  std::function<void()> on_client_done;

  explicit ServerFixture(HttpServerOptions options = {}) {
    std::signal(SIGPIPE, SIG_IGN);  // as the agent does: a peer's reset is an error value, not a signal
    uv_loop_init(&loop);
    server = std::make_unique<HttpServer>(&loop, options);
  }

  void Run(const std::function<void(int port)>& client) {
    REQUIRE(server->Listen("127.0.0.1:0").ok());
    int port = server->port();
    REQUIRE(port > 0);
    done_async.data = this;
    uv_async_init(&loop, &done_async, [](uv_async_t* a) {
      auto* self = static_cast<ServerFixture*>(a->data);
      if (self->on_client_done) self->on_client_done();
      self->server->Close([] {});
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    std::thread t([&] {
      client(port);
      uv_async_send(&done_async);
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    t.join();
    CHECK(uv_loop_close(&loop) == 0);  // no handle left open
    server.reset();
  }
};

}  // namespace

TEST_CASE("http server: routing, JSON errors, decoding and limits") {
  HttpServerOptions options;
  options.max_body_bytes = 1024;
  ServerFixture f(options);
  std::string seen_path;
  bool seen_raw = false;
  std::string seen_body;
  f.server->Route("GET", "/v1/status", [](Request&, Responder r) { r.Finish(Response::Json(200, "{\"ok\":true}")); });
  f.server->Route("GET", "/v1/kv/", [&](Request& req, Responder r) {
    seen_path = req.path;
    seen_raw = req.Has("raw");
    Response resp = Response::Text(200, "value");
    resp.headers.emplace_back("X-Grapevine-Index", "7");
    r.Finish(resp);
  });
  f.server->Route("PUT", "/v1/kv/", [&](Request& req, Responder r) {
    seen_body = req.body;
    r.Finish(Response::Json(200, "{}"));
  });
  f.Run([&](int port) {
    std::string ok = gv::testing::Request(port, "GET", "/v1/status");
    CHECK(StatusOf(ok) == 200);
    CHECK(BodyOf(ok) == "{\"ok\":true}");

    std::string kv = gv::testing::Request(port, "GET", "/v1/kv/a%2Fb?raw&x=1");
    CHECK(StatusOf(kv) == 200);
    std::string lower = kv;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK(lower.find("x-grapevine-index: 7") != std::string::npos);

    std::string unknown = gv::testing::Request(port, "GET", "/nope");
    CHECK(StatusOf(unknown) == 404);
    CHECK(BodyOf(unknown).find("\"code\":\"not_found\"") != std::string::npos);

    std::string wrong_method = gv::testing::Request(port, "DELETE", "/v1/status");
    CHECK(StatusOf(wrong_method) == 405);
    CHECK(BodyOf(wrong_method).find("\"code\":\"method_not_allowed\"") != std::string::npos);

    std::string bad_escape = gv::testing::Request(port, "GET", "/v1/kv/%zz");
    CHECK(StatusOf(bad_escape) == 400);
    CHECK(BodyOf(bad_escape).find("percent-encoding") != std::string::npos);

    std::string too_big = gv::testing::Request(port, "PUT", "/v1/kv/big", std::string(1025, 'x'));
    CHECK(StatusOf(too_big) == 413);
    CHECK(BodyOf(too_big).find("\"code\":\"too_large\"") != std::string::npos);

    std::string fits = gv::testing::Request(port, "PUT", "/v1/kv/fits", std::string(1024, 'y'));
    CHECK(StatusOf(fits) == 200);

    std::string garbage = gv::testing::RawExchange(port, "\x01\x02 garbage \xff\r\n\r\n");
    CHECK(StatusOf(garbage) != 200);
  });
  CHECK(seen_path == "/v1/kv/a/b");
  CHECK(seen_raw);
  CHECK(seen_body == std::string(1024, 'y'));
  CHECK(f.server == nullptr);
}

TEST_CASE("http server: a deferred answer and a stream reach the client") {
  ServerFixture f;
  uv_timer_t timer{};
  uv_timer_init(&f.loop, &timer);
  Responder deferred;
  Responder stream;
  int events_sent = 0;
  f.server->Route("GET", "/wait", [&](Request&, Responder r) {
    deferred = r;
    timer.data = &deferred;
    uv_timer_start(&timer, [](uv_timer_t* t) {
      static_cast<Responder*>(t->data)->Finish(Response::Json(200, "{\"woke\":true}"));
    }, 50, 0);
  });
  f.server->Route("GET", "/events", [&](Request&, Responder r) {
    stream = r;
    stream.StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    for (int i = 0; i < 3; ++i) {
      stream.Send("data: " + std::to_string(i) + "\n\n");
      ++events_sent;
    }
    stream.End();
  });
  f.on_client_done = [&] { uv_close(reinterpret_cast<uv_handle_t*>(&timer), nullptr); };
  f.Run([&](int port) {
    std::string waited = gv::testing::Request(port, "GET", "/wait");
    CHECK(StatusOf(waited) == 200);
    CHECK(BodyOf(waited) == "{\"woke\":true}");
    std::string events = gv::testing::Request(port, "GET", "/events");
    CHECK(StatusOf(events) == 200);
    CHECK(events.find("data: 0\n\n") != std::string::npos);
    CHECK(events.find("data: 2\n\n") != std::string::npos);
  });
  CHECK(events_sent == 3);
  CHECK_FALSE(deferred.alive());
}

TEST_CASE("http server: a stream whose client left is noticed and the server still closes") {
  ServerFixture f;
  uv_timer_t ticker{};
  uv_timer_init(&f.loop, &ticker);
  Responder stream;
  std::atomic<bool> client_gone{false};
  int sends_after_leave = 0;
  bool noticed = false;
  f.server->Route("GET", "/events", [&](Request&, Responder r) {
    stream = r;
    stream.StartStream(200, "text/event-stream");
    stream.Send("data: hello\n\n");
  });
  struct Ctx {
    Responder* stream;
    std::atomic<bool>* gone;
    int* sends;
    bool* noticed;
  } ctx{&stream, &client_gone, &sends_after_leave, &noticed};
  ticker.data = &ctx;
  f.server->Route("GET", "/start-ticking", [&](Request&, Responder r) {
    uv_timer_start(&ticker, [](uv_timer_t* t) {
      auto* c = static_cast<Ctx*>(t->data);
      if (!c->stream->alive()) {
        *c->noticed = true;
        uv_timer_stop(t);
        return;
      }
      if (c->gone->load()) ++*c->sends;
      // Large chunks so the kernel buffers fill and the reset surfaces quickly.
      c->stream->Send(std::string(64 * 1024, 'x'));
      if (*c->sends > 2000) uv_timer_stop(t);  // bound: the test fails below instead of spinning
    }, 1, 1);
    r.Finish(Response::Json(200, "{}"));
  });
  f.on_client_done = [&] { uv_close(reinterpret_cast<uv_handle_t*>(&ticker), nullptr); };
  f.Run([&](int port) {
    int fd = gv::testing::ConnectLoopback(port);
    REQUIRE(fd >= 0);
    REQUIRE(gv::testing::SendAll(fd, "GET /events HTTP/1.1\r\nHost: x\r\n\r\n"));
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    CHECK(n > 0);
    ::close(fd);
    client_gone = true;
    CHECK(StatusOf(gv::testing::Request(port, "GET", "/start-ticking")) == 200);
    for (int i = 0; i < 500 && !noticed; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  });
  CHECK(noticed);
  CHECK(sends_after_leave < 2000);
}
