#include "daemon/dns/dns_server.h"

#include <spdlog/spdlog.h>

#include <array>
#include <utility>

namespace gv::daemon::dns {
namespace {

// Large enough for any UDP datagram, so an oversize query arrives whole and
// is refused (and counted) by Answer() rather than cut by the socket.
constexpr std::size_t kReceiveBufferBytes = 64 * 1024;

}  // namespace

std::uint64_t DnsServerStats::count(Outcome outcome) const {
  switch (outcome) {
    case Outcome::kAnswered: return answered;
    case Outcome::kNxDomain: return nxdomain;
    case Outcome::kNoData: return nodata;
    case Outcome::kNotImplemented: return not_implemented;
    case Outcome::kRefused: return refused;
    case Outcome::kTruncated: return truncated;
    case Outcome::kDropped: return dropped;
  }
  return 0;
}

// Everything libuv can call back into. Heap-allocated; freed in the handle's
// close callback (libuv has run every queued send's callback by then).
struct DnsServer::State {
  uv_udp_t udp{};
  const Lookup* lookup = nullptr;
  AnswerOptions options;
  DnsServerOptions server_options;
  DnsServer* owner = nullptr;  // null once the DnsServer is destroyed
  DnsServerStats stats;
  bool closing = false;
  std::function<void()> on_closed;
  std::array<char, kReceiveBufferBytes> buffer{};  // one datagram at a time (no recvmmsg)

  // An answer waiting in libuv's send queue: the request and its bytes stay
  // alive until OnSent.
  struct QueuedSend {
    uv_udp_send_t request{};
    std::string wire;
    State* state = nullptr;
  };

  void Count(Outcome outcome) {
    switch (outcome) {
      case Outcome::kAnswered: ++stats.answered; break;
      case Outcome::kNxDomain: ++stats.nxdomain; break;
      case Outcome::kNoData: ++stats.nodata; break;
      case Outcome::kNotImplemented: ++stats.not_implemented; break;
      case Outcome::kRefused: ++stats.refused; break;
      case Outcome::kTruncated: ++stats.truncated; break;
      case Outcome::kDropped: ++stats.dropped; break;
    }
  }

  void Send(std::string wire, const sockaddr* to) {
    uv_buf_t buf = uv_buf_init(wire.data(), static_cast<unsigned>(wire.size()));
    const int sent = uv_udp_try_send(&udp, &buf, 1, to);
    if (sent >= 0) {
      stats.answer_bytes += static_cast<std::uint64_t>(sent);
      return;
    }
    if (sent != UV_EAGAIN) {
      ++stats.send_errors;
      spdlog::debug("dns: send failed: {}", uv_strerror(sent));
      return;
    }
    if (stats.queued_sends >= server_options.max_queued_sends) {
      ++stats.send_overflows;
      return;
    }
    auto* queued = new QueuedSend;
    queued->wire = std::move(wire);
    queued->state = this;
    queued->request.data = queued;
    buf = uv_buf_init(queued->wire.data(), static_cast<unsigned>(queued->wire.size()));
    const int rc = uv_udp_send(&queued->request, &udp, &buf, 1, to, OnSent);
    if (rc != 0) {
      ++stats.send_errors;
      delete queued;
      return;
    }
    ++stats.queued_sends;
  }

  void Close(std::function<void()> callback) {
    if (closing) return;
    closing = true;
    on_closed = std::move(callback);
    uv_udp_recv_stop(&udp);
    uv_close(reinterpret_cast<uv_handle_t*>(&udp), OnClosed);
  }

  static void OnAlloc(uv_handle_t* handle, std::size_t /*suggested*/, uv_buf_t* buf) {
    auto* state = static_cast<State*>(handle->data);
    *buf = uv_buf_init(state->buffer.data(), static_cast<unsigned>(state->buffer.size()));
  }

  static void OnReceive(uv_udp_t* handle, ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) {
    auto* state = static_cast<State*>(handle->data);
    if (state->closing) return;
    if (nread < 0) {
      ++state->stats.receive_errors;
      spdlog::debug("dns: receive failed: {}", uv_strerror(static_cast<int>(nread)));
      return;
    }
    if (from == nullptr) return;  // nread == 0: the socket is drained, no datagram
    state->stats.request_bytes += static_cast<std::uint64_t>(nread);
    if (flags & UV_UDP_PARTIAL) {
      state->Count(Outcome::kDropped);
      state->stats.last_drop_reason = "datagram larger than the receive buffer";
      return;
    }
    AnswerResult result =
        Answer(std::string_view(buf->base, static_cast<std::size_t>(nread)), *state->lookup, state->options);
    state->Count(result.outcome);
    if (result.outcome == Outcome::kDropped) {
      spdlog::debug("dns: dropped a {}-byte datagram from {}: {}", nread,
                    net::FormatSocketAddress(reinterpret_cast<const sockaddr_storage&>(*from)), result.reason);
      state->stats.last_drop_reason = std::move(result.reason);
      return;
    }
    state->Send(std::move(result.wire), from);
  }

