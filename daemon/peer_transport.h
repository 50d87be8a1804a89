// PeerTransport: the agent's peer connections — TCP, length-prefixed frames,
// one verified FlatBuffers Envelope per frame (wire/envelope.h), and the
// handshake — turned into (peer NodeId, message) pairs for the protocol cores.
//
// Handshake: each side sends Hello first. A Hello from another cluster, with
// another protocol version, or with our own node id is answered with Refuse
// and the connection closes once the Refuse is written; the refusal is logged
// and counted. Until its Hello arrives a connection carries nothing else (a
// frame of another type closes it), and a connection that sends no Hello
// within handshake_timeout_ms is closed.
//
// Peers. Messages go to a NodeId. The transport keeps, per peer, its
// handshaked connections (usually one; two when both sides dialled at once,
// both kept, the oldest used for sending) and an address book (id -> dial
// address) fed by Hellos and by the address entries every envelope carries
// for the nodes its message names. Sending to a peer without a connection
// dials its address and queues the frames until the handshake completes.
//
// Losses. When a connection to a peer fails — a dial, or an established
// connection this side did not close — the peer is lost: its other
// connections are closed (a link must stay FIFO and lossless for HyParView)
// and on_peer_lost reports it once, with the reason; the agent decides
// whether the membership layer hears PeerDown (see Agent). Closes this side
// asked for (ClosePeer, idle close, Close) are not losses. Connections to peers the
// agent no longer needs (keep_peer() false) are closed after idle_close_ms
// without traffic, silently.
//
// Callbacks never run inside a call into the transport: frames arrive from
// libuv callbacks; failures found while sending are reported from a zero
// timeout, so a protocol core never re-enters itself.
//
// Ownership: the transport owns the listener, its tick timer and every
// Connection (which free themselves in their close callbacks). Close() closes
// them all; on_closed runs once the last handle is gone.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/node_id.h"
#include "common/status.h"
#include "daemon/net_address.h"
#include "daemon/transport/connection.h"
#include "daemon/transport/frame_cipher.h"
#include "wire/envelope.h"

namespace gv::daemon {

struct PeerTransportOptions {
  std::string cluster;
  NodeId self;
  std::string name;
  std::string advertise;  // "IP:PORT" sent in Hello
  // 32 raw bytes (--cluster-key): every frame, the Hello included, is sealed
  // with it (XSalsa20-Poly1305), so only holders of the key can take part.
  // Empty: frames travel in the clear.
  std::string cluster_key;
  transport::ConnectionOptions connection;
  wire::EnvelopeLimits limits;
  std::uint64_t handshake_timeout_ms = 5000;
  std::uint64_t idle_close_ms = 15000;
  std::size_t max_frames_while_dialing = 4096;
  std::size_t max_bytes_while_dialing = 16u << 20;
  std::size_t max_address_book = 100000;
  // Until its Hello arrives a connection takes frames of at most this size (a
  // Hello is well under 1 KiB): an unknown peer cannot make us buffer 16 MiB.
  std::size_t handshake_max_frame_bytes = 64 * 1024;
  std::size_t max_connections = 1024;          // open connections in all
  std::size_t max_connections_per_peer = 2;    // both sides may dial at once
};

// Counters for /metrics (message types are wire::PeerMessageTypeName values).
struct PeerTransportMetrics {
  std::map<std::string, std::uint64_t> messages_sent;      // by type
  std::map<std::string, std::uint64_t> messages_received;  // by type
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::map<std::string, std::uint64_t> frames_rejected;    // by reason: decode, decrypt, handshake, handshake_timeout, unexpected
  std::map<std::string, std::uint64_t> disconnects;        // by reason
  std::uint64_t connections_accepted = 0;
  std::uint64_t dials = 0;
  std::uint64_t dial_failures = 0;
};

enum class PeerLossReason {
  kDialFailed,    // could not connect or the handshake failed
  kConnectionLost,  // an established connection closed (EOF, error, too slow)
};

class PeerTransport {
 public:
  struct Callbacks {
    // A verified message from a handshaked peer, with the envelope's address
    // entries already merged into the address book.
    std::function<void(NodeId from, wire::PeerMessage message)> on_message;
    std::function<void(NodeId peer, PeerLossReason reason, const Status& why)> on_peer_lost;
    // A seed address (DialSeed) answered: its node id.
    std::function<void(const std::string& address, NodeId node)> on_seed_identified;
    std::function<void(const std::string& address, const Status& why)> on_seed_failed;
    // Whether a connection to `peer` should stay open while idle.
    std::function<bool(NodeId peer)> keep_peer;
  };

