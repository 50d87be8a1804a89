#include "daemon/peer_transport.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "common/overloaded.h"

namespace gv::daemon {

// Per-connection bookkeeping, owned through Connection::user_data and freed
// in OnClosed (the Connection frees itself right after).
struct PeerTransport::ConnState {
  bool outbound = false;
  bool handshaked = false;
  bool deliberate_close = false;  // we closed it on purpose: not a peer loss
  bool rejection_counted = false;  // frames_rejected already counts why it closes
  NodeId peer;                     // once handshaked
  std::optional<NodeId> expected;  // outbound to a known node
  std::string seed_address;        // outbound to a --join seed
  std::uint64_t opened_ms = 0;
};

namespace {

// Nodes a message names, whose dial addresses the envelope carries along.
void NamedNodes(const wire::PeerMessage& message, std::vector<NodeId>& out) {
  const auto* membership_message = std::get_if<membership::Message>(&message);
  if (membership_message == nullptr) return;
  std::visit(Overloaded{
                 [&](const membership::ForwardJoin& m) { out.push_back(m.new_node); },
                 [&](const membership::NeighborReply& m) { out.insert(out.end(), m.candidates.begin(), m.candidates.end()); },
                 [&](const membership::Shuffle& m) {
                   out.push_back(m.origin);
                   out.insert(out.end(), m.nodes.begin(), m.nodes.end());
                 },
                 [&](const membership::ShuffleReply& m) { out.insert(out.end(), m.nodes.begin(), m.nodes.end()); },
                 [&](const auto&) {},
             },
             *membership_message);
}

std::string LossCategory(const Status& reason) {
  switch (reason.code()) {
    case StatusCode::kCorruption: return "framing";
    case StatusCode::kUnavailable: return "closed";
    case StatusCode::kIOError: return "io_error";
    case StatusCode::kInvalidArgument: return "refused";
    default: return "other";
  }
}

}  // namespace

PeerTransport::PeerTransport(uv_loop_t* loop, PeerTransportOptions options, Callbacks callbacks)
    : loop_(loop), options_(std::move(options)), callbacks_(std::move(callbacks)) {
  uv_timer_init(loop_, &tick_timer_);
  tick_timer_.data = this;
  ++open_handles_;
  uv_timer_init(loop_, &deferred_timer_);
  deferred_timer_.data = this;
  ++open_handles_;
  uv_timer_start(
      &tick_timer_, [](uv_timer_t* t) { static_cast<PeerTransport*>(t->data)->Tick(); }, 1000, 1000);
}

PeerTransport::~PeerTransport() = default;

Status PeerTransport::Init() {
  if (options_.cluster_key.empty()) return Status::Ok();
  auto cipher = transport::FrameCipher::Create(options_.cluster_key);
  if (!cipher.ok()) return cipher.status();
  cipher_.emplace(std::move(*cipher));
  return Status::Ok();
}

Status PeerTransport::Listen(const net::SocketAddress& address) {
  uv_tcp_init(loop_, &listener_);
  listener_.data = this;
  ++open_handles_;
  listening_ = true;
  int rc = uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&address.storage), 0);
  if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, OnConnection);
  if (rc != 0) {
    return Status::Unavailable("cannot listen for peers on " + address.ToString() + ": " + uv_strerror(rc) +
                               " (is another agent using --bind " + address.ToString() + "?)");
  }
  sockaddr_storage bound{};
  int len = sizeof(bound);
  uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = net::PortOf(bound);
  return Status::Ok();
}

void PeerTransport::OnConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<PeerTransport*>(server->data);
  if (status != 0 || self->closing_) return;
  transport::Connection::Callbacks callbacks;
  callbacks.on_frame = [self](transport::Connection& c, std::string frame) { self->OnFrame(c, std::move(frame)); };
  callbacks.on_closed = [self](transport::Connection& c, const Status& why) { self->OnClosed(c, why); };
  if (self->connections_.size() >= self->options_.max_connections) {
    // Accept and drop at once: leaving it in the backlog would only delay the refusal.
    ++self->metrics_.frames_rejected["too_many_connections"];
    callbacks.on_closed = nullptr;
    transport::Connection* extra = transport::Connection::Accept(server, self->options_.connection, std::move(callbacks));
    if (extra != nullptr) extra->Close(Status::Unavailable("too many peer connections"));
    return;
  }
  transport::Connection* conn = transport::Connection::Accept(server, self->options_.connection, std::move(callbacks));
  if (conn == nullptr) return;
  ++self->metrics_.connections_accepted;
  self->SetUp(conn, /*outbound=*/false, std::nullopt, "");
}