  static void OnSent(uv_udp_send_t* request, int status) {
    auto* queued = static_cast<QueuedSend*>(request->data);
    State* state = queued->state;
    --state->stats.queued_sends;
    if (status >= 0) {
      state->stats.answer_bytes += queued->wire.size();
    } else if (status != UV_ECANCELED) {
      ++state->stats.send_errors;
    }
    delete queued;
  }

  static void OnClosed(uv_handle_t* handle) {
    auto* state = static_cast<State*>(handle->data);
    if (state->owner != nullptr) {
      state->owner->final_stats_ = state->stats;
      state->owner->state_ = nullptr;
    }
    std::function<void()> callback = std::move(state->on_closed);
    delete state;
    if (callback) callback();
  }
};

Result<std::unique_ptr<DnsServer>> DnsServer::Start(uv_loop_t* loop, const net::SocketAddress& address,
                                                    const Lookup& lookup, AnswerOptions options,
                                                    DnsServerOptions server_options) {
  GV_RETURN_IF_ERROR(ValidateAnswerOptions(options));
  auto* state = new State;
  state->lookup = &lookup;
  state->options = std::move(options);
  state->server_options = server_options;
  if (int rc = uv_udp_init(loop, &state->udp); rc != 0) {
    delete state;  // not registered with the loop: nothing to close
    return Status::IOError(std::string("DNS: uv_udp_init: ") + uv_strerror(rc));
  }
  state->udp.data = state;
  const auto fail = [state, &address](const char* what, int rc) {
    state->Close(nullptr);
    return Status::IOError("DNS " + address.ToString() + ": " + what + ": " + uv_strerror(rc));
  };
  if (int rc = uv_udp_bind(&state->udp, reinterpret_cast<const sockaddr*>(&address.storage), 0); rc != 0) {
    return fail("bind", rc);
  }
  sockaddr_storage bound{};
  int length = sizeof(bound);
  if (int rc = uv_udp_getsockname(&state->udp, reinterpret_cast<sockaddr*>(&bound), &length); rc != 0) {
    return fail("getsockname", rc);
  }
  if (int rc = uv_udp_recv_start(&state->udp, State::OnAlloc, State::OnReceive); rc != 0) {
    return fail("recv_start", rc);
  }
  std::unique_ptr<DnsServer> server(new DnsServer(state, net::PortOf(bound)));
  state->owner = server.get();
  return server;
}

DnsServer::~DnsServer() {
  if (state_ != nullptr) {
    state_->owner = nullptr;
    state_->Close(nullptr);
  }
}

const DnsServerStats& DnsServer::stats() const { return state_ != nullptr ? state_->stats : final_stats_; }

void DnsServer::Close(std::function<void()> on_closed) {
  if (state_ == nullptr) {
    return;  // already closed: on_closed ran (or was dropped) with the first Close
  }
  state_->Close(std::move(on_closed));
}

void DnsServer::WriteMetrics(PrometheusWriter& writer) const {
  const DnsServerStats& s = stats();
  auto family = writer.Family("grapevine_dns_queries_total", PrometheusWriter::Type::kCounter,
                              "DNS datagrams received, by outcome (dropped: malformed, not answered)");
  for (Outcome outcome : {Outcome::kAnswered, Outcome::kNxDomain, Outcome::kNoData, Outcome::kNotImplemented,
                          Outcome::kRefused, Outcome::kTruncated, Outcome::kDropped}) {
    family.Sample(static_cast<double>(s.count(outcome)), {{"outcome", OutcomeName(outcome)}});
  }
  writer.Counter("grapevine_dns_send_errors_total", "DNS answers the socket refused", static_cast<double>(s.send_errors));
  writer.Counter("grapevine_dns_send_overflows_total", "DNS answers not sent because the send queue was full",
                 static_cast<double>(s.send_overflows));
  writer.Counter("grapevine_dns_receive_errors_total", "DNS socket receive errors", static_cast<double>(s.receive_errors));
  writer.Counter("grapevine_dns_request_bytes_total", "DNS request bytes received", static_cast<double>(s.request_bytes));
  writer.Counter("grapevine_dns_answer_bytes_total", "DNS answer bytes sent", static_cast<double>(s.answer_bytes));
  writer.Gauge("grapevine_dns_queued_sends", "DNS answers waiting in the socket's send queue",
               static_cast<double>(s.queued_sends));
}

}  // namespace gv::daemon::dns
