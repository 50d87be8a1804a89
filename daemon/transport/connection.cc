#include "daemon/transport/connection.h"

#include <vector>

namespace gv::transport {

Connection::Connection(uv_loop_t* loop, ConnectionOptions options, Callbacks callbacks)
    : options_(options), callbacks_(std::move(callbacks)), decoder_(options.max_frame_bytes) {
  uv_tcp_init(loop, &tcp_);
  tcp_.data = this;
  ++open_handles_;
  uv_timer_init(loop, &connect_timer_);
  connect_timer_.data = this;
  ++open_handles_;
}

Connection* Connection::Accept(uv_stream_t* listener, ConnectionOptions options, Callbacks callbacks) {
  auto* conn = new Connection(listener->loop, options, std::move(callbacks));
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&conn->tcp_)) != 0) {
    conn->callbacks_.on_closed = nullptr;  // never reported: the caller gets null
    conn->Close(Status::IOError("accept failed"));
    return nullptr;
  }
  sockaddr_storage peer{};
  int len = sizeof(peer);
  if (uv_tcp_getpeername(&conn->tcp_, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    conn->remote_address_ = net::FormatSocketAddress(peer);
  }
  uv_tcp_nodelay(&conn->tcp_, 1);
  conn->state_ = State::kOpen;
  conn->StartReading();
  return conn;
}

Connection* Connection::Connect(uv_loop_t* loop, const net::SocketAddress& to, ConnectionOptions options,
                                Callbacks callbacks) {
  auto* conn = new Connection(loop, options, std::move(callbacks));
  conn->remote_address_ = to.ToString();
  conn->connect_req_.data = conn;
  int rc = uv_tcp_connect(&conn->connect_req_, &conn->tcp_, reinterpret_cast<const sockaddr*>(&to.storage),
                          OnConnect);
  if (rc != 0) {
    conn->Close(Status::IOError("connect to " + conn->remote_address_ + ": " + uv_strerror(rc)));
    return conn;
  }
  uv_timer_start(&conn->connect_timer_, OnConnectTimeout, options.connect_timeout_ms, 0);
  return conn;
}

void Connection::OnConnect(uv_connect_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  uv_timer_stop(&conn->connect_timer_);
  if (conn->state_ != State::kConnecting) return;  // closed (or timed out) meanwhile
  if (status != 0) {
    conn->Close(Status::Unavailable("connect to " + conn->remote_address_ + ": " + uv_strerror(status)));
    return;
  }
  uv_tcp_nodelay(&conn->tcp_, 1);
  conn->state_ = State::kOpen;
  conn->StartReading();
  if (conn->callbacks_.on_connected) conn->callbacks_.on_connected(*conn);
  conn->MaybeWrite();  // frames queued while connecting
}

void Connection::OnConnectTimeout(uv_timer_t* timer) {
  auto* conn = static_cast<Connection*>(timer->data);
  conn->Close(Status::Unavailable("connect to " + conn->remote_address_ + " timed out after " +
                                  std::to_string(conn->options_.connect_timeout_ms) + " ms"));
}

void Connection::StartReading() { uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead); }

void Connection::OnAlloc(uv_handle_t* handle, std::size_t, uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(handle->data);
  *buf = uv_buf_init(conn->read_buffer_, sizeof(conn->read_buffer_));
}

void Connection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* conn = static_cast<Connection*>(stream->data);
  if (nread == 0) return;  // EAGAIN
  if (nread < 0) {
    if (conn->close_after_flush_) {  // the peer answered our FIN (or failed): done
      conn->Close(conn->close_reason_);
      return;
    }
    conn->Close(nread == UV_EOF ? Status::Unavailable("peer " + conn->remote_address_ + " closed the connection")
                                : Status::IOError("read from " + conn->remote_address_ + ": " +
                                                  uv_strerror(static_cast<int>(nread))));
    return;
  }
  conn->stats_.bytes_in += static_cast<std::uint64_t>(nread);
  std::vector<std::string> frames;
  Status st = conn->decoder_.Feed(std::string_view(buf->base, static_cast<std::size_t>(nread)), frames);
  for (std::string& frame : frames) {
    if (conn->state_ != State::kOpen || conn->close_after_flush_) break;  // the owner closed us from a frame callback
    ++conn->stats_.frames_in;
    if (conn->callbacks_.on_frame) conn->callbacks_.on_frame(*conn, std::move(frame));
  }
  if (!st.ok()) {
    // TooLarge (a length over the bound) stays TooLarge so the owner can count it apart.
    std::string what = "from " + conn->remote_address_ + ": " + st.message();
    conn->Close(st.code() == StatusCode::kTooLarge ? Status::TooLarge(std::move(what))
                                                   : Status::Corruption(std::move(what)));
  }
}