void PeerTransport::SetUp(transport::Connection* conn, bool outbound, std::optional<NodeId> expected,
                          std::string seed_address) {
  auto* state = new ConnState;
  state->outbound = outbound;
  state->expected = expected;
  state->seed_address = std::move(seed_address);
  state->opened_ms = NowMs();
  conn->user_data = state;
  conn->SetMaxFrameBytes(options_.handshake_max_frame_bytes +
                         (cipher_ ? transport::FrameCipher::kOverheadBytes : 0));
  connections_.insert(conn);
  // Both sides speak first: the Hello goes out now (an outbound connection
  // writes it once connected).
  wire::Hello hello{options_.cluster, wire::kPeerProtocolVersion, options_.self, options_.name, options_.advertise};
  SendFrame(*conn, Encode(hello));
}

transport::Connection* PeerTransport::Dial(const std::string& address, std::optional<NodeId> expected) {
  ++metrics_.dials;
  Result<net::SocketAddress> to = net::ParseSocketAddress(address);
  if (!to.ok()) return nullptr;
  transport::Connection::Callbacks callbacks;
  callbacks.on_frame = [this](transport::Connection& c, std::string frame) { OnFrame(c, std::move(frame)); };
  callbacks.on_closed = [this](transport::Connection& c, const Status& why) { OnClosed(c, why); };
  transport::Connection* conn = transport::Connection::Connect(loop_, *to, options_.connection, std::move(callbacks));
  SetUp(conn, /*outbound=*/true, expected, expected ? "" : address);
  return conn;
}

void PeerTransport::DialSeed(const std::string& address) {
  if (closing_) return;
  if (Dial(address, std::nullopt) == nullptr && callbacks_.on_seed_failed) {
    callbacks_.on_seed_failed(address, Status::InvalidArgument("not an IP:PORT address"));
  }
}

bool PeerTransport::SendFrame(transport::Connection& conn, const std::string& frame) {
  if (cipher_) {
    std::string sealed = cipher_->Seal(frame);
    metrics_.bytes_sent += sealed.size() + 4;
    return conn.Send(sealed);
  }
  metrics_.bytes_sent += frame.size() + 4;
  return conn.Send(frame);
}

std::string PeerTransport::Encode(const wire::PeerMessage& message) const {
  wire::Envelope envelope{message, {}};
  std::vector<NodeId> named;
  NamedNodes(message, named);
  std::sort(named.begin(), named.end());
  named.erase(std::unique(named.begin(), named.end()), named.end());
  for (NodeId node : named) {
    if (envelope.addresses.size() >= options_.limits.max_address_book) break;
    if (node == options_.self) {
      envelope.addresses.push_back({node, options_.advertise});
    } else if (auto it = address_book_.find(node); it != address_book_.end()) {
      envelope.addresses.push_back({node, it->second.first});
    }
  }
  return wire::EncodeEnvelope(envelope);
}

