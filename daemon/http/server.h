// HttpServer: the agent's HTTP/1.1 endpoint on libh2o's libuv build.
//
// Ownership (libuv's rules): the server owns its listening handle and the h2o
// context; h2o owns each accepted connection's uv_tcp_t and frees it in the
// close callback we hand it. A request's state lives in a RequestState shared
// between the h2o request (through a pool-allocated slot whose dispose
// callback runs when h2o frees the request) and any Responder the handler
// kept. When the client goes away first, the state is marked dead and every
// later answer is a no-op. No exception crosses an h2o or libuv callback.
// The process must ignore SIGPIPE (the agent does): writes to a closed
// connection then fail with EPIPE, which h2o handles.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "daemon/http/url.h"

namespace gv::http {

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  // {"error": message, "code": code} with the given status (the contract's error shape).
  static Response Error(int status, std::string_view code, std::string_view message);
  static Response Json(int status, std::string body);
  static Response Text(int status, std::string body);
};

struct Request {
  std::string method;
  std::string path;      // percent-decoded, no query
  std::string raw_path;  // as received, with the query
  QueryParams query;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names

  bool Has(std::string_view param) const { return query.find(param) != query.end(); }
  const std::string* Param(std::string_view name) const {
    auto it = query.find(name);
    return it == query.end() ? nullptr : &it->second;
  }
  std::string_view Header(std::string_view lower_name) const;
};

struct RequestState;

// The handler's handle on one request. Copyable; all copies refer to the same
// request. Answer with Finish() exactly once, or stream with StartStream(),
// Send()... End(). Calls after the client left or after the answer are no-ops.
class Responder {
 public:
  Responder() = default;
  explicit Responder(std::shared_ptr<RequestState> state) : state_(std::move(state)) {}

  bool alive() const;
  void Finish(Response response);
  // Streaming (Server-Sent Events and similar): the status line and headers go
  // out at once, chunks follow as the client reads them. If more than
  // max_buffered_bytes wait for a slow client, the stream is cut.
  void StartStream(int status, std::string content_type,
                   std::vector<std::pair<std::string, std::string>> headers = {});
  void Send(std::string chunk);
  void End();
  // Flow control for large streams: bytes queued or being written, and a
  // callback run once when all of it has gone out (at once if nothing waits;
  // never after the client left). Send the next piece from it.
  std::size_t buffered_bytes() const;
  void OnDrained(std::function<void()> drained);

 private:
  std::shared_ptr<RequestState> state_;
};

using Handler = std::function<void(Request&, Responder)>;

struct HttpServerOptions {
  std::size_t max_body_bytes = 2 * 1024 * 1024;
  std::size_t max_query_params = 32;
  std::size_t max_stream_buffer_bytes = 4 * 1024 * 1024;
  // Bodies above max_body_bytes but within this many times it are read and
  // answered with our JSON 413 (and counted); larger ones get h2o's own
  // plain-text 413 without being buffered.
  std::size_t oversize_body_read_factor = 8;
  // The body limit of routes registered with large_body (a snapshot upload).
  // h2o buffers up to max(this, max_body_bytes * oversize_body_read_factor).
  std::size_t max_large_body_bytes = 0;
  // A keep-alive connection waiting for its next request is closed after this
  // long; it also bounds how long Close() waits for idle connections (h2o's
  // HTTP/1 has no graceful shutdown of idle connections).
  std::uint64_t idle_timeout_ms = 10000;
};

class HttpServer {
 public:
  HttpServer(uv_loop_t* loop, HttpServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Routes: an exact path ("/v1/status") or a prefix ending in '/'
  // ("/v1/kv/"); the longest match wins. Unknown paths answer 404 and a known
  // path with another method 405, both as JSON errors.
  // large_body: bodies up to HttpServerOptions::max_large_body_bytes.
  void Route(std::string method, std::string path, Handler handler, bool large_body = false);

  // Binds "IP:PORT" (port 0 picks a free one; see port()).
  Status Listen(const std::string& address);
  int port() const { return port_; }

  // Stops accepting, ends open streams, asks h2o to close its connections and
  // releases the context. The loop must run afterwards until its handles are
  // closed; on_closed runs once everything this server owned is gone.
  void Close(std::function<void()> on_closed);

  // Answers by status code, for /metrics; requests refused before reaching a
  // handler (bad path or query encoding, body too large, unknown endpoint).
  const std::map<int, std::uint64_t>& responses_by_status() const;
  std::uint64_t rejected_requests() const;

  struct Impl;  // implementation detail (server.cc)

 private:
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace gv::http
