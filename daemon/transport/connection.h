// Connection: one TCP connection to a peer, carrying length-prefixed frames.
//
// Ownership (libuv's rules): a Connection is heap-allocated and owns its
// uv_tcp_t and connect timer; it deletes itself in the last close callback,
// right after calling on_closed exactly once. Whoever holds the pointer must
// drop it in on_closed. Close() may be called any number of times; only the
// first reason is reported.
//
// Back-pressure: frames waiting to be written are bounded by
// max_queued_bytes. A peer that does not read fast enough to stay under the
// bound is treated as failed (DESIGN.md §2: a slow peer counts as failed):
// the connection closes with an Unavailable status saying so.
#pragma once

#include <uv.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "daemon/net_address.h"
#include "daemon/transport/frame.h"

namespace gv::transport {

struct ConnectionOptions {
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  std::size_t max_queued_bytes = 8 * 1024 * 1024;
  std::uint64_t connect_timeout_ms = 3000;
};

struct ConnectionStats {
  std::uint64_t frames_in = 0;
  std::uint64_t frames_out = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
};

class Connection {
 public:
  using FrameCallback = std::function<void(Connection&, std::string frame)>;
  using ConnectedCallback = std::function<void(Connection&)>;
  using ClosedCallback = std::function<void(Connection&, const Status& reason)>;

  struct Callbacks {
    ConnectedCallback on_connected;  // outgoing connections only
    FrameCallback on_frame;
    ClosedCallback on_closed;
  };

  // Accepts a pending connection from `listener`. Returns null (and closes
  // what it opened) if accept fails.
  static Connection* Accept(uv_stream_t* listener, ConnectionOptions options, Callbacks callbacks);
  // Starts connecting; on_connected or on_closed follows.
  static Connection* Connect(uv_loop_t* loop, const net::SocketAddress& to, ConnectionOptions options,
                             Callbacks callbacks);

  // Queues one frame. Returns false if the connection is closing or the
  // queue bound was crossed (in which case it is now closing).
  bool Send(std::string_view payload);
  void Close(Status reason);
  // Delivers no more frames, writes out every queued frame, half-closes
  // (FIN), and closes with `reason` once the peer closed its side or
  // connect_timeout_ms passed (a Refuse or a DISCONNECT must reach the peer
  // before the close). A connection still connecting closes at once.
  void CloseAfterFlush(Status reason);

  // Frames longer than this (at most options.max_frame_bytes) close the
  // connection; frames already being received keep the limit they started with.
  void SetMaxFrameBytes(std::size_t max_frame_bytes) {
    decoder_.set_max_frame_bytes(std::min(max_frame_bytes, options_.max_frame_bytes));
  }
  bool open() const { return state_ == State::kOpen && !close_after_flush_; }
  const std::string& remote_address() const { return remote_address_; }
  const ConnectionStats& stats() const { return stats_; }
  std::size_t queued_bytes() const { return pending_.size() + in_flight_.size(); }

  // Free for the owner's use (e.g. the peer id once the handshake is done).
  void* user_data = nullptr;

 private:
  enum class State { kConnecting, kOpen, kClosing };
  Connection(uv_loop_t* loop, ConnectionOptions options, Callbacks callbacks);
  ~Connection() = default;

  void StartReading();
  void MaybeWrite();
  void OnHandleClosed();

  static void OnAlloc(uv_handle_t* handle, std::size_t suggested, uv_buf_t* buf);
  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
  static void OnWrite(uv_write_t* req, int status);
  static void OnConnect(uv_connect_t* req, int status);
  static void OnConnectTimeout(uv_timer_t* timer);
  static void OnFlushTimeout(uv_timer_t* timer);
  void StartShutdown();

  uv_tcp_t tcp_{};
  uv_timer_t connect_timer_{};
  uv_connect_t connect_req_{};
  uv_write_t write_req_{};
  int open_handles_ = 0;

  ConnectionOptions options_;
  Callbacks callbacks_;
  State state_ = State::kConnecting;
  Status close_reason_;
  FrameDecoder decoder_;
  std::string pending_;    // frames queued behind the write in flight
  std::string in_flight_;  // owned by libuv until OnWrite
  bool writing_ = false;
  bool close_after_flush_ = false;
  bool shutdown_started_ = false;
  uv_shutdown_t shutdown_req_{};
  char read_buffer_[64 * 1024];
  std::string remote_address_;
  ConnectionStats stats_;
};

}  // namespace gv::transport