  PeerTransport(uv_loop_t* loop, PeerTransportOptions options, Callbacks callbacks);
  ~PeerTransport();
  PeerTransport(const PeerTransport&) = delete;
  PeerTransport& operator=(const PeerTransport&) = delete;

  Status Listen(const net::SocketAddress& address);
  int port() const { return port_; }

  // Connects to an address whose node id is unknown (a --join seed); its
  // Hello then reports the id through on_seed_identified, a failure through
  // on_seed_failed.
  void DialSeed(const std::string& address);

  // Queues `message` for `to`. The address book entries for every node the
  // message names are attached. A peer without a connection or a known
  // address is reported lost (asynchronously).
  void Send(NodeId to, const wire::PeerMessage& message);
  // Closes every connection to `peer` after writing what is queued. Not
  // reported through on_peer_lost.
  void ClosePeer(NodeId peer);
  // Whether a handshaked connection to `peer` is open (not closing).
  bool Connected(NodeId peer) const;

  void AddAddress(NodeId node, const std::string& address);
  std::optional<std::string> AddressOf(NodeId node) const;
  std::optional<std::string> NameOf(NodeId node) const;

  // InvalidArgument for a cluster key of the wrong length.
  Status Init();

  // Closes everything (flushing queued frames first, bounded by the
  // connection timeout); on_closed runs when the last handle is closed.
  void Close(std::function<void()> on_closed);

  const PeerTransportMetrics& metrics() const { return metrics_; }
  std::size_t open_connections() const { return connections_.size(); }

 private:
  struct ConnState;
  struct Peer {
    std::vector<transport::Connection*> connections;  // handshaked, oldest first
    transport::Connection* dialing = nullptr;          // outbound, handshake pending
    std::vector<std::string> queued;                   // frames waiting for `dialing`
    std::size_t queued_bytes = 0;
    bool close_after_handshake = false;                // ClosePeer while dialling
    std::uint64_t last_activity_ms = 0;
  };

  transport::Connection* Dial(const std::string& address, std::optional<NodeId> expected);
  void SetUp(transport::Connection* conn, bool outbound, std::optional<NodeId> expected, std::string seed_address);
  void OnFrame(transport::Connection& conn, std::string frame);
  void OnHello(transport::Connection& conn, ConnState& state, const wire::Hello& hello);
  void OnClosed(transport::Connection& conn, const Status& reason);
  void Refuse(transport::Connection& conn, const std::string& reason, StatusCode code = StatusCode::kInvalidArgument);
  bool SendFrame(transport::Connection& conn, const std::string& frame);
  std::string Encode(const wire::PeerMessage& message) const;
  void ReportLostLater(NodeId peer, PeerLossReason reason, Status why);
  void Tick();
  std::uint64_t NowMs() const { return uv_now(loop_); }

  static void OnConnection(uv_stream_t* server, int status);

  uv_loop_t* loop_;
  PeerTransportOptions options_;
  Callbacks callbacks_;
  PeerTransportMetrics metrics_;
  std::optional<transport::FrameCipher> cipher_;

  uv_tcp_t listener_{};
  bool listening_ = false;
  uv_timer_t tick_timer_{};
  uv_timer_t deferred_timer_{};
  int port_ = 0;

  std::set<transport::Connection*> connections_;  // every open connection
  std::map<NodeId, Peer> peers_;
  std::map<NodeId, std::pair<std::string, std::string>> address_book_;  // id -> (address, name)
  struct DeferredLoss {
    NodeId peer;
    PeerLossReason reason;
    Status why;
  };
  std::vector<DeferredLoss> deferred_losses_;

  bool closing_ = false;
  int open_handles_ = 0;
  std::function<void()> on_closed_;
  void MaybeFinishClose();
};

}  // namespace gv::daemon
