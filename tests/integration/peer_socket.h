// PeerSocket: a hand-driven TCP connection to an agent's peer port, for
// feeding it bad or hostile input (garbage bytes, frames that fail
// verification, a wrong cluster name, a peer that never reads). Blocking
// POSIX sockets; every read is bounded by a deadline.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/node_id.h"
#include "common/status.h"
#include "wire/envelope.h"

namespace gv::integration {

class PeerSocket {
 public:
  // Connects to 127.0.0.1:port.
  static Result<std::unique_ptr<PeerSocket>> Connect(int port);
  ~PeerSocket();
  PeerSocket(const PeerSocket&) = delete;
  PeerSocket& operator=(const PeerSocket&) = delete;

  Status SendBytes(std::string_view bytes);
  // u32 big-endian length + payload.
  Status SendFrame(std::string_view payload);
  Status SendEnvelope(const wire::Envelope& envelope) { return SendFrame(wire::EncodeEnvelope(envelope)); }

  // Reads the next whole frame (at most max_frame_bytes). Unavailable when the
  // agent closed the connection, Aborted on timeout.
  Result<std::string> ReadFrame(std::chrono::milliseconds timeout, std::size_t max_frame_bytes = 16u << 20);
  // Reads the next frame and decodes it as an envelope.
  Result<wire::Envelope> ReadEnvelope(std::chrono::milliseconds timeout);

  // Reads and discards until the agent closes the connection (EOF or reset).
  // OK once closed; Aborted if it is still open after `timeout`.
  Status WaitClosed(std::chrono::milliseconds timeout);

  // Closes with SO_LINGER 0 (a reset: no FIN handshake to wait for).
  void Abort();

  int fd() const { return fd_; }

 private:
  explicit PeerSocket(int fd) : fd_(fd) {}
  // Reads whatever arrives within `timeout` into buffer_. Unavailable on EOF or
  // reset, Aborted on timeout.
  Status ReadSome(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
};

// A Hello from a test node: cluster name, the current protocol version, a
// node id, name and advertised address.
wire::Envelope HelloEnvelope(std::string cluster, NodeId node, std::string name, std::string address);

// Connects, sends a Hello for `node`, and reads the agent's Hello back
// (checking that it is one). The connection is then past the handshake.
Result<std::unique_ptr<PeerSocket>> ConnectAndHandshake(int port, const std::string& cluster, NodeId node,
                                                        const std::string& name, const std::string& address);

}  // namespace gv::integration