void PeerTransport::Send(NodeId to, const wire::PeerMessage& message) {
  if (closing_) return;
  ++metrics_.messages_sent[wire::PeerMessageTypeName(message)];
  std::string frame = Encode(message);
  auto it = peers_.find(to);
  if (it != peers_.end()) {
    // A connection being closed (ClosePeer) takes nothing more: the message
    // then goes over another one, or a new dial.
    for (transport::Connection* conn : it->second.connections) {
      if (!conn->open()) continue;
      it->second.last_activity_ms = NowMs();
      SendFrame(*conn, frame);  // a failure arrives through OnClosed
      return;
    }
  }
  if (it != peers_.end() && it->second.dialing != nullptr) {
    Peer& peer = it->second;
    // The peer is wanted again before a ClosePeer took effect: keep the link.
    peer.close_after_handshake = false;
    static_cast<ConnState*>(peer.dialing->user_data)->deliberate_close = false;
    if (peer.queued.size() >= options_.max_frames_while_dialing ||
        peer.queued_bytes + frame.size() > options_.max_bytes_while_dialing) {
      peer.dialing->Close(Status::Unavailable("more than " + std::to_string(peer.queued.size()) + " frames (" +
                                              std::to_string(peer.queued_bytes) + " bytes) queued while connecting"));
      return;
    }
    peer.queued_bytes += frame.size();
    peer.queued.push_back(std::move(frame));
    return;
  }
  auto address = address_book_.find(to);
  if (address == address_book_.end()) {
    ReportLostLater(to, PeerLossReason::kDialFailed, Status::NotFound("no address known for " + to.ToString()));
    return;
  }
  transport::Connection* conn = Dial(address->second.first, to);
  if (conn == nullptr) {
    ReportLostLater(to, PeerLossReason::kDialFailed,
                    Status::InvalidArgument("bad address '" + address->second.first + "' for " + to.ToString()));
    return;
  }
  Peer& peer = peers_[to];
  peer.dialing = conn;
  peer.last_activity_ms = NowMs();
  peer.queued_bytes += frame.size();
  peer.queued.push_back(std::move(frame));
}

void PeerTransport::ClosePeer(NodeId peer_id) {
  auto it = peers_.find(peer_id);
  if (it == peers_.end()) return;
  Peer& peer = it->second;
  for (transport::Connection* conn : peer.connections) {
    static_cast<ConnState*>(conn->user_data)->deliberate_close = true;
    conn->CloseAfterFlush(Status::Ok());
  }
  if (peer.dialing != nullptr) {
    // Still handshaking: what is queued (a DISCONNECT, say) goes out first.
    static_cast<ConnState*>(peer.dialing->user_data)->deliberate_close = true;
    peer.close_after_handshake = true;
  }
}

bool PeerTransport::Connected(NodeId peer) const {
  auto it = peers_.find(peer);
  if (it == peers_.end()) return false;
  return std::any_of(it->second.connections.begin(), it->second.connections.end(),
                     [](const transport::Connection* c) { return c->open(); });
}

void PeerTransport::AddAddress(NodeId node, const std::string& address) {
  if (node == options_.self || !net::ParseSocketAddress(address).ok()) return;
  auto it = address_book_.find(node);
  if (it != address_book_.end()) {
    it->second.first = address;
  } else if (address_book_.size() < options_.max_address_book) {
    address_book_.emplace(node, std::make_pair(address, std::string()));
  }
}

std::optional<std::string> PeerTransport::AddressOf(NodeId node) const {
  if (node == options_.self) return options_.advertise;
  auto it = address_book_.find(node);
  if (it == address_book_.end()) return std::nullopt;
  return it->second.first;
}

std::optional<std::string> PeerTransport::NameOf(NodeId node) const {
  if (node == options_.self) return options_.name;
  auto it = address_book_.find(node);
  if (it == address_book_.end() || it->second.second.empty()) return std::nullopt;
  return it->second.second;
}

void PeerTransport::Refuse(transport::Connection& conn, const std::string& reason, StatusCode code) {
  // Not a deliberate close: a refused dial to a known node or a seed is
  // reported (OnClosed) as a failed dial, with the reason.
  // The reason quotes the peer's own strings: keep it within the limit the
  // peer's decoder enforces, or it would refuse the Refuse.
  SendFrame(conn, Encode(wire::Refuse{reason.substr(0, options_.limits.max_string_bytes)}));
  conn.CloseAfterFlush(code == StatusCode::kConflict ? Status::Conflict(reason) : Status::InvalidArgument(reason));
}