bool Connection::Send(std::string_view payload) {
  if (state_ == State::kClosing || close_after_flush_) return false;
  if (payload.empty() || payload.size() > options_.max_frame_bytes) {
    // Our own bug if it happens; the peer would drop us for it anyway.
    Close(Status::InvalidArgument("refusing to send a frame of " + std::to_string(payload.size()) + " bytes"));
    return false;
  }
  AppendFrame(payload, pending_);
  ++stats_.frames_out;
  if (queued_bytes() > options_.max_queued_bytes) {
    Close(Status::Unavailable("peer " + remote_address_ + " is too slow: " + std::to_string(queued_bytes()) +
                              " bytes queued, bound " + std::to_string(options_.max_queued_bytes)));
    return false;
  }
  MaybeWrite();
  return true;
}

void Connection::MaybeWrite() {
  if (state_ != State::kOpen || writing_ || pending_.empty()) return;
  in_flight_.swap(pending_);
  pending_.clear();
  uv_buf_t buf = uv_buf_init(in_flight_.data(), static_cast<unsigned>(in_flight_.size()));
  write_req_.data = this;
  int rc = uv_write(&write_req_, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, OnWrite);
  if (rc != 0) {
    Close(Status::IOError("write to " + remote_address_ + ": " + uv_strerror(rc)));
    return;
  }
  writing_ = true;
}

void Connection::OnWrite(uv_write_t* req, int status) {
  auto* conn = static_cast<Connection*>(req->data);
  conn->writing_ = false;
  conn->stats_.bytes_out += conn->in_flight_.size();
  conn->in_flight_.clear();
  if (status != 0) {
    // UV_ECANCELED: we are closing and libuv cancelled the write.
    if (status != UV_ECANCELED) {
      conn->Close(Status::IOError("write to " + conn->remote_address_ + ": " + uv_strerror(status)));
    }
    return;
  }
  conn->MaybeWrite();
  if (conn->close_after_flush_ && !conn->writing_ && conn->pending_.empty()) conn->StartShutdown();
}

void Connection::Close(Status reason) {
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  close_reason_ = std::move(reason);
  pending_.clear();
  uv_timer_stop(&connect_timer_);
  auto on_close = [](uv_handle_t* h) { static_cast<Connection*>(h->data)->OnHandleClosed(); };
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&connect_timer_), on_close);
}

void Connection::CloseAfterFlush(Status reason) {
  if (state_ == State::kClosing || close_after_flush_) return;
  if (state_ != State::kOpen) {
    Close(std::move(reason));
    return;
  }
  close_after_flush_ = true;
  close_reason_ = std::move(reason);
  // Bounded: a peer that neither reads what we send nor answers our FIN
  // does not keep the connection. The connect timer is idle once connected.
  connect_timer_.data = this;
  uv_timer_start(&connect_timer_, OnFlushTimeout, options_.connect_timeout_ms, 0);
  if (!writing_ && pending_.empty()) StartShutdown();
}

// Half-close once everything is written, and keep reading (and discarding)
// until the peer closes its side: closing a socket with unread input makes
// Linux send a reset, which can destroy our last frames (a Refuse, a
// DISCONNECT) before the peer reads them.
void Connection::StartShutdown() {
  if (shutdown_started_) return;
  shutdown_started_ = true;
  shutdown_req_.data = this;
  int rc = uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), [](uv_shutdown_t* req, int status) {
    auto* conn = static_cast<Connection*>(req->data);
    if (status != 0 && status != UV_ECANCELED) conn->Close(conn->close_reason_);
  });
  if (rc != 0) Close(close_reason_);
}

void Connection::OnFlushTimeout(uv_timer_t* timer) {
  auto* conn = static_cast<Connection*>(timer->data);
  conn->Close(conn->close_reason_);
}

void Connection::OnHandleClosed() {
  if (--open_handles_ > 0) return;
  // Both handles are closed: any write or connect request has completed
  // (cancelled) by now, so nothing in libuv refers to this object any more.
  if (callbacks_.on_closed) callbacks_.on_closed(*this, close_reason_);
  delete this;
}

}  // namespace gv::transport
