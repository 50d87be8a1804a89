// DnsServer: the agent's DNS endpoint, one UDP socket on the loop (--dns).
// Each datagram goes through Answer() (dns_answer.h); the answer is sent with
// uv_udp_try_send, or queued with uv_udp_send when the socket would block.
//
// Ownership (libuv's rules): the uv_udp_t and every queued send live in a
// heap state that is freed in the handle's close callback, after libuv has
// called back every queued send (with UV_ECANCELED if it never went out).
// Close() may be called any number of times; on_closed runs once, after the
// handle is closed. Destroying the DnsServer before that closes it too (the
// state then frees itself without calling back). The Lookup must outlive the
// server until Close() or destruction, whichever comes first: no query is
// read after that.
//
// Back-pressure: at most max_queued_sends answers wait in libuv's queue; an
// answer beyond that is not sent and counted (DNS clients retry).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"
#include "daemon/dns/dns_answer.h"
#include "daemon/net_address.h"
#include "daemon/prometheus.h"

namespace gv::daemon::dns {

struct DnsServerOptions {
  std::size_t max_queued_sends = 1024;
};

struct DnsServerStats {
  std::uint64_t answered = 0;
  std::uint64_t nxdomain = 0;
  std::uint64_t nodata = 0;
  std::uint64_t not_implemented = 0;
  std::uint64_t refused = 0;
  std::uint64_t truncated = 0;
  std::uint64_t dropped = 0;           // malformed datagrams (no answer sent)
  std::uint64_t send_errors = 0;       // answers the socket refused
  std::uint64_t send_overflows = 0;    // answers not sent: max_queued_sends reached
  std::uint64_t receive_errors = 0;
  std::uint64_t request_bytes = 0;
  std::uint64_t answer_bytes = 0;      // handed to the socket
  std::uint64_t queued_sends = 0;      // currently waiting in libuv's queue
  std::string last_drop_reason;        // the most recent malformed datagram's fault

  std::uint64_t count(Outcome outcome) const;
};

class DnsServer {
 public:
  // Binds `address` (port 0 picks a free one; see port()) and starts reading.
  // On failure the half-made handle is already closing: run the loop to free it.
  static Result<std::unique_ptr<DnsServer>> Start(uv_loop_t* loop, const net::SocketAddress& address,
                                                  const Lookup& lookup, AnswerOptions options,
                                                  DnsServerOptions server_options = {});
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  int port() const { return port_; }
  const DnsServerStats& stats() const;

  // grapevine_dns_queries_total{outcome=...} and the send/receive figures.
  void WriteMetrics(PrometheusWriter& writer) const;

  // Stops reading and closes the socket; answers still queued are cancelled.
  // on_closed (may be empty) runs once the handle is closed.
  void Close(std::function<void()> on_closed);

  struct State;  // implementation detail (dns_server.cc)

 private:
  explicit DnsServer(State* state, int port) : state_(state), port_(port) {}
  State* state_;  // null once closed; then final_stats_ holds the figures
  DnsServerStats final_stats_;
  int port_ = 0;
};

}  // namespace gv::daemon::dns
