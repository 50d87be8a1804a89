// HttpClient against the agent's real HttpServer (h2o on a uv loop in this
// thread, the client in another), and against a scripted raw TCP server for
// the cases h2o will not produce on demand: a server that closes a keep-alive
// connection, answers garbage, or ends a body early.
#include "daemon/http_client.h"

#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <csignal>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/http/server.h"
#include "daemon/http/url.h"

using namespace gv;
using gv::cli::HttpClient;
using gv::cli::HttpClientOptions;
using gv::http::HttpServer;
using gv::http::Request;
using gv::http::Responder;
using gv::http::Response;

namespace {

// The server runs on a private loop in the test's thread while `client` runs
// in another; when the client is done the server closes and the loop must end
// with no handle left open.
struct ServerFixture {
  uv_loop_t loop{};
  std::unique_ptr<HttpServer> server;
  uv_async_t done_async{};
  std::function<void()> on_client_done;

  ServerFixture() {
    std::signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&loop);
    server = std::make_unique<HttpServer>(&loop, gv::http::HttpServerOptions{});
  }

  void Run(const std::function<void(const std::string& address)>& client) {
    REQUIRE(server->Listen("127.0.0.1:0").ok());
    const std::string address = "127.0.0.1:" + std::to_string(server->port());
    done_async.data = this;
    uv_async_init(&loop, &done_async, [](uv_async_t* a) {
      auto* self = static_cast<ServerFixture*>(a->data);
      if (self->on_client_done) self->on_client_done();
      self->server->Close([] {});
      uv_close(reinterpret_cast<uv_handle_t*>(a), nullptr);
    });
    std::thread t([&] {
      client(address);
      uv_async_send(&done_async);
    });
    uv_run(&loop, UV_RUN_DEFAULT);
    t.join();
    CHECK(uv_loop_close(&loop) == 0);
    server.reset();
  }
};