void PeerTransport::OnFrame(transport::Connection& conn, std::string frame) {
  auto* state = static_cast<ConnState*>(conn.user_data);
  metrics_.bytes_received += frame.size() + 4;
  if (cipher_) {
    Result<std::string> opened = cipher_->Open(frame);
    if (!opened.ok()) {
      ++metrics_.frames_rejected["decrypt"];
    state->rejection_counted = true;
      spdlog::warn("peer {}: dropping the connection: {} (do both agents use the same --cluster-key?)",
                   conn.remote_address(), opened.status().message());
      conn.Close(opened.status());
      return;
    }
    frame = std::move(*opened);
  }
  Result<wire::Envelope> envelope = wire::DecodeEnvelope(frame, options_.limits);
  if (!envelope.ok()) {
    ++metrics_.frames_rejected["decode"];
    state->rejection_counted = true;
    spdlog::warn("peer {}: dropping the connection: a frame failed verification: {}", conn.remote_address(),
                 envelope.status().ToString());
    conn.Close(envelope.status());
    return;
  }
  wire::PeerMessage& message = envelope->message;
  if (!state->handshaked) {
    if (const auto* refuse = std::get_if<wire::Refuse>(&message)) {
      ++metrics_.disconnects["refused_by_peer"];
      spdlog::warn("peer {} refused the connection: {}", conn.remote_address(), refuse->reason);
      conn.Close(Status::Unavailable("refused by peer: " + refuse->reason));
      return;
    }
    if (const auto* hello = std::get_if<wire::Hello>(&message)) {
      OnHello(conn, *state, *hello);
      return;
    }
    ++metrics_.frames_rejected["unexpected"];
    state->rejection_counted = true;
    spdlog::warn("peer {}: dropping the connection: {} before the handshake", conn.remote_address(),
                 wire::PeerMessageTypeName(message));
    conn.Close(Status::InvalidArgument("message before the handshake"));
    return;
  }
  if (std::holds_alternative<wire::Hello>(message) || std::holds_alternative<wire::Refuse>(message)) {
    ++metrics_.frames_rejected["unexpected"];
    state->rejection_counted = true;
    conn.Close(Status::InvalidArgument("a second handshake message"));
    return;
  }
  ++metrics_.messages_received[wire::PeerMessageTypeName(message)];
  for (const wire::AddressBookEntry& entry : envelope->addresses) {
    // A third party's word never replaces an address learned from the node's
    // own Hello (or from an earlier entry): it only fills in unknown nodes.
    if (address_book_.count(entry.node) == 0) AddAddress(entry.node, entry.address);
  }
  auto peer = peers_.find(state->peer);
  if (peer != peers_.end()) peer->second.last_activity_ms = NowMs();
  if (callbacks_.on_message) callbacks_.on_message(state->peer, std::move(message));
}

