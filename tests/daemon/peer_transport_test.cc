// PeerTransport over real loopback sockets: handshake, refusal, address book,
// flushing close, loss reporting, cluster-key sealing; every test ends with
// no handle left open on the loop.
#include <doctest/doctest.h>
#include <uv.h>

#include <csignal>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/peer_transport.h"

// GCC 12 reports nested std::variant temporaries as maybe-uninitialized (a
// known false positive of its variant storage analysis); nothing here is.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

using namespace gv;
using namespace gv::daemon;

namespace {

struct Received {
  NodeId from;
  wire::PeerMessage message;
};

struct Lost {
  NodeId peer;
  PeerLossReason reason;
  std::string why;
};

// One transport with everything it reports recorded.
struct Node {
  std::unique_ptr<PeerTransport> transport;
  std::vector<Received> received;
  std::vector<Lost> lost;
  std::vector<std::pair<std::string, NodeId>> seeds_identified;
  std::vector<std::string> seeds_failed;
  bool keep = true;
  NodeId id;
  std::string address;

  Node(uv_loop_t* loop, std::uint64_t id_value, std::string cluster, std::string key = {}) : id(id_value) {
    PeerTransportOptions options;
    options.cluster = std::move(cluster);
    options.self = id;
    options.name = "node-" + std::to_string(id_value);
    options.cluster_key = std::move(key);
    options.idle_close_ms = 1500;
    PeerTransport::Callbacks callbacks;
    callbacks.on_message = [this](NodeId from, wire::PeerMessage m) { received.push_back({from, std::move(m)}); };
    callbacks.on_peer_lost = [this](NodeId peer, PeerLossReason reason, const Status& why) {
      lost.push_back({peer, reason, why.message()});
    };
    callbacks.on_seed_identified = [this](const std::string& a, NodeId n) { seeds_identified.emplace_back(a, n); };
    callbacks.on_seed_failed = [this](const std::string& a, const Status&) { seeds_failed.push_back(a); };
    callbacks.keep_peer = [this](NodeId) { return keep; };
    // Listen first so the Hello can advertise the real port.
    auto listen_address = net::ParseSocketAddress("127.0.0.1:0");
    REQUIRE(listen_address.ok());
    options.advertise = "127.0.0.1:0";
    transport = std::make_unique<PeerTransport>(loop, options, std::move(callbacks));
    REQUIRE(transport->Init().ok());
    REQUIRE(transport->Listen(*listen_address).ok());
    address = "127.0.0.1:" + std::to_string(transport->port());
  }
};

// Runs the loop until `done` holds or `timeout_ms` passes; false on timeout.
bool RunUntil(uv_loop_t* loop, const std::function<bool()>& done, std::uint64_t timeout_ms = 5000) {
  const std::uint64_t deadline = uv_now(loop) + timeout_ms;
  while (!done()) {
    if (uv_now(loop) > deadline) return false;
    uv_run(loop, UV_RUN_ONCE);
    uv_update_time(loop);
  }
  return true;
}

void CloseAll(uv_loop_t* loop, std::vector<Node*> nodes) {
  int open = static_cast<int>(nodes.size());
  for (Node* node : nodes) node->transport->Close([&open] { --open; });
  REQUIRE(RunUntil(loop, [&] { return open == 0; }));
  for (Node* node : nodes) node->transport.reset();
  uv_run(loop, UV_RUN_NOWAIT);
  CHECK(uv_loop_close(loop) == 0);
}

wire::PeerMessage KeepAliveMessage() { return membership::Message{membership::KeepAlive{}}; }

}  // namespace

TEST_CASE("peer transport: a message to a node id dials it, handshakes and arrives; addresses travel along") {
  std::signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  Node a(&loop, 0xA, "c1");
  Node b(&loop, 0xB, "c1");
  a.transport->AddAddress(b.id, b.address);
  // A SHUFFLE naming node C: B must learn C's address from the envelope.
  a.transport->AddAddress(NodeId(0xC), "127.0.0.1:9");
  a.transport->Send(b.id, membership::Message{membership::Shuffle{a.id, 2, {a.id, NodeId(0xC)}}});
  a.transport->Send(b.id, KeepAliveMessage());
  REQUIRE(RunUntil(&loop, [&] { return b.received.size() == 2; }));
  CHECK(b.received[0].from == a.id);
  CHECK(std::holds_alternative<membership::Message>(b.received[0].message));
  CHECK(b.transport->AddressOf(NodeId(0xC)) == std::optional<std::string>("127.0.0.1:9"));
  CHECK(b.transport->NameOf(a.id) == std::optional<std::string>("node-10"));
  CHECK(a.transport->Connected(b.id));
  CHECK(b.transport->Connected(a.id));
  // The reverse direction reuses the inbound connection: no second dial.
  b.transport->Send(a.id, KeepAliveMessage());
  REQUIRE(RunUntil(&loop, [&] { return a.received.size() == 1; }));
  CHECK(b.transport->metrics().dials == 0);
  CHECK(a.transport->metrics().messages_sent.at("SHUFFLE") == 1);
  CHECK(b.transport->metrics().messages_received.at("KEEPALIVE") == 1);
  CHECK(a.lost.empty());
  CHECK(b.lost.empty());
  CloseAll(&loop, {&a, &b});
}

