// HttpClient: a small blocking HTTP/1.1 client for the CLI, the demo launcher,
// integration tests and benchmarks — talking to an agent's local HTTP API.
//
// Blocking POSIX sockets (no event loop: the CLI does one request and exits).
// Every call has a deadline; responses are parsed with picohttpparser (shipped
// with libh2o) and bounded in size. One HttpClient keeps one keep-alive
// connection and reconnects once if the server closed it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace gv::cli {

struct HttpResponse {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // lower-case names
  std::string body;                                          // de-chunked

  std::string_view Header(std::string_view lower_name) const;
};

struct HttpClientOptions {
  std::uint64_t timeout_ms = 10000;  // per request: connect + send + full response
  std::size_t max_response_bytes = 256u << 20;
};

class HttpClient {
 public:
  // `address` is "IP:PORT" (IPv4 or [IPv6]:PORT).
  explicit HttpClient(std::string address, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // `target` is the path with its query, already percent-encoded ("/v1/kv/a%20b?raw").
  // Unavailable when the agent cannot be reached (the message says which
  // address and suggests checking that the agent runs / --http), Aborted ("timed out ...")
  // on timeout, Corruption for an unparsable response. An HTTP error status is
  // NOT an error here: the caller reads response.status.
  Result<HttpResponse> Request(std::string_view method, std::string_view target, std::string_view body = {},
                               std::vector<std::pair<std::string, std::string>> headers = {});
  Result<HttpResponse> Get(std::string_view target) { return Request("GET", target); }

  // Streams a Server-Sent Events response (GET): calls on_event(event_name, data)
  // for each event until on_event returns false, the server ends the stream, or
  // `timeout_ms` (0 = no limit) passes without any bytes. OK when on_event
  // stopped or the stream ended; an error otherwise.
  Status StreamEvents(std::string_view target, std::uint64_t idle_timeout_ms,
                      const std::function<bool(std::string_view event, std::string_view data)>& on_event);

  const std::string& address() const { return address_; }

 private:
  struct Socket;
  std::string address_;
  HttpClientOptions options_;
  std::unique_ptr<Socket> socket_;
};

// Percent-encodes a key for a URL path: keeps [A-Za-z0-9-._~/], encodes the rest.
std::string EncodeKeyPath(std::string_view key);
// Percent-encodes a query value (also encodes '/').
std::string EncodeQueryValue(std::string_view value);

}  // namespace gv::cli
