// Agent: one grapevine node — the IO shell around the protocol cores
// (DESIGN.md §1). It owns the libuv-side pieces (peer transport, HTTP
// server, WAL writer thread, timers) and the cores (HyParView, Plumtree, the
// store), turns every source into a core event stamped with the loop's time,
// and executes what the cores ask for.
//
//   peer frame ──► PeerTransport ──► HyParView / Plumtree / anti-entropy
//   HyParView  ──NeighborUp/Down──► Plumtree ──Deliver──► Store ──► WAL
//   HTTP PUT   ──► KvService ──► Store ──► WAL ──durable──► Plumtree broadcast ──► answer
//
// Re-entrancy: a core is never called from inside its own handle(). Inputs
// are queued and drained by one pump loop; outputs that produce new inputs
// (NeighborUp for Plumtree, a failed send) are queued behind them.
//
// Peer losses reach HyParView as PeerDown when they matter to it: an active
// or requested peer's connection closed, or a dial failed (a dead passive
// candidate). A short-lived connection to a non-active peer (a SHUFFLE's)
// that the other side closed when idle is not a failure.
//
// Catch-up: the agent keeps the most recent encoded deltas (--catchup-tail,
// also bounded in bytes) in memory, refilled from the WAL at start-up. A node
// asks a peer for what it lacks (SyncRequest with its applied vector) when a
// neighbour comes up, when a gap in the applied vector outlives
// gap_timeout_ms, and every --sync-interval. When the peer's tail does not
// reach back far enough (or the node was away longer than tombstone_gc) the
// peer answers snapshot_needed and the node pulls a snapshot instead
// (SnapshotService), then resumes deltas from its vector.
//
// Persistence: start-up installs the newest valid snapshot, then replays the
// WAL over it (records the snapshot covers are duplicates). Every
// --snapshot-every applied deltas a local snapshot is written and the WAL
// segments it covers are deleted, keeping --catchup-tail records.
//
// Topology: every node broadcasts its overlay record (views, eager/lazy sets,
// applied vector) every overlay_record_interval_ms and when its views change
// (at most once a second), so any node can draw the whole overlay.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "broadcast/plumtree.h"
#include "common/node_id.h"
#include "common/node_set.h"
#include "common/prng.h"
#include "common/status.h"
#include "common/time.h"
#include "daemon/agent_config.h"
#include "daemon/data_dir.h"
#include "daemon/http/server.h"
#include "daemon/dns/dns_server.h"
#include "daemon/kv_service.h"
#include "daemon/locator.h"
#include "wire/overlay_record.h"
#include "daemon/peer_transport.h"
#include "daemon/snapshot_service.h"
#include "daemon/ui_service.h"
#include "daemon/wal_writer.h"
#include "fs/file_system.h"
#include "membership/hyparview.h"
#include "statestore/store.h"
#include "wal/wal.h"