TEST_CASE("peer transport: another cluster is refused with a reason, counted, and reported as a failed dial") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Node a(&loop, 0xA, "blue");
  Node b(&loop, 0xB, "green");
  a.transport->AddAddress(b.id, b.address);
  a.transport->Send(b.id, KeepAliveMessage());
  REQUIRE(RunUntil(&loop, [&] { return !a.lost.empty(); }));
  CHECK(a.lost[0].peer == b.id);
  CHECK(a.lost[0].reason == PeerLossReason::kDialFailed);
  CHECK(a.lost[0].why.find("cluster mismatch") != std::string::npos);
  CHECK(b.received.empty());
  // Both Hellos cross: each side refuses the other and counts it.
  CHECK(b.transport->metrics().frames_rejected.at("handshake") == 1);
  CHECK(a.transport->metrics().frames_rejected.at("handshake") == 1);
  CloseAll(&loop, {&a, &b});
}

TEST_CASE("peer transport: a seed address is identified by its Hello; an unreachable one fails") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Node a(&loop, 0xA, "c1");
  Node b(&loop, 0xB, "c1");
  a.transport->DialSeed(b.address);
  // Port 1 on loopback: nothing listens there, the connect is refused.
  a.transport->DialSeed("127.0.0.1:1");
  REQUIRE(RunUntil(&loop, [&] { return a.seeds_identified.size() == 1 && a.seeds_failed.size() == 1; }));
  CHECK(a.seeds_identified[0] == std::make_pair(b.address, b.id));
  CHECK(a.seeds_failed[0] == "127.0.0.1:1");
  CloseAll(&loop, {&a, &b});
}

TEST_CASE("peer transport: ClosePeer writes out what is queued first and is not a loss; the other side sees one") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Node a(&loop, 0xA, "c1");
  Node b(&loop, 0xB, "c1");
  a.transport->AddAddress(b.id, b.address);
  for (int i = 0; i < 200; ++i) a.transport->Send(b.id, KeepAliveMessage());
  a.transport->ClosePeer(b.id);
  REQUIRE(RunUntil(&loop, [&] { return b.received.size() == 200 && !b.lost.empty(); }));
  CHECK(b.lost[0].peer == a.id);
  CHECK(b.lost[0].reason == PeerLossReason::kConnectionLost);
  CHECK(a.lost.empty());
  CHECK_FALSE(a.transport->Connected(b.id));
  CloseAll(&loop, {&a, &b});
}

TEST_CASE("peer transport: idle connections to peers not kept are closed silently") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Node a(&loop, 0xA, "c1");
  Node b(&loop, 0xB, "c1");
  a.keep = false;
  a.transport->AddAddress(b.id, b.address);
  a.transport->Send(b.id, KeepAliveMessage());
  REQUIRE(RunUntil(&loop, [&] { return b.received.size() == 1; }));
  REQUIRE(RunUntil(&loop, [&] { return !a.transport->Connected(b.id); }, 6000));
  CHECK(a.lost.empty());
  CloseAll(&loop, {&a, &b});
}

TEST_CASE("peer transport: with a cluster key, peers holding it talk and a peer without it is dropped and counted") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  const std::string key(32, 'k');
  Node a(&loop, 0xA, "c1", key);
  Node b(&loop, 0xB, "c1", key);
  Node c(&loop, 0xC, "c1", std::string(32, 'x'));
  a.transport->AddAddress(b.id, b.address);
  a.transport->AddAddress(c.id, c.address);
  a.transport->Send(b.id, KeepAliveMessage());
  a.transport->Send(c.id, KeepAliveMessage());
  REQUIRE(RunUntil(&loop, [&] { return b.received.size() == 1 && !a.lost.empty(); }));
  CHECK(a.lost[0].peer == c.id);
  CHECK(c.received.empty());
  CHECK(c.transport->metrics().frames_rejected.at("decrypt") >= 1);
  CloseAll(&loop, {&a, &b, &c});
}

TEST_CASE("peer transport: a cluster key of the wrong length is refused at Init") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  PeerTransportOptions options;
  options.cluster = "c1";
  options.self = NodeId(1);
  options.cluster_key = "short";
  PeerTransport transport(&loop, options, {});
  CHECK_FALSE(transport.Init().ok());
  bool closed = false;
  transport.Close([&] { closed = true; });
  REQUIRE(RunUntil(&loop, [&] { return closed; }));
  CHECK(uv_loop_close(&loop) == 0);
}
