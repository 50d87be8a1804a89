// Locator: the service locator's IO shell (issue 6, docs/services.md) — the
// member list with failure detection and the service catalog (both sans-IO
// cores in membership/), their HTTP API, metrics, and the lookups the DNS
// server answers from.
//
//   GET    /v1/members                   [{"name","id","address","status","tags",...}]  ?status= ?tag=K=V
//   PUT    /v1/services                  {"id","name","address","port","tags":[],"meta":{},"ttl":"10s"}
//   PUT    /v1/services/<id>/pass        refreshes the TTL
//   DELETE /v1/services/<id>
//   GET    /v1/services                  ["name", ...]
//   GET    /v1/services/<name>           healthy instances; ?all adds critical ones
// Every read answers X-Grapevine-Index; ?index=N&wait=30s holds it until
// what it covers changes past N (members: the member list; a service name:
// that name's instances; the names: any service).
//
// The agent wires it: broadcast payloads whose file identifier is a
// locator's (IsLocatorPayload) go to OnBroadcast; LocatorState messages to
// OnPeerState; HyParView's NeighborUp to OnNeighborUp; an active-view
// neighbour's failed connection (not a deliberate close) to OnPeerFailed;
// any other NeighborDown to OnNeighborDown.
// Records leave through host.broadcast (Plumtree, this node as origin) and
// host.send_to_peer (a LocatorState to one neighbour).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "common/prng.h"
#include "daemon/http/server.h"
#include "daemon/prometheus.h"
#include "membership/member_list.h"
#include "membership/service_catalog.h"

namespace gv::daemon {

struct LocatorHost {
  NodeId self;
  std::string name, peer_address, http_address, dns_address;  // "IP:PORT"
  std::map<std::string, std::string> tags;
  std::function<void(std::string payload)> broadcast;               // a Plumtree broadcast from this node
  std::function<void(NodeId peer, std::string data)> send_to_peer;  // one LocatorState message
  std::function<std::uint64_t()> wall_ms;
  // Optional: a member's status changed (member null: reaped). The web UI's event stream.
  std::function<void(NodeId node, const membership::MemberRecord* member)> on_member_changed;
};

struct LocatorOptions {
  // kill -9 -> failed everywhere = connection loss + one broadcast +
  // suspicion_timeout (+ up to one check interval): well within 2 s on a LAN.
  std::uint64_t suspicion_timeout_ms = 1000;
  std::uint64_t reap_after_ms = 24ull * 3600 * 1000;
  std::uint64_t check_interval_ms = 100;   // suspicion and TTL timers' resolution
  // Every this often, the table goes to one random known neighbour, which
  // answers with its own (push-pull anti-entropy for records a broadcast missed).
  std::uint64_t state_sync_interval_ms = 30000;
  std::int64_t default_wait_ms = 5 * 60 * 1000;
  std::int64_t max_wait_ms = 10 * 60 * 1000;
  std::size_t max_blocking_reads = 10000;
  std::size_t max_members = 10000;
  std::size_t max_services = 50000;
  std::size_t max_local_services = 1000;
};

struct LocatorMetrics {
  std::uint64_t records_received = 0;  // member and service broadcasts decoded
  std::uint64_t records_invalid = 0;   // broadcasts or tables that failed to decode or validate
  std::uint64_t tables_sent = 0;
  std::uint64_t tables_received = 0;
  std::uint64_t broadcasts_sent = 0;
};

class Locator {
 public:
  Locator(uv_loop_t* loop, LocatorHost host, LocatorOptions options = {});
  ~Locator();
  Locator(const Locator&) = delete;
  Locator& operator=(const Locator&) = delete;

  // Broadcasts this node's alive record and starts the check timer.
  void Start();

  // Whether a broadcast payload is a member or service record (file identifier).
  static bool IsLocatorPayload(std::string_view payload);
  // A delivered broadcast payload (IsLocatorPayload true) from `origin`. A
  // node speaks only for itself (alive, left, its services) or as the
  // reporter of a suspicion/failure: other payloads are dropped and counted.
  void OnBroadcast(std::string_view payload, NodeId origin);
  // A LocatorState message's data (a "GVL1" table).
  void OnPeerState(NodeId from, std::string_view data);
  // A new active-view neighbour: it gets our whole table.
  void OnNeighborUp(NodeId peer);
  // An active-view neighbour's connection failed: suspect it.
  void OnPeerFailed(NodeId peer);
  // A neighbour left the active view without failing (HyParView's
  // NeighborDown after a DISCONNECT): no longer a target of the periodic
  // table exchange. Nothing is suspected.
  void OnNeighborDown(NodeId peer);

  void RegisterRoutes(http::HttpServer& server);
  void WriteMetrics(PrometheusWriter& w) const;

  // Graceful leave, phase 1: broadcasts our left record (and marks our
  // services gone with it).
  void Leave();
  // Answers every waiting read and closes the timers; on_closed runs once
  // every handle is closed.
  void Close(std::function<void()> on_closed);

  // ---- lookups (the DNS server) ----
  struct ServiceAnswer {
    std::string node_name;
    std::string address;
    std::uint16_t port = 0;
  };
  // Passing instances of `service_name`, ordered by (owner, id).
  std::vector<ServiceAnswer> HealthyInstances(std::string_view service_name) const;
  // The IP of an alive (or suspect) member's peer address, by node name.
  std::optional<std::string> NodeAddress(std::string_view node_name) const;

  // ---- for tests and the agent ----
  const membership::MemberList& members() const { return *members_; }
  const membership::ServiceCatalog& services() const { return *catalog_; }
  const LocatorMetrics& metrics() const { return metrics_; }

  struct Impl;  // the HTTP side (locator.cc)

 private:
  membership::LocatorClock Clock() const;
  http::Response WithIndex(http::Response response, std::uint64_t index) const;
  http::Response MembersResponse(const http::Request& req) const;
  http::Response NamesResponse() const;
  http::Response InstancesResponse(const http::Request& req) const;
  http::Response HandleRegister(const http::Request& req);
  http::Response HandlePass(const http::Request& req);
  http::Response HandleDeregister(const http::Request& req);
  void Flush(membership::MemberOutbox& member_out, std::vector<membership::ServiceRecord>& service_out);
  void OnMemberChanges(const std::vector<membership::MemberChange>& changes);
  void Check();
  void SendTable(NodeId peer, bool reply_wanted);

  uv_loop_t* loop_;
  LocatorHost host_;
  LocatorOptions options_;
  Prng rng_;
  std::unique_ptr<membership::MemberList> members_;
  std::unique_ptr<membership::ServiceCatalog> catalog_;
  std::set<NodeId> neighbors_;  // seen in NeighborUp and not failed since
  bool announced_to_neighbor_ = false;
  bool left_ = false;
  std::uint64_t last_state_sync_ms_ = 0;
  LocatorMetrics metrics_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gv::daemon