namespace gv::daemon {

struct AgentOptions {
  membership::HyParViewConfig hyparview;
  broadcast::PlumtreeConfig plumtree;
  std::uint64_t housekeeping_interval_ms = 500;
  std::uint64_t gap_timeout_ms = 1000;
  std::size_t max_held_back_deltas = 16384;  // a quarter held back asks a peer at once
  // Records are broadcasts: more often than Plumtree's origin_tree_burst_gap
  // (10 s) would make every node a "frequent origin" with a tree of its own.
  std::uint64_t overlay_record_interval_ms = 15000;
  std::uint64_t overlay_record_min_gap_ms = 2000;  // after a view change
  // After the applied vector changed (so the web UI can count the agents that
  // have a write) or the Plumtree tree changed (a GRAFT or PRUNE): at most one
  // record per max(overlay_record_min_gap_ms, this x known nodes), i.e. at
  // most 10 records/s cluster-wide however busy the cluster is, each received
  // by every node. (A tree change used to count as a view change, 2 s apart
  // at any size: 100 idle agents then sent each other ~130 GOSSIP per agent
  // per second, whose duplicates changed the tree again; docs/ui.md.)
  std::uint64_t busy_record_gap_per_node_ms = 100;
  std::uint64_t overlay_record_expiry_ms = 60000;
  std::uint64_t seed_retry_interval_ms = 2000;
  // DATA/peers (daemon/known_peers.h, docs/agent.md): checked as soon as the
  // agent has an active peer, then this often, and rewritten when the peers
  // it knows changed.
  std::uint64_t known_peers_save_interval_ms = 30000;
  // With no --join seed, an agent restarted with remembered peers dials them
  // this long before it starts an overlay of its own (they may be restarting
  // too). Alone, it keeps dialing them (RejoinIfIsolated).
  std::uint64_t remembered_peers_wait_ms = 5000;
  std::uint64_t max_sync_reply_bytes = 4u << 20;
  std::size_t catchup_tail_max_bytes = 256u << 20;
  std::uint64_t tombstone_gc_check_interval_ms = 60000;
  std::size_t max_overlay_records = 100000;
  std::uint64_t sync_reply_timeout_ms = 30000;
  SnapshotServiceOptions snapshot;  // snapshot_every / catchup_tail come from the config
  LocatorOptions locator;
  std::size_t max_snapshot_upload_bytes = 512u << 20;  // PUT /v1/snapshot (h2o buffers the body)
};

struct AgentMetrics {
  std::uint64_t deltas_applied = 0;       // remote deltas applied (held-back ones once released)
  std::uint64_t deltas_duplicate = 0;
  std::uint64_t deltas_held_back = 0;
  std::uint64_t deltas_rejected = 0;
  std::uint64_t antientropy_rounds = 0;   // SyncRequests sent
  std::uint64_t antientropy_served = 0;   // SyncRequests answered
  std::uint64_t antientropy_deltas = 0;   // deltas received in SyncReplies and applied
  std::uint64_t overlay_records_received = 0;
  std::uint64_t payloads_unknown = 0;     // broadcast payloads of no known type
  std::uint64_t wal_failures = 0;
  std::uint64_t peer_losses_reported = 0;  // PeerDown events given to HyParView
  std::uint64_t sync_replies_unexpected = 0;
  std::uint64_t sync_snapshot_needed = 0;  // SyncRequests answered "pull a snapshot"
  std::uint64_t sync_refused_stale = 0;    // SyncRequests answered with nothing while stale
  std::uint64_t recovery_snapshot_entries = 0;  // loaded at start-up
  std::uint64_t recovery_wal_records = 0;       // replayed at start-up
};

class Agent {
 public:
  // Opens the data directory (taking its lock), recovers the WAL into the
  // store, binds the peer, HTTP listeners and starts joining. The loop must
  // then run; Shutdown() ends it.
  static Result<std::unique_ptr<Agent>> Start(uv_loop_t* loop, ResolvedAgentConfig config, AgentOptions options = {});
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  // Graceful leave: announces it, stops taking requests, flushes the WAL,
  // closes every connection and handle; on_done runs once all are closed.
  void Shutdown(std::function<void()> on_done);

  NodeId id() const { return self_; }
  int peer_port() const { return transport_ ? transport_->port() : 0; }
  int http_port() const { return http_ ? http_->port() : 0; }
  int dns_port() const { return dns_ ? dns_->port() : 0; }

 private:
  using CoreTimer = std::variant<membership::Timer, broadcast::Timer>;
  using CoreEvent = std::variant<membership::InEvent, broadcast::InEvent>;

  struct TailEntry {
    std::string encoded;
  };

  Agent(uv_loop_t* loop, ResolvedAgentConfig config, AgentOptions options);
  Status Open();

  TimePoint Now() const;
  static std::uint64_t WallMs();