void PeerTransport::OnHello(transport::Connection& conn, ConnState& state, const wire::Hello& hello) {
  std::string refusal;
  if (hello.cluster != options_.cluster) {
    refusal = "cluster mismatch: this agent is in cluster '" + options_.cluster + "', the peer in '" + hello.cluster +
              "' (check --cluster on both)";
  } else if (hello.protocol_version != wire::kPeerProtocolVersion) {
    refusal = "protocol version mismatch: this agent speaks " + std::to_string(wire::kPeerProtocolVersion) +
              ", the peer " + std::to_string(hello.protocol_version) + " (upgrade the older agent)";
  } else if (hello.node == options_.self) {
    refusal = "the peer has this agent's own node id " + options_.self.ToString() +
              " (a --join address pointing at itself, or a copied data directory)";
  } else if (!net::ParseSocketAddress(hello.address).ok()) {
    refusal = "the peer advertises an invalid address '" + hello.address + "'";
  }
  const bool is_self = hello.node == options_.self && hello.cluster == options_.cluster;
  if (refusal.empty() && hello.node != options_.self) {
    auto existing = peers_.find(hello.node);
    // Only live connections count: ones being closed are on their way out.
    const auto live = existing == peers_.end()
                          ? 0
                          : std::count_if(existing->second.connections.begin(), existing->second.connections.end(),
                                          [](const transport::Connection* c) { return c->open(); });
    if (live > 0) {
      auto known = address_book_.find(hello.node);
      if (known != address_book_.end() && known->second.first != hello.address) {
        refusal = "duplicate node id " + hello.node.ToString() + ": already connected to it at " +
                  known->second.first + ", this one says " + hello.address +
                  " (was a data directory copied? each agent needs its own)";
      } else if (static_cast<std::size_t>(live) >= options_.max_connections_per_peer) {
        refusal = "already " + std::to_string(live) + " connections to " + hello.node.ToString();
      }
    }
  }
  if (!refusal.empty()) {
    ++metrics_.frames_rejected["handshake"];
    if (is_self) {
      spdlog::info("peer {} is this agent itself; not connecting to it", conn.remote_address());
    } else {
      spdlog::warn("refusing peer {} ({} at {}): {}", conn.remote_address(), hello.name, hello.address, refusal);
    }
    // Connecting to ourselves (a --join list naming this agent) is not an
    // error the operator must fix: Conflict lets the agent just drop that seed.
    Refuse(conn, refusal, is_self ? StatusCode::kConflict : StatusCode::kInvalidArgument);
    return;
  }
  if (state.expected && *state.expected != hello.node) {
    // The address now belongs to another node (a restart with a new data dir).
    ++metrics_.frames_rejected["handshake"];
    spdlog::info("peer at {} is now {} ({}), not {}", conn.remote_address(), hello.node.ToString(), hello.name,
                 state.expected->ToString());
    conn.Close(Status::Unavailable("node id changed"));
    return;
  }
  state.handshaked = true;
  state.peer = hello.node;
  conn.SetMaxFrameBytes(options_.connection.max_frame_bytes);
  if (address_book_.count(hello.node) != 0 || address_book_.size() < options_.max_address_book) {
    address_book_[hello.node] = {hello.address, hello.name};
  }
  Peer& peer = peers_[hello.node];
  peer.last_activity_ms = NowMs();
  const bool was_dialing = peer.dialing == &conn;
  if (was_dialing) peer.dialing = nullptr;
  peer.connections.push_back(&conn);
  // Frames queued while dialling go out on the first handshaked connection.
  transport::Connection* first = peer.connections.front();
  for (const std::string& frame : peer.queued) SendFrame(*first, frame);
  peer.queued.clear();
  peer.queued_bytes = 0;
  spdlog::debug("peer {} ({}) at {} connected ({})", hello.node.ToString(), hello.name, hello.address,
                state.outbound ? "outbound" : "inbound");
  if (!state.seed_address.empty() && callbacks_.on_seed_identified) {
    callbacks_.on_seed_identified(state.seed_address, hello.node);
  }
  if (was_dialing && peer.close_after_handshake) {
    peer.close_after_handshake = false;
    for (transport::Connection* c : peer.connections) {
      static_cast<ConnState*>(c->user_data)->deliberate_close = true;
      c->CloseAfterFlush(Status::Ok());
    }
  }
}

void PeerTransport::OnClosed(transport::Connection& conn, const Status& reason) {
  auto* state = static_cast<ConnState*>(conn.user_data);
  conn.user_data = nullptr;
  connections_.erase(&conn);
  const bool failed = !state->deliberate_close && !closing_;
  if (!state->deliberate_close) ++metrics_.disconnects[LossCategory(reason)];
  if (!state->deliberate_close && !state->rejection_counted &&
      (reason.code() == StatusCode::kTooLarge || reason.code() == StatusCode::kCorruption)) {
    // The frame layer refused the stream (a length over the bound, a zero length).
    ++metrics_.frames_rejected[reason.code() == StatusCode::kTooLarge ? "oversize" : "framing"];
    spdlog::warn("peer {}: dropping the connection: {}", conn.remote_address(), reason.message());
  }
  if (!state->handshaked && state->outbound) ++metrics_.dial_failures;

  std::optional<NodeId> lost;
  PeerLossReason loss_reason = state->handshaked ? PeerLossReason::kConnectionLost : PeerLossReason::kDialFailed;
  const NodeId peer_id = state->handshaked ? state->peer : state->expected.value_or(NodeId{});
  if (auto it = peers_.find(peer_id); peer_id.value != 0 && it != peers_.end()) {
    Peer& peer = it->second;
    const bool ours = std::find(peer.connections.begin(), peer.connections.end(), &conn) != peer.connections.end() ||
                      peer.dialing == &conn;
    if (ours && failed) {
      // The link is broken: whatever it carried may be lost, so the peer is
      // lost, even if another connection to it (closing, or a second one
      // from a simultaneous dial) is still there. Those close too.
      for (transport::Connection* other : peer.connections) {
        if (other == &conn) continue;
        static_cast<ConnState*>(other->user_data)->deliberate_close = true;
        other->Close(Status::Unavailable("another connection to the peer failed"));
      }
      if (peer.dialing != nullptr && peer.dialing != &conn) {
        static_cast<ConnState*>(peer.dialing->user_data)->deliberate_close = true;
        peer.dialing->Close(Status::Unavailable("another connection to the peer failed"));
      }
      peers_.erase(it);
      lost = peer_id;
    } else if (ours) {
      std::erase(peer.connections, &conn);
      if (peer.dialing == &conn) peer.dialing = nullptr;
      if (peer.connections.empty() && peer.dialing == nullptr) peers_.erase(it);
    }
  }
  if (!state->handshaked && !state->seed_address.empty() && !state->deliberate_close && !closing_ &&
      callbacks_.on_seed_failed) {
    callbacks_.on_seed_failed(state->seed_address, reason);
  }
  delete state;
  if (lost && callbacks_.on_peer_lost) callbacks_.on_peer_lost(*lost, loss_reason, reason);
  MaybeFinishClose();
}

