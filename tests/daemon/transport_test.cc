#include <doctest/doctest.h>
#include <uv.h>

#include <csignal>
#include <string>
#include <thread>
#include <vector>

#include "common/prng.h"
#include "daemon/transport/connection.h"
#include "daemon/transport/frame.h"
#include "tests/daemon/http_test_client.h"

using namespace gv;
using namespace gv::transport;

TEST_CASE("frame decoder yields the same frames whatever the read boundaries") {
  Prng prng(11);
  std::vector<std::string> sent;
  std::string stream;
  for (int i = 0; i < 50; ++i) {
    std::string payload(static_cast<std::size_t>(prng.Range(1, 3000)), '\0');
    for (char& c : payload) c = static_cast<char>(prng.NextU64());
    AppendFrame(payload, stream);
    sent.push_back(payload);
  }
  for (int trial = 0; trial < 20; ++trial) {
    FrameDecoder decoder(4096);
    std::vector<std::string> got;
    std::size_t pos = 0;
    while (pos < stream.size()) {
      std::size_t n = std::min<std::size_t>(stream.size() - pos, static_cast<std::size_t>(prng.Range(1, 700)));
      REQUIRE(decoder.Feed(std::string_view(stream).substr(pos, n), got).ok());
      pos += n;
    }
    CHECK(got == sent);
    CHECK(decoder.buffered_bytes() == 0);
  }
}

TEST_CASE("frame decoder refuses empty and oversize frames before buffering them, and stays failed") {
  FrameDecoder decoder(1024);
  std::vector<std::string> frames;
  Status st = decoder.Feed(std::string("\x00\x00\x04\x01", 4), frames);  // 1025 bytes announced
  CHECK(st.code() == StatusCode::kTooLarge);
  CHECK(decoder.buffered_bytes() == 0);
  std::string ok;
  AppendFrame("fine", ok);
  CHECK_FALSE(decoder.Feed(ok, frames).ok());
  CHECK(frames.empty());
  FrameDecoder zero(1024);
  CHECK_FALSE(zero.Feed(std::string(4, '\0'), frames).ok());
}

namespace {

// A listener whose accepted connections are handed to `on_accept`.
struct Listener {
  uv_tcp_t tcp{};
  std::function<void(uv_stream_t*)> on_accept;
  int port = 0;

  void Start(uv_loop_t* loop) {
    uv_tcp_init(loop, &tcp);
    tcp.data = this;
    auto addr = net::ParseSocketAddress("127.0.0.1:0");
    REQUIRE(addr.ok());
    REQUIRE(uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&addr->storage), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&tcp), 16, [](uv_stream_t* s, int status) {
              if (status == 0) static_cast<Listener*>(s->data)->on_accept(s);
            }) == 0);
    sockaddr_storage bound{};
    int len = sizeof(bound);
    uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&bound), &len);
    port = net::PortOf(bound);
  }
  void Stop() { uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr); }
};

}  // namespace