// A scripted TCP server: accepts connections one after another and runs
// `script(fd, connection_index)` on each, then closes it. Stops after
// `max_connections` or when destroyed.
class RawServer {
 public:
  RawServer(int max_connections, std::function<void(int fd, int index)> script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listen_fd_ >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    REQUIRE(::listen(listen_fd_, 8) == 0);
    socklen_t len = sizeof(addr);
    REQUIRE(::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this, max_connections] {
      for (int i = 0; i < max_connections && !stop_; ++i) {
        pollfd p{listen_fd_, POLLIN, 0};
        // Bounded so a test whose client never connects still ends.
        if (::poll(&p, 1, 100) <= 0) {
          --i;
          continue;
        }
        int fd = ::accept(listen_fd_, nullptr, nullptr);
        if (fd < 0) break;
        ++accepted_;
        script_(fd, i);
        ::close(fd);
      }
    });
  }
  ~RawServer() {
    stop_ = true;
    thread_.join();
    ::close(listen_fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int accepted() const { return accepted_; }

 private:
  std::function<void(int, int)> script_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Reads one request head (our client's requests here carry no body).
std::string ReadHead(int fd) {
  std::string head;
  char c;
  while (head.find("\r\n\r\n") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    if (::recv(fd, &c, 1, 0) != 1) break;
    head.push_back(c);
  }
  return head;
}

void Write(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

std::string UnusedLoopbackAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // nothing listens there now: connecting is refused
  return "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
}

struct SseEvent {
  std::string event;
  std::string data;
};

}  // namespace

TEST_CASE("http client: GET and PUT with content-length and chunked bodies on the real server") {
  ServerFixture f;
  std::string seen_body;
  std::string seen_header;
  std::string seen_path;
  f.server->Route("GET", "/v1/kv/", [&](Request& req, Responder r) {
    seen_path = req.path;
    Response resp = Response::Text(200, "value of " + req.path);
    resp.headers.emplace_back("X-Grapevine-Index", "42");
    r.Finish(resp);
  });
  f.server->Route("PUT", "/v1/kv/", [&](Request& req, Responder r) {
    if (!req.body.empty()) {
      seen_body = req.body;
      seen_header = std::string(req.Header("x-test"));
    }
    r.Finish(Response::Json(200, "{\"version\":" + std::to_string(req.body.size()) + "}"));
  });
  // A chunked body of 40 x 5000 bytes sent as separate chunks.
  f.server->Route("GET", "/chunked", [&](Request&, Responder r) {
    r.StartStream(200, "text/plain");
    for (int i = 0; i < 40; ++i) r.Send(std::string(5000, static_cast<char>('a' + i % 26)));
    r.End();
  });
  f.server->Route("GET", "/empty", [&](Request&, Responder r) { r.Finish(Response::Text(200, "")); });
  f.Run([&](const std::string& address) {
    HttpClient client(address);
    auto got = client.Get("/v1/kv/" + gv::cli::EncodeKeyPath("config/a b"));
    REQUIRE(got.ok());
    CHECK(got->status == 200);
    CHECK(got->body == "value of /v1/kv/config/a b");
    CHECK(got->Header("x-grapevine-index") == "42");
    CHECK(got->Header("content-type").substr(0, 10) == "text/plain");
    CHECK(got->Header("no-such-header").empty());

    const std::string big(300 * 1024, 'v');
    auto put = client.Request("PUT", "/v1/kv/k", big, {{"X-Test", "yes"}});
    REQUIRE(put.ok());
    CHECK(put->status == 200);
    CHECK(put->body == "{\"version\":" + std::to_string(big.size()) + "}");

    // An empty PUT still sends Content-Length: 0 (h2o would otherwise wait for a body).
    auto empty_put = client.Request("PUT", "/v1/kv/k", "");
    REQUIRE(empty_put.ok());
    CHECK(empty_put->body == "{\"version\":0}");

    auto chunked = client.Get("/chunked");
    REQUIRE(chunked.ok());
    CHECK(chunked->status == 200);
    REQUIRE(chunked->body.size() == 40u * 5000u);
    for (int i = 0; i < 40; ++i) {
      const char expected = static_cast<char>('a' + i % 26);
      CHECK(chunked->body.substr(static_cast<std::size_t>(i) * 5000, 5000).find_first_not_of(expected) ==
            std::string::npos);
    }

    auto empty = client.Get("/empty");
    REQUIRE(empty.ok());
    CHECK(empty->body.empty());

    // HTTP errors are responses, not client errors; the client stays usable.
    auto missing = client.Get("/nope");
    REQUIRE(missing.ok());
    CHECK(missing->status == 404);
    CHECK(missing->body.find("\"code\":\"not_found\"") != std::string::npos);
    auto again = client.Get("/v1/kv/x");
    REQUIRE(again.ok());
    CHECK(again->body == "value of /v1/kv/x");
  });
  CHECK(seen_body.size() == 300u * 1024u);
  CHECK(seen_body.find_first_not_of('v') == std::string::npos);
  CHECK(seen_header == "yes");
  CHECK(seen_path == "/v1/kv/x");
}

TEST_CASE("http client: response size limit, timeout and recovery on the real server") {
  ServerFixture f;
  std::vector<Responder> never_answered;
  f.server->Route("GET", "/big", [&](Request&, Responder r) { r.Finish(Response::Text(200, std::string(5000, 'x'))); });
  f.server->Route("GET", "/big-chunked", [&](Request&, Responder r) {
    r.StartStream(200, "text/plain");
    for (int i = 0; i < 10; ++i) r.Send(std::string(1000, 'y'));
    r.End();
  });
  f.server->Route("GET", "/hang", [&](Request&, Responder r) { never_answered.push_back(r); });
  f.server->Route("GET", "/ok", [&](Request&, Responder r) { r.Finish(Response::Text(200, "ok")); });
  // h2o keeps a connection with an unanswered request open; answer it so the server can close.
  f.on_client_done = [&] {
    for (Responder& r : never_answered) r.Finish(Response::Text(200, "late"));
  };
  f.Run([&](const std::string& address) {
    HttpClientOptions options;
    options.max_response_bytes = 4096;
    options.timeout_ms = 300;
    HttpClient client(address, options);
    auto big = client.Get("/big");
    REQUIRE_FALSE(big.ok());
    CHECK(big.status().code() == StatusCode::kTooLarge);
    auto big_chunked = client.Get("/big-chunked");
    REQUIRE_FALSE(big_chunked.ok());
    CHECK(big_chunked.status().code() == StatusCode::kTooLarge);

    auto hang = client.Get("/hang");
    REQUIRE_FALSE(hang.ok());
    CHECK(hang.status().code() == StatusCode::kAborted);
    CHECK(hang.status().message().find("timed out") != std::string::npos);
    CHECK(hang.status().message().find(address) != std::string::npos);

    // After a timeout the half-used connection is dropped; the next request works.
    auto ok = client.Get("/ok");
    REQUIRE(ok.ok());
    CHECK(ok->body == "ok");
  });
  CHECK(never_answered.size() == 1);
}

TEST_CASE("http client: an unreachable agent is named in the error") {
  const std::string address = UnusedLoopbackAddress();
  HttpClient client(address);
  auto r = client.Get("/v1/status");
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().code() == StatusCode::kUnavailable);
  CHECK(r.status().message().find("cannot reach the agent at " + address) != std::string::npos);
  CHECK(r.status().message().find("refused") != std::string::npos);
  CHECK(r.status().message().find("--http") != std::string::npos);

  HttpClient bad("localhost:7401");
  auto b = bad.Get("/");
  REQUIRE_FALSE(b.ok());
  CHECK(b.status().code() == StatusCode::kInvalidArgument);
  HttpClient bad_port("127.0.0.1:70000");
  CHECK(bad_port.Get("/").status().code() == StatusCode::kInvalidArgument);
  HttpClient v6("[::1]:" + address.substr(address.rfind(':') + 1));
  auto r6 = v6.Get("/");
  REQUIRE_FALSE(r6.ok());
  CHECK(r6.status().code() == StatusCode::kUnavailable);  // parsed as IPv6, then refused (or no ::1)
}

TEST_CASE("http client: keep-alive reuses one connection for several requests") {
  RawServer server(2, [](int fd, int) {
    for (int i = 0; i < 3; ++i) {
      std::string head = ReadHead(fd);
      if (head.empty()) return;
      std::string body = "answer " + std::to_string(i);
      Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
    }
  });
  HttpClient client(server.address());
  for (int i = 0; i < 3; ++i) {
    auto r = client.Get("/x");
    REQUIRE(r.ok());
    CHECK(r->body == "answer " + std::to_string(i));
  }
  CHECK(server.accepted() == 1);
}

TEST_CASE("http client: Connection: close, an idle close and a body until EOF force new connections") {
  RawServer server(4, [](int fd, int index) {
    std::string head = ReadHead(fd);
    if (index == 0) {
      Write(fd, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nfirst");
    } else if (index == 1) {
      // Keep-alive response, then the server closes the idle connection.
      Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond");
    } else if (index == 2) {
      Write(fd, "HTTP/1.0 200 OK\r\n\r\nthird, framed by the close");
    } else {
      Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nfourth");
    }
  });
  HttpClient client(server.address());
  auto first = client.Get("/1");
  REQUIRE(first.ok());
  CHECK(first->body == "first");
  auto second = client.Get("/2");
  REQUIRE(second.ok());
  CHECK(second->body == "second");
  // Whether the client sees the idle close before sending or only as an EOF
  // before the first response byte, it reconnects once and succeeds.
  auto third = client.Get("/3");
  REQUIRE(third.ok());
  CHECK(third->body == "third, framed by the close");
  auto fourth = client.Get("/4");
  REQUIRE(fourth.ok());
  CHECK(fourth->body == "fourth");
  CHECK(server.accepted() == 4);
}

TEST_CASE("http client: garbage, truncated and malformed responses are errors") {
  RawServer server(4, [](int fd, int index) {
    ReadHead(fd);
    if (index == 0) Write(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    if (index == 1) Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a little");
    if (index == 2) Write(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n0\r\n\r\n");
    if (index == 3) Write(fd, "HTTP/1.1 200 OK\r\nContent-Length: 12x\r\n\r\n");
  });
  HttpClient client(server.address());
  auto garbage = client.Get("/");
  REQUIRE_FALSE(garbage.ok());
  CHECK(garbage.status().code() == StatusCode::kCorruption);
  auto truncated = client.Get("/");
  REQUIRE_FALSE(truncated.ok());
  CHECK(truncated.status().code() == StatusCode::kUnavailable);
  CHECK(truncated.status().message().find("87 body bytes still to come") != std::string::npos);
  auto bad_chunk = client.Get("/");
  REQUIRE_FALSE(bad_chunk.ok());
  CHECK(bad_chunk.status().code() == StatusCode::kCorruption);
  auto bad_length = client.Get("/");
  REQUIRE_FALSE(bad_length.ok());
  CHECK(bad_length.status().code() == StatusCode::kCorruption);
}

TEST_CASE("http client: a chunked body trickled byte by byte decodes the same") {
  // The chunked decoder is fed whatever recv() returns; with Nagle off and one
  // send per byte, the framing arrives split at many different points.
  const std::string wire =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n1;ext=1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n";
  RawServer server(1, [&](int fd, int) {
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ReadHead(fd);
    for (char c : wire) Write(fd, std::string(1, c));
    ReadHead(fd);  // holds the keep-alive connection until the client closes it
  });
  HttpClient client(server.address());
  auto r = client.Get("/");
  REQUIRE(r.ok());
  CHECK(r->body == "hello 0123456789");
}

TEST_CASE("http client: SSE events from the real server, parsed per the spec") {
  ServerFixture f;
  Responder stream;
  f.server->Route("GET", "/v1/watch", [&](Request& req, Responder r) {
    if (req.Param("prefix") == nullptr) {
      r.Finish(Response::Error(400, "bad_request", "missing ?prefix="));
      return;
    }
    stream = r;
    stream.StartStream(200, "text/event-stream", {{"Cache-Control", "no-cache"}});
    stream.Send(": watching from index 3\n\n");
    stream.Send("event: put\nid: 4\ndata: {\"key\":\"a\"}\n\n");
    stream.Send("data: line one\ndata: line two\n\n");           // default name, joined with \n
    stream.Send("event: delete\r\ndata:no-space\r\n\r\n");       // CRLF endings, no space after colon
    stream.Send("event: put\ndata: split ");                     // one event across two chunks
    stream.Send("across chunks\n\n");
    stream.Send("event: empty\n\n");                             // no data: not dispatched
    stream.Send("data\n\n");                                     // field without colon: empty data line
    stream.Send("retry: 100\nid: 9\n: comment\ndata:  two spaces\n\n");
    stream.Send("event: last\ndata: after this the client stops\n\n");
    stream.Send("data: never read\n\n");
    // The stream stays open: the client, not the server, ends it.
  });
  f.on_client_done = [&] { stream.End(); };
  std::vector<SseEvent> events;
  f.Run([&](const std::string& address) {
    HttpClient client(address);
    Status s = client.StreamEvents("/v1/watch?prefix=" + gv::cli::EncodeQueryValue("a/"), 5000,
                                   [&](std::string_view event, std::string_view data) {
                                     events.push_back({std::string(event), std::string(data)});
                                     return event != "last";
                                   });
    CHECK(s.ok());
    // A non-200 answer is an error carrying the server's message.
    Status refused = client.StreamEvents("/v1/watch", 5000, [](std::string_view, std::string_view) { return true; });
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.message().find("missing ?prefix=") != std::string::npos);
    CHECK(refused.message().find("400") != std::string::npos);
  });
  REQUIRE(events.size() == 7);
  CHECK(events[0].event == "put");
  CHECK(events[0].data == "{\"key\":\"a\"}");
  CHECK(events[1].event == "message");
  CHECK(events[1].data == "line one\nline two");
  CHECK(events[2].event == "delete");
  CHECK(events[2].data == "no-space");
  CHECK(events[3].event == "put");
  CHECK(events[3].data == "split across chunks");
  CHECK(events[4].event == "message");
  CHECK(events[4].data == "");
  CHECK(events[5].data == " two spaces");
  CHECK(events[6].event == "last");
}

TEST_CASE("http client: an SSE stream ends cleanly, or with an idle timeout") {
  ServerFixture f;
  Responder quiet;
  f.server->Route("GET", "/finite", [&](Request&, Responder r) {
    r.StartStream(200, "text/event-stream");
    r.Send("data: 1\n\ndata: 2\n\n");
    r.End();
  });
  f.server->Route("GET", "/quiet", [&](Request&, Responder r) {
    quiet = r;
    quiet.StartStream(200, "text/event-stream");
    quiet.Send(": nothing will follow\n\n");
  });
  // 100 events of ~100 bytes: ten times the client's max_response_bytes in total.
  f.server->Route("GET", "/long", [&](Request&, Responder r) {
    r.StartStream(200, "text/event-stream");
    for (int i = 0; i < 100; ++i) r.Send("data: " + std::to_string(i) + std::string(90, '.') + "\n\n");
    r.End();
  });
  f.on_client_done = [&] { quiet.End(); };
  std::vector<std::string> finite;
  int long_events = 0;
  f.Run([&](const std::string& address) {
    HttpClient client(address);
    Status ended = client.StreamEvents("/finite", 5000, [&](std::string_view, std::string_view data) {
      finite.emplace_back(data);
      return true;
    });
    CHECK(ended.ok());
    // A stream is bounded per event, not in total; no idle limit (0) is allowed.
    HttpClientOptions small;
    small.max_response_bytes = 1024;
    HttpClient small_client(address, small);
    Status long_stream = small_client.StreamEvents("/long", 0, [&](std::string_view, std::string_view data) {
      CHECK(data.size() > 90u);
      ++long_events;
      return true;
    });
    CHECK(long_stream.ok());
    int quiet_events = 0;
    Status idle = client.StreamEvents("/quiet", 200, [&](std::string_view, std::string_view) {
      ++quiet_events;
      return true;
    });
    REQUIRE_FALSE(idle.ok());
    CHECK(idle.message().find("idle") != std::string::npos);
    CHECK(quiet_events == 0);
  });
  CHECK(finite == std::vector<std::string>{"1", "2"});
  CHECK(long_events == 100);
}

TEST_CASE("http client: key and query encoding round-trip through the server's decoder") {
  using gv::cli::EncodeKeyPath;
  using gv::cli::EncodeQueryValue;
  CHECK(EncodeKeyPath("config/db/url") == "config/db/url");
  CHECK(EncodeKeyPath("a b?c#d%e&f=g+h") == "a%20b%3Fc%23d%25e%26f%3Dg%2Bh");
  CHECK(EncodeKeyPath("~user/-._") == "~user/-._");
  CHECK(EncodeKeyPath("caf\xc3\xa9") == "caf%C3%A9");
  CHECK(EncodeQueryValue("config/app") == "config%2Fapp");
  CHECK(EncodeQueryValue("a&b=c") == "a%26b%3Dc");
  CHECK(EncodeQueryValue("") == "");
  // Every byte but NUL (which keys cannot hold) survives encode + decode.
  std::string all;
  for (int c = 1; c < 256; ++c) all.push_back(static_cast<char>(c));
  auto key = gv::http::PercentDecode(EncodeKeyPath(all));
  REQUIRE(key.ok());
  CHECK(*key == all);
  const std::string query = EncodeQueryValue(all);
  CHECK(query.find('/') == std::string::npos);
  CHECK(query.find('&') == std::string::npos);
  auto params = gv::http::ParseQuery("prefix=" + query);
  REQUIRE(params.ok());
  CHECK(params->at("prefix") == all);
}