  // ---- the event pump ----
  void Post(CoreEvent event);
  void Pump();
  void RunMembership(const membership::InEvent& event);
  void RunBroadcast(const broadcast::InEvent& event);
  void Schedule(TimePoint at, CoreTimer timer);
  void ArmTimer();
  void OnTimerExpired();

  // ---- transport ----
  void OnPeerMessage(NodeId from, wire::PeerMessage message);
  void OnPeerLost(NodeId peer, PeerLossReason reason, const Status& why);
  void OnSeedIdentified(const std::string& address, NodeId node);
  void OnSeedFailed(const std::string& address, const Status& why);
  void MaybeJoin();
  // Joined, but with no active and no passive peer: HyParView re-joins only
  // through the seeds it was given, which may all be gone. Offer it every
  // identified seed and the alive members whose address we know.
  void RejoinIfIsolated(std::uint64_t now_ms);
  // Short of active peers with no passive peer left to ask (a small
  // cluster's passive views are empty): offer HyParView the alive members
  // whose address we know (KnownPeers), or the survivors of a failure can stay
  // split in components that know nothing of each other.
  void OfferKnownMembers();
  // Rewrites DATA/peers when the addresses of this agent's active view,
  // passive view and alive members (in that order, at most kMaxKnownPeers)
  // changed; see AgentOptions::known_peers_save_interval_ms.
  void MaybeSaveKnownPeers(std::uint64_t now_ms);

  // ---- state ----
  void OnDeliver(const broadcast::Deliver& deliver);
  void ApplyRemoteDelta(std::string encoded, bool from_sync);
  void RememberDelta(const statestore::Delta& delta, std::string encoded);
  void RequestSync(NodeId peer);
  void OnSyncRequest(NodeId from, const wire::SyncRequest& request);
  void OnSyncReply(NodeId from, const wire::SyncReply& reply);
  // After a snapshot replaced the state: our own recent deltas back in, readers woken, the rest asked for.
  void OnSnapshotInstalled(const std::string& source, bool replaced);
  // Conflict if installing a snapshot with this vector would drop own writes
  // the catch-up tail cannot re-apply (their seqs would then be reused).
  Status CheckSnapshotInstall(const statestore::VersionVector& snapshot_applied) const;
  // How long this node has been cut off from the cluster (SyncRequest.away_ms).
  std::uint64_t AwayMs() const;
  void Housekeeping();
  std::optional<NodeId> RandomActivePeer();

  // ---- topology ----
  wire::OverlayRecord LocalRecord() const;
  void PublishRecord(bool left);
  void OnOverlayRecord(std::string_view payload, NodeId origin);

  // ---- HTTP ----
  void RegisterRoutes();
  std::string StatusJson(bool with_digest) const;
  std::string TopologyJson() const;
  std::string MetricsText() const;

  uv_loop_t* loop_;
  ResolvedAgentConfig config_;
  AgentOptions options_;
  NodeId self_;
  Prng rng_;
  std::uint64_t started_wall_ms_ = 0;

  std::unique_ptr<fs::FileSystem> fs_;
  std::unique_ptr<DataDirLock> lock_;
  std::unique_ptr<statestore::Store> store_;
  std::unique_ptr<wal::Wal> wal_;
  std::unique_ptr<WalWriter> wal_writer_;
  std::unique_ptr<KvService> kv_;
  std::unique_ptr<SnapshotService> snapshot_;
  std::unique_ptr<Locator> locator_;
  std::unique_ptr<UiService> ui_;  // /ui/ and /v1/events
  std::unique_ptr<dns::Lookup> dns_lookup_;  // over locator_ and store_; outlives dns_
  std::unique_ptr<dns::DnsServer> dns_;
  std::uint64_t locator_seq_ = 0;  // member/service broadcast ids (with kLocatorIdBit)
  std::unique_ptr<http::HttpServer> http_;
  std::unique_ptr<PeerTransport> transport_;
  std::unique_ptr<membership::HyParView> hyparview_;
  std::unique_ptr<broadcast::Plumtree> plumtree_;