TEST_CASE("connections exchange frames over loopback and close exactly once") {
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  Listener listener;
  int server_closed = 0, client_closed = 0;
  std::vector<std::string> echoed;
  std::vector<std::string> sent;
  Prng prng(5);
  for (int i = 0; i < 200; ++i) sent.push_back(std::string(static_cast<std::size_t>(prng.Range(1, 20000)), char('a' + i % 26)));

  listener.on_accept = [&](uv_stream_t* s) {
    Connection::Callbacks cb;
    cb.on_frame = [](Connection& c, std::string frame) { c.Send(frame); };
    cb.on_closed = [&](Connection&, const Status&) {
      ++server_closed;
      listener.Stop();
    };
    CHECK(Connection::Accept(s, {}, cb) != nullptr);
  };
  listener.Start(&loop);

  auto addr = net::ParseSocketAddress("127.0.0.1:" + std::to_string(listener.port));
  REQUIRE(addr.ok());
  Connection::Callbacks cb;
  Status client_reason;
  cb.on_connected = [&](Connection& c) {
    for (const auto& s : sent) CHECK(c.Send(s));
  };
  cb.on_frame = [&](Connection& c, std::string frame) {
    echoed.push_back(std::move(frame));
    if (echoed.size() == sent.size()) c.Close(Status::Ok());
  };
  cb.on_closed = [&](Connection&, const Status& reason) {
    ++client_closed;
    client_reason = reason;
  };
  Connection::Connect(&loop, *addr, {}, cb);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(echoed == sent);
  CHECK(client_closed == 1);
  CHECK(server_closed == 1);
  CHECK(client_reason.ok());
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("garbage on the peer port closes that connection with a clear reason") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Listener listener;
  Status reason;
  int frames = 0;
  listener.on_accept = [&](uv_stream_t* s) {
    Connection::Callbacks cb;
    cb.on_frame = [&](Connection&, std::string) { ++frames; };
    cb.on_closed = [&](Connection&, const Status& r) {
      reason = r;
      listener.Stop();
    };
    Connection::Accept(s, {}, cb);
  };
  listener.Start(&loop);
  std::thread client([port = listener.port] {
    int fd = gv::testing::ConnectLoopback(port);
    gv::testing::SendAll(fd, "\xff\xff\xff\xffGET / HTTP/1.1\r\n\r\n");
    char buf[16];
    ::recv(fd, buf, sizeof(buf), 0);  // returns when the agent drops us
    ::close(fd);
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  client.join();
  CHECK(frames == 0);
  // A length over the bound stays TooLarge (the agent counts it as "oversize").
  CHECK(reason.code() == StatusCode::kTooLarge);
  CHECK(reason.message().find("outside") != std::string::npos);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("a peer that never reads is dropped once the send queue crosses its bound") {
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  Listener listener;
  Status reason;
  uv_idle_t pump{};
  uv_idle_init(&loop, &pump);
  Connection* server_side = nullptr;
  listener.on_accept = [&](uv_stream_t* s) {
    Connection::Callbacks cb;
    cb.on_closed = [&](Connection&, const Status& r) {
      reason = r;
      server_side = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&pump), nullptr);
      listener.Stop();
    };
    ConnectionOptions options;
    options.max_queued_bytes = 256 * 1024;
    server_side = Connection::Accept(s, options, cb);
    pump.data = &server_side;
    // Keep sending from the loop, as the agent would with a stream of broadcasts.
    uv_idle_start(&pump, [](uv_idle_t* h) {
      auto** conn = static_cast<Connection**>(h->data);
      if (*conn != nullptr) (*conn)->Send(std::string(32 * 1024, 'z'));
    });
  };
  listener.Start(&loop);
  std::atomic<bool> done{false};
  std::thread client([&, port = listener.port] {
    int fd = gv::testing::ConnectLoopback(port);
    // Never read; hold the connection until the agent gives up on us (bounded wait).
    for (int i = 0; i < 1000 && !done.load(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ::close(fd);
  });
  uv_run(&loop, UV_RUN_DEFAULT);
  done = true;
  client.join();
  CHECK(reason.code() == StatusCode::kUnavailable);
  CHECK(reason.message().find("too slow") != std::string::npos);
  CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("connecting to a closed port reports the failure once") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  // Find a free port and close it again.
  Listener probe;
  probe.on_accept = [](uv_stream_t*) {};
  probe.Start(&loop);
  int port = probe.port;
  probe.Stop();
  uv_run(&loop, UV_RUN_DEFAULT);
  auto addr = net::ParseSocketAddress("127.0.0.1:" + std::to_string(port));
  REQUIRE(addr.ok());
  int closed = 0;
  bool connected = false;
  Status reason;
  Connection::Callbacks cb;
  cb.on_connected = [&](Connection&) { connected = true; };
  cb.on_closed = [&](Connection&, const Status& r) {
    ++closed;
    reason = r;
  };
  Connection::Connect(&loop, *addr, {}, cb);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_FALSE(connected);
  CHECK(closed == 1);
  CHECK(reason.code() == StatusCode::kUnavailable);
  CHECK(uv_loop_close(&loop) == 0);
}