void PeerTransport::ReportLostLater(NodeId peer, PeerLossReason reason, Status why) {
  deferred_losses_.push_back({peer, reason, std::move(why)});
  uv_timer_start(
      &deferred_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<PeerTransport*>(t->data);
        std::vector<DeferredLoss> losses;
        losses.swap(self->deferred_losses_);
        for (const DeferredLoss& loss : losses) {
          if (self->closing_) break;
          if (self->Connected(loss.peer)) continue;  // it connected to us meanwhile
          if (self->callbacks_.on_peer_lost) self->callbacks_.on_peer_lost(loss.peer, loss.reason, loss.why);
        }
      },
      0, 0);
}

void PeerTransport::Tick() {
  const std::uint64_t now = NowMs();
  std::vector<transport::Connection*> to_close;
  for (transport::Connection* conn : connections_) {
    auto* state = static_cast<ConnState*>(conn->user_data);
    if (!state->handshaked && now - state->opened_ms > options_.handshake_timeout_ms) to_close.push_back(conn);
  }
  for (transport::Connection* conn : to_close) {
    ++metrics_.frames_rejected["handshake_timeout"];
    conn->Close(Status::Unavailable("no handshake within " + std::to_string(options_.handshake_timeout_ms) + " ms"));
  }
  std::vector<NodeId> idle;
  for (const auto& [id, peer] : peers_) {
    if (now - peer.last_activity_ms < options_.idle_close_ms) continue;
    const bool any_open = std::any_of(peer.connections.begin(), peer.connections.end(),
                                      [](const transport::Connection* c) { return c->open(); });
    if (!any_open && peer.dialing == nullptr) continue;  // closing already
    if (callbacks_.keep_peer && callbacks_.keep_peer(id)) continue;
    idle.push_back(id);
  }
  for (NodeId id : idle) ClosePeer(id);
}

void PeerTransport::Close(std::function<void()> on_closed) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(on_closed);
  auto on_handle_closed = [](uv_handle_t* h) {
    auto* self = static_cast<PeerTransport*>(h->data);
    --self->open_handles_;
    self->MaybeFinishClose();
  };
  if (listening_) uv_close(reinterpret_cast<uv_handle_t*>(&listener_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick_timer_), on_handle_closed);
  uv_close(reinterpret_cast<uv_handle_t*>(&deferred_timer_), on_handle_closed);
  std::vector<transport::Connection*> all(connections_.begin(), connections_.end());
  for (transport::Connection* conn : all) {
    static_cast<ConnState*>(conn->user_data)->deliberate_close = true;
    conn->CloseAfterFlush(Status::Ok());
  }
}

void PeerTransport::MaybeFinishClose() {
  if (!closing_ || open_handles_ > 0 || !connections_.empty() || !on_closed_) return;
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

}  // namespace gv::daemon