  // Core timers by due time; one uv timer is armed for the earliest.
  std::multimap<TimePoint, CoreTimer> timers_;
  uv_timer_t core_timer_{};
  uv_timer_t housekeeping_timer_{};
  int open_timers_ = 0;

  std::deque<CoreEvent> pending_;
  bool pumping_ = false;

  // Seeds (--join): address -> node id once its Hello arrived.
  std::map<std::string, std::optional<NodeId>> seeds_;
  std::set<std::string> seeds_dialing_;
  bool had_seeds_ = false;
  std::uint64_t seed_refusals_ = 0;
  bool joined_ = false;
  std::uint64_t last_seed_attempt_ms_ = 0;
  std::uint64_t isolated_since_ms_ = 0;  // 0: not isolated
  std::uint64_t rejoins_ = 0;            // JoinRequests posted by RejoinIfIsolated
  // Seeds read from DATA/peers (a subset of seeds_'s keys; an address also
  // given with --join counts as --join). Unlike --join seeds, they may be
  // gone for good: a refusal drops one, and when only they are left and none
  // answered within remembered_peers_wait_ms the agent starts alone.
  std::set<std::string> remembered_seeds_;
  std::uint64_t remembered_wait_started_ms_ = 0;  // 0: not waiting yet
  // DATA/peers as last read or written, and when the agent last checked it.
  std::string known_peers_text_;
  std::uint64_t known_peers_checked_ms_ = 0;  // 0: never
  std::uint64_t known_peers_saves_ = 0;
  std::uint64_t known_peers_save_failures_ = 0;

  // Recent encoded deltas for catch-up, per origin by seq, evicted oldest first.
  std::map<NodeId, std::map<std::uint64_t, TailEntry>> tail_;
  std::deque<statestore::DeltaId> tail_order_;
  std::size_t tail_bytes_ = 0;

  std::map<NodeId, std::uint64_t> sync_outstanding_;  // peers asked with SyncRequest -> when (loop ms)
  std::uint64_t gap_seen_since_ms_ = 0;  // 0: no gap outstanding
  std::uint64_t last_sync_ms_ = 0;
  std::uint64_t last_gc_ms_ = 0;
  std::uint64_t last_record_ms_ = 0;
  // Wall time this node last heard from the cluster (a remote delta applied
  // or a sync answered); at start-up the newest HLC in the recovered state. 0: never.
  std::uint64_t last_contact_wall_ms_ = 0;
  // A SyncRequest said this node was away longer than tombstone_gc: the next
  // snapshot installed replaces the state instead of merging into it.
  bool stale_ = false;
  bool views_changed_ = false;  // HyParView active view
  bool tree_changed_ = false;   // Plumtree eager/lazy sets
  bool applied_changed_ = false;        // since the last record published
  // The highest own seq that is durable and handed to the broadcast and the
  // catch-up tail; local writes above it are applied but still in the WAL.
  std::uint64_t own_seq_handed_off_ = 0;
  NodeSet last_eager_, last_lazy_;  // Plumtree's sets at the last check (GRAFT/PRUNE)
  std::string malloc_huge_pages_ = "off";  // MallocHugePagesState() at start-up, for /v1/status
  std::uint64_t record_seq_ = 0;
  std::map<NodeId, std::pair<wire::OverlayRecord, std::uint64_t>> records_;  // id -> (record, received at ms)

  AgentMetrics metrics_;
  std::map<std::string, std::uint64_t> payload_messages_sent_;  // GOSSIPs by payload kind
  bool shutdown_started_ = false;
  bool draining_ = false;       // Shutdown phase 1: WAL closing, no remote deltas applied
  bool shutting_down_ = false;  // phase 2: cores stopped, connections closing
  void FinishLeave();
  std::function<void()> on_shutdown_done_;
  int closing_components_ = 0;
  void ComponentClosed();
};

}  // namespace gv::daemon
