#include "daemon/agent.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <utility>

#include "common/huge_pages.h"
#include "common/overloaded.h"
#include "daemon/json_views.h"
#include "daemon/known_peers.h"
#include "daemon/prometheus.h"
#include "fs/posix_file_system.h"
#include "wire/delta_codec.h"

namespace gv::daemon {

namespace {

using json = nlohmann::json;

constexpr std::uint64_t kRecordIdBit = 1ull << 63;  // overlay-record broadcast ids; delta ids are seqs
constexpr std::uint64_t kLocatorIdBit = 1ull << 62;  // member and service record broadcast ids

// What the DNS endpoint answers from: the service catalog and member list
// (Locator) and the replicated key/value store.
class AgentDnsLookup final : public dns::Lookup {
 public:
  AgentDnsLookup(const Locator& locator, const statestore::Store& store) : locator_(locator), store_(store) {}
  std::vector<dns::ServiceTarget> HealthyInstances(std::string_view service) const override {
    std::vector<dns::ServiceTarget> out;
    for (const Locator::ServiceAnswer& answer : locator_.HealthyInstances(service)) {
      out.push_back(dns::ServiceTarget{answer.node_name, answer.address, answer.port});
    }
    return out;
  }
  std::optional<std::string> NodeAddress(std::string_view node) const override { return locator_.NodeAddress(node); }
  std::optional<std::string> KvValue(std::string_view key) const override {
    const statestore::KeyEntry* entry = store_.Get(key);
    if (entry == nullptr) return std::nullopt;
    return entry->value;
  }

 private:
  const Locator& locator_;
  const statestore::Store& store_;
};

std::uint64_t RandomU64() {
  std::uint64_t value = 0;
  while (value == 0) randombytes_buf(&value, sizeof(value));
  return value;
}

// The origin's counter in an applied vector (0 when absent).
std::uint64_t AppliedSeq(const statestore::VersionVector& applied, NodeId origin) {
  auto it = applied.find(origin);
  return it == applied.end() ? 0 : it->second;
}

}  // namespace

// ------------------------------------------------------------------ start-up

Agent::Agent(uv_loop_t* loop, ResolvedAgentConfig config, AgentOptions options)
    : loop_(loop), config_(std::move(config)), options_(std::move(options)), rng_(RandomU64()) {}

Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::Start(uv_loop_t* loop, ResolvedAgentConfig config, AgentOptions options) {
  std::unique_ptr<Agent> agent(new Agent(loop, std::move(config), std::move(options)));
  Status status = agent->Open();
  if (!status.ok()) {
    // Close whatever libuv handles were opened; the loop holds nothing else yet.
    bool closed = false;
    agent->Shutdown([&closed] { closed = true; });
    while (!closed && uv_run(loop, UV_RUN_ONCE) != 0) {
    }
    return status;
  }
  return agent;
}

TimePoint Agent::Now() const { return TimeFromMicros(static_cast<std::int64_t>(uv_hrtime() / 1000)); }

std::uint64_t Agent::WallMs() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

Status Agent::Open() {
  started_wall_ms_ = WallMs();
  const std::string& dir = config_.raw.data_dir;
  fs_ = std::make_unique<fs::PosixFileSystem>();
  Status dirs = CreateDirs(*fs_, dir);
  if (!dirs.ok()) return Status::IOError("--data-dir " + dir + ": " + dirs.message());
  auto lock = DataDirLock::Acquire(dir);
  if (!lock.ok()) return lock.status();
  lock_ = std::move(*lock);
  GV_RETURN_IF_ERROR(CreateDirs(*fs_, dir + "/snapshots"));
  auto node_id = LoadOrCreateNodeId(*fs_, dir, NodeId{RandomU64()});
  if (!node_id.ok()) return node_id.status();
  self_ = *node_id;
  // The peers of the last run: only a hint, so a damaged file is reported and
  // replaced once this agent has peers again, never a reason not to start.
  auto remembered = LoadKnownPeers(*fs_, dir);
  if (remembered.ok()) {
    known_peers_text_ = EncodeKnownPeers(*remembered);
    for (const net::SocketAddress& peer : *remembered) remembered_seeds_.insert(peer.ToString());
  } else if (remembered.status().code() != StatusCode::kNotFound) {
    spdlog::warn("{}; ignoring it (it is rewritten once this agent has peers)", remembered.status().message());
  }

  statestore::StoreLimits limits;
  limits.max_value_bytes = config_.raw.max_value_bytes;
  limits.tombstone_gc_ms = config_.tombstone_gc_ms;
  // Under thousands of writes a second, a delta Plumtree lost is noticed (and
  // fetched) only after gap_timeout_ms: room for its successors meanwhile.
  limits.max_held_back_deltas = options_.max_held_back_deltas;
  auto store = statestore::Store::Create(self_, limits);
  if (!store.ok()) return store.status();
  store_ = std::make_unique<statestore::Store>(std::move(*store));

  // Recovery: the newest valid snapshot, then every logged delta over it
  // (records the snapshot covers are duplicates) and into the catch-up tail.
  auto snapshot_meta = SnapshotService::LoadAtStartup(*fs_, dir + "/snapshots", *store_);
  if (!snapshot_meta.ok()) {
    return Status::IOError("loading the snapshot in " + dir + "/snapshots: " + snapshot_meta.status().message());
  }
  if (*snapshot_meta) {
    metrics_.recovery_snapshot_entries = (*snapshot_meta)->entry_count;
    last_contact_wall_ms_ = (*snapshot_meta)->hlc.wall_ms;
  }
  wal::WalOptions wal_options;
  wal_options.dir = dir + "/wal";
  wal_options.durability = config_.durability;
  wal_options.segment_bytes = config_.raw.wal_segment_bytes;
  wal_options.max_record_bytes = static_cast<std::uint32_t>(statestore::kMaxEncodedDeltaBytes);
  const auto recovery_started = std::chrono::steady_clock::now();
  std::uint64_t replayed = 0;
  auto replay = [&](wal::Lsn lsn, std::string_view payload) -> Status {
    auto delta = wire::DecodeDelta(payload);
    if (!delta.ok()) {
      return Status::Corruption("WAL record " + std::to_string(lsn) + " is not a valid delta: " +
                                delta.status().message());
    }
    // The newest write this node knew of before it stopped: how long it was
    // away is measured from there (SyncRequest.away_ms).
    last_contact_wall_ms_ = std::max(last_contact_wall_ms_, delta->hlc.wall_ms);
    statestore::ApplyResult result = store_->Apply(*delta, WallMs());
    if (result.status == statestore::ApplyStatus::kRejected) {
      spdlog::warn("WAL record {}: delta {}#{} rejected on replay: {}", lsn, delta->origin.ToString(), delta->seq,
                   result.error.message());
    } else {
      RememberDelta(*delta, std::string(payload));
    }
    if (++replayed % 100000 == 0) spdlog::info("recovery: {} WAL records replayed", replayed);
    return Status::Ok();
  };
  auto wal = wal::Wal::Open(*fs_, wal_options, replay);
  if (!wal.ok()) return wal.status();
  wal_ = std::move(*wal);
  const auto& report = wal_->recovery();
  metrics_.recovery_wal_records = report.replayed;
  if (!*snapshot_meta && report.first_lsn > 1) {
    // Compaction removed the records before first_lsn because a snapshot
    // held them; without it this node would start with a hole in its own
    // history and reissue seqs its peers hold.
    return Status::Corruption("the WAL in " + dir + "/wal starts at record " + std::to_string(report.first_lsn) +
                              " but no valid snapshot in " + dir +
                              "/snapshots covers the records before it; restore one there " +
                              "(grapevine snapshot save from a peer, then copy it in) or start from an empty --data-dir");
  }
  spdlog::info("recovered {} WAL records from {} segments in {} ms: {} keys, applied vector of {} origins",
               report.replayed, report.segments,
               std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                     recovery_started)
                   .count(),
               store_->KeyCount(), store_->Applied().size());
  if (AwayMs() > config_.tombstone_gc_ms) {
    stale_ = true;
    spdlog::warn("this node was away {} s, longer than --tombstone-gc: it will replace its state with a peer's "
                 "snapshot, and serves no catch-up to current peers until then",
                 AwayMs() / 1000);
  }
  if (report.tail_cut) {
    spdlog::warn("WAL tail cut in {} at offset {} ({} bytes): {}", report.cut_file, report.cut_offset,
                 report.cut_bytes, report.cut_reason);
  }

  own_seq_handed_off_ = AppliedSeq(store_->Applied(), self_);  // everything recovered is durable
  wal_writer_ = std::make_unique<WalWriter>(loop_, *wal_);
  kv_ = std::make_unique<KvService>(
      loop_, *store_, *wal_writer_, [] { return WallMs(); },
      [this](const statestore::Delta& delta, const std::string& encoded) {
        RememberDelta(delta, encoded);
        own_seq_handed_off_ = std::max(own_seq_handed_off_, delta.seq);
        applied_changed_ = true;
        if (ui_) ui_->OnApplied({statestore::DeltaId{self_, delta.seq}}, &delta);
        Post(broadcast::BroadcastRequest{broadcast::MessageId{self_, delta.seq}, encoded});
        if (snapshot_) snapshot_->OnDeltasApplied(1);
      });

  SnapshotService::Host snapshot_host;
  snapshot_host.loop = loop_;
  snapshot_host.snapshots_dir = dir + "/snapshots";
  snapshot_host.fs = fs_.get();
  snapshot_host.store = store_.get();
  snapshot_host.wal = wal_.get();
  snapshot_host.send = [this](NodeId peer, wire::PeerMessage message) {
    if (transport_) transport_->Send(peer, std::move(message));
  };
  snapshot_host.on_installed = [this](const std::string& source, bool replaced) {
    OnSnapshotInstalled(source, replaced);
  };
  snapshot_host.check_install = [this](const statestore::VersionVector& applied) {
    return CheckSnapshotInstall(applied);
  };
  snapshot_host.replace_on_install = [this] { return stale_; };
  snapshot_host.wall_ms = [] { return WallMs(); };
  SnapshotServiceOptions snapshot_options = options_.snapshot;
  snapshot_options.snapshot_every_deltas = config_.raw.snapshot_every;
  snapshot_options.catchup_tail_records = config_.raw.catchup_tail;
  snapshot_ = std::make_unique<SnapshotService>(std::move(snapshot_host), snapshot_options, rng_.Fork());

  http::HttpServerOptions http_options;
  // KvService answers values over --max-value-bytes with its own JSON 413;
  // the body limit only has to admit the largest value the flag allows.
  http_options.max_body_bytes = statestore::kMaxValueBytesCap + 64 * 1024;
  // Idle keep-alive connections close after 2 s, which also bounds how long
  // a graceful leave waits for them.
  http_options.idle_timeout_ms = 2000;
  http_options.max_large_body_bytes = options_.max_snapshot_upload_bytes;
  http_ = std::make_unique<http::HttpServer>(loop_, http_options);
  kv_->RegisterRoutes(*http_);
  snapshot_->RegisterRoutes(*http_);

  LocatorHost locator_host;
  locator_host.self = self_;
  locator_host.name = config_.raw.name;
  locator_host.peer_address = config_.advertise.ToString();
  locator_host.http_address = config_.http.ToString();
  locator_host.dns_address = config_.dns.ToString();
  locator_host.tags = config_.tags;
  locator_host.broadcast = [this](std::string payload) {
    // Ids above every earlier run's: wall-clock based, like overlay records.
    locator_seq_ = std::max(locator_seq_ + 1, WallMs());
    // Background: member and service records are bookkeeping like overlay
    // records. Counted toward the node's burst, an agent's alive record at
    // start and again at its first neighbour made every agent a "frequent
    // origin" (docs/services.md): at 100 agents that was more origin trees than
    // max_origin_trees, evicted and re-created by every PRUNE and GRAFT that
    // named them, and the tree churn doubled the payload messages per write.
    Post(broadcast::InEvent{broadcast::BroadcastRequest{broadcast::MessageId{self_, kLocatorIdBit | locator_seq_},
                                                        std::move(payload), /*background=*/true}});
  };
  locator_host.send_to_peer = [this](NodeId peer, std::string data) {
    if (transport_) transport_->Send(peer, wire::LocatorState{std::move(data)});
  };
  locator_host.wall_ms = [] { return WallMs(); };
  locator_host.on_member_changed = [this](NodeId node, const membership::MemberRecord* member) {
    if (ui_) ui_->OnMemberChanged(node, member);
  };
  locator_ = std::make_unique<Locator>(loop_, std::move(locator_host), options_.locator);
  locator_->RegisterRoutes(*http_);
  RegisterRoutes();
  ui_ = std::make_unique<UiService>(
      loop_,
      UiHost{self_, [this] { return TopologyJson(); }, [this] { return StatusJson(false); },
             [this]() -> const membership::MemberList& { return locator_->members(); },
             [this] { return LocalRecord(); }});
  ui_->RegisterRoutes(*http_);

  membership::HyParViewConfig hyparview_config = options_.hyparview;
  hyparview_ = std::make_unique<membership::HyParView>(self_, hyparview_config, rng_.Fork());
  broadcast::PlumtreeConfig plumtree_config = options_.plumtree;
  // Every delta the store accepts must be able to travel: a 1 MiB value
  // encodes to a little more than 1 MiB.
  plumtree_config.max_payload_bytes = std::max(plumtree_config.max_payload_bytes, statestore::kMaxEncodedDeltaBytes);
  plumtree_ = std::make_unique<broadcast::Plumtree>(self_, plumtree_config);

  PeerTransportOptions transport_options;
  transport_options.cluster = config_.raw.cluster;
  transport_options.self = self_;
  transport_options.name = config_.raw.name;
  transport_options.advertise = config_.advertise.ToString();
  transport_options.cluster_key = config_.cluster_key_bytes;
  transport_options.connection.max_frame_bytes =
      transport_options.limits.max_frame_bytes + transport::FrameCipher::kOverheadBytes;
  transport_options.connection.max_queued_bytes = 64u << 20;
  PeerTransport::Callbacks callbacks;
  callbacks.on_message = [this](NodeId from, wire::PeerMessage message) { OnPeerMessage(from, std::move(message)); };
  callbacks.on_peer_lost = [this](NodeId peer, PeerLossReason reason, const Status& why) {
    OnPeerLost(peer, reason, why);
  };
  callbacks.on_seed_identified = [this](const std::string& address, NodeId node) { OnSeedIdentified(address, node); };
  callbacks.on_seed_failed = [this](const std::string& address, const Status& why) { OnSeedFailed(address, why); };
  callbacks.keep_peer = [this](NodeId peer) {
    return hyparview_->is_active(peer) || hyparview_->pending_requests().count(peer) != 0;
  };
  transport_ = std::make_unique<PeerTransport>(loop_, transport_options, std::move(callbacks));

  uv_timer_init(loop_, &core_timer_);
  core_timer_.data = this;
  ++open_timers_;
  uv_timer_init(loop_, &housekeeping_timer_);
  housekeeping_timer_.data = this;
  ++open_timers_;

  GV_RETURN_IF_ERROR(transport_->Init());
  GV_RETURN_IF_ERROR(transport_->Listen(config_.bind));
  Status http_status = http_->Listen(config_.http.ToString());
  if (!http_status.ok()) {
    return Status::Unavailable("cannot serve HTTP on " + config_.http.ToString() + ": " + http_status.message() +
                               " (is another agent using --http " + config_.http.ToString() + "?)");
  }

  dns_lookup_ = std::make_unique<AgentDnsLookup>(*locator_, *store_);
  dns::AnswerOptions dns_options;
  dns_options.ttl_seconds = static_cast<std::uint32_t>(config_.raw.dns_ttl);
  auto dns = dns::DnsServer::Start(loop_, config_.dns, *dns_lookup_, dns_options);
  if (!dns.ok()) {
    return Status::Unavailable("cannot serve DNS on " + config_.dns.ToString() + ": " + dns.status().message() +
                               " (is another agent using --dns " + config_.dns.ToString() + "?)");
  }
  dns_ = std::move(*dns);
  locator_->Start();

  uv_timer_start(
      &housekeeping_timer_, [](uv_timer_t* t) { static_cast<Agent*>(t->data)->Housekeeping(); },
      options_.housekeeping_interval_ms, options_.housekeeping_interval_ms);
  record_seq_ = WallMs();
  last_sync_ms_ = uv_now(loop_);
  last_gc_ms_ = uv_now(loop_);

  malloc_huge_pages_ = MallocHugePagesState();
  spdlog::info("agent {} ({}) of cluster '{}': peers on {} (advertised {}), HTTP on {}, DNS on {}, durability {}, "
               "heap on huge pages {}",
               config_.raw.name, self_.ToString(), config_.raw.cluster, config_.bind.ToString(),
               config_.advertise.ToString(), config_.http.ToString(), config_.dns.ToString(),
               wal::DurabilityName(config_.durability), malloc_huge_pages_);
  for (const net::SocketAddress& seed : config_.join) seeds_[seed.ToString()] = std::nullopt;
  had_seeds_ = !seeds_.empty();
  // Remembered peers join the --join seeds: a restarted agent finds its
  // cluster even when its --join seed is down, or when it had none (the
  // first agent of a cluster). An address given with --join stays a --join
  // seed; our own address (a peer may have listed us) is never dialed.
  for (auto it = remembered_seeds_.begin(); it != remembered_seeds_.end();) {
    if (seeds_.count(*it) != 0 || *it == config_.advertise.ToString()) {
      it = remembered_seeds_.erase(it);
    } else {
      seeds_[*it] = std::nullopt;
      ++it;
    }
  }
  if (!remembered_seeds_.empty()) {
    spdlog::info("dialing {} peer(s) remembered in {}/{} as well{}", remembered_seeds_.size(), config_.raw.data_dir,
                 kKnownPeersFileName,
                 had_seeds_ ? "" : " (with no --join seed: alone after " +
                                       std::to_string(options_.remembered_peers_wait_ms) + " ms if none answers)");
  }
  MaybeJoin();
  return Status::Ok();
}

// ------------------------------------------------------------------ the pump

void Agent::Post(CoreEvent event) {
  if (shutting_down_) return;
  pending_.push_back(std::move(event));
  if (!pumping_) Pump();
}

void Agent::Pump() {
  pumping_ = true;
  while (!pending_.empty()) {
    CoreEvent event = std::move(pending_.front());
    pending_.pop_front();
    std::visit(Overloaded{[this](const membership::InEvent& e) { RunMembership(e); },
                          [this](const broadcast::InEvent& e) { RunBroadcast(e); }},
               event);
  }
  pumping_ = false;
  ArmTimer();
}

void Agent::RunMembership(const membership::InEvent& event) {
  membership::Outbox out;
  hyparview_->handle(event, Now(), out);
  for (membership::OutEvent& output : out.events) {
    std::visit(Overloaded{
                   [this](membership::SendMessage& m) { transport_->Send(m.to, wire::PeerMessage{std::move(m.message)}); },
                   [this](membership::CloseConnection& m) { transport_->ClosePeer(m.peer); },
                   [this](membership::NeighborUp& m) {
                     spdlog::info("neighbour up: {} ({})", m.peer.ToString(), transport_->NameOf(m.peer).value_or("?"));
                     views_changed_ = true;
                     pending_.push_back(broadcast::InEvent{broadcast::NeighborUp{m.peer}});
                     // A new neighbour may hold what we missed while away or partitioned.
                     RequestSync(m.peer);
                     if (!draining_) locator_->OnNeighborUp(m.peer);
                   },
                   [this](membership::NeighborDown& m) {
                     // A link that failed (broken connection, or silent past the
                     // keepalive timeout: a host that died without a FIN) is
                     // suspected cluster-wide; one closed on purpose is not.
                     if (!draining_) {
                       if (m.failed) {
                         locator_->OnPeerFailed(m.peer);
                       } else {
                         locator_->OnNeighborDown(m.peer);
                       }
                     }
                     spdlog::info("neighbour down: {} ({})", m.peer.ToString(),
                                  transport_->NameOf(m.peer).value_or("?"));
                     views_changed_ = true;
                     pending_.push_back(broadcast::InEvent{broadcast::NeighborDown{m.peer}});
                   },
                   [this](membership::ScheduleTimer& m) { Schedule(m.at, m.timer); },
               },
               output);
  }
}

void Agent::RunBroadcast(const broadcast::InEvent& event) {
  broadcast::Outbox out;
  plumtree_->handle(event, Now(), out);
  // A GRAFT or PRUNE (or a neighbour change) reshaped the tree: publish it,
  // rate-limited by cluster size (busy_record_gap_per_node_ms), so other
  // nodes' web UIs see it.
  if (plumtree_->eager_peers() != last_eager_ || plumtree_->lazy_peers() != last_lazy_) {
    last_eager_ = plumtree_->eager_peers();
    last_lazy_ = plumtree_->lazy_peers();
    tree_changed_ = true;
  }
  for (broadcast::OutEvent& output : out.events) {
    std::visit(Overloaded{
                   [this](broadcast::SendMessage& m) {
                     if (const auto* gossip = std::get_if<broadcast::Gossip>(&m.message)) {
                       ++payload_messages_sent_[broadcast::IsBeaconId(gossip->id) ? "beacon"
                                                : wire::HasFileIdentifier(gossip->payload, wire::kDeltaFileIdentifier)
                                                    ? "delta"
                                                    : "overlay"];
                     }
                     transport_->Send(m.to, wire::PeerMessage{std::move(m.message)});
                   },
                   [this](broadcast::Deliver& m) { OnDeliver(m); },
                   [this](broadcast::ScheduleTimer& m) { Schedule(m.at, m.timer); },
               },
               output);
  }
}

void Agent::Schedule(TimePoint at, CoreTimer timer) { timers_.emplace(at, std::move(timer)); }

void Agent::ArmTimer() {
  if (shutting_down_ || timers_.empty()) return;
  const std::int64_t wait_us = ToMicros(timers_.begin()->first) - ToMicros(Now());
  const std::uint64_t wait_ms = wait_us <= 0 ? 0 : static_cast<std::uint64_t>((wait_us + 999) / 1000);
  uv_timer_start(
      &core_timer_, [](uv_timer_t* t) { static_cast<Agent*>(t->data)->OnTimerExpired(); }, wait_ms, 0);
}

void Agent::OnTimerExpired() {
  const TimePoint now = Now();
  // Collect first: handling a timer schedules new ones.
  std::vector<CoreTimer> due;
  while (!timers_.empty() && timers_.begin()->first <= now) {
    due.push_back(std::move(timers_.begin()->second));
    timers_.erase(timers_.begin());
  }
  for (const CoreTimer& timer : due) {
    if (const auto* t = std::get_if<membership::Timer>(&timer)) {
      membership::InEvent event = membership::TimerFired{*t};
      pending_.emplace_back(std::move(event));
    } else {
      broadcast::InEvent event = broadcast::TimerFired{std::get<broadcast::Timer>(timer)};
      pending_.emplace_back(std::move(event));
    }
  }
  if (!pumping_) Pump();
}

// ------------------------------------------------------------------ transport

void Agent::OnPeerMessage(NodeId from, wire::PeerMessage message) {
  if (shutting_down_) return;
  std::visit(Overloaded{
                 [&](membership::Message& m) { Post(membership::InEvent{membership::MessageReceived{from, std::move(m)}}); },
                 [&](broadcast::Message& m) { Post(broadcast::InEvent{broadcast::MessageReceived{from, std::move(m)}}); },
                 [&](wire::SyncRequest& m) { OnSyncRequest(from, m); },
                 [&](wire::SyncReply& m) { OnSyncReply(from, m); },
                 [&](wire::SnapshotRequest& m) {
                   if (!draining_) snapshot_->OnSnapshotRequest(from, m);
                 },
                 [&](wire::LocatorState& m) {
                   if (!draining_) locator_->OnPeerState(from, m.data);
                 },
                 [&](wire::SnapshotChunk& m) {
                   if (!draining_) snapshot_->OnSnapshotChunk(from, std::move(m));
                 },
                 [&](auto&) {},  // Hello/Refuse never get here (the transport consumes them)
             },
             message);
}

void Agent::OnPeerLost(NodeId peer, PeerLossReason reason, const Status& why) {
  if (shutting_down_) return;
  sync_outstanding_.erase(peer);  // its reply cannot come any more
  snapshot_->OnPeerLost(peer);
  const bool active = hyparview_->is_active(peer);
  const bool requested = hyparview_->pending_requests().count(peer) != 0;
  // A dial that failed means a dead candidate; a closed connection matters
  // only when the peer is (or is becoming) our neighbour.
  if (reason == PeerLossReason::kDialFailed || active || requested) {
    if (active) {
      spdlog::info("lost active peer {} ({}): {}", peer.ToString(), transport_->NameOf(peer).value_or("?"),
                   why.message());
    } else {
      spdlog::debug("peer {} unreachable: {}", peer.ToString(), why.message());
    }
    ++metrics_.peer_losses_reported;
    Post(membership::InEvent{membership::PeerDown{peer}});
  }
}

void Agent::MaybeJoin() {
  if (joined_ || shutting_down_) return;
  if (seeds_.empty()) {
    joined_ = true;
    spdlog::info(had_seeds_ ? "every --join seed is this agent itself: starting a new overlay"
                            : "no --join seeds: starting a new overlay");
    Post(membership::InEvent{membership::JoinRequest{}});
    return;
  }
  std::vector<NodeId> contacts;
  for (const auto& [address, node] : seeds_) {
    if (node) contacts.push_back(*node);
  }
  if (!contacts.empty()) {
    joined_ = true;
    spdlog::info("joining through {} seed(s)", contacts.size());
    Post(membership::InEvent{membership::JoinRequest{contacts}});
    return;
  }
  const std::uint64_t now = uv_now(loop_);
  const bool only_remembered = std::all_of(seeds_.begin(), seeds_.end(),
                                           [&](const auto& seed) { return remembered_seeds_.count(seed.first) != 0; });
  if (only_remembered) {
    // No --join seed to insist on: remembered peers may all be gone (or
    // restarting with us). After the wait, start alone; RejoinIfIsolated
    // keeps dialing them, so the agent still finds them when they come up.
    if (remembered_wait_started_ms_ == 0) remembered_wait_started_ms_ = now;
    if (now - remembered_wait_started_ms_ >= options_.remembered_peers_wait_ms) {
      joined_ = true;
      spdlog::warn("none of the {} remembered peer(s) answered within {} ms: starting a new overlay; dialing them "
                   "again while this agent has no peer",
                   seeds_.size(), options_.remembered_peers_wait_ms);
      Post(membership::InEvent{membership::JoinRequest{}});
      return;
    }
  }
  last_seed_attempt_ms_ = now;
  // A copy: a seed can fail (and leave seeds_) while we dial the next one.
  std::vector<std::string> addresses;
  for (const auto& [address, node] : seeds_) {
    if (seeds_dialing_.count(address) == 0) addresses.push_back(address);
  }
  for (const std::string& address : addresses) {
    seeds_dialing_.insert(address);
    transport_->DialSeed(address);
  }
}

void Agent::RejoinIfIsolated(std::uint64_t now_ms) {
  if (!joined_ || shutting_down_ || !hyparview_->active_view().empty() || !hyparview_->passive_view().empty()) {
    isolated_since_ms_ = 0;
    return;
  }
  if (isolated_since_ms_ == 0) {
    isolated_since_ms_ = now_ms;
    last_seed_attempt_ms_ = now_ms;
    return;
  }
  if (now_ms - last_seed_attempt_ms_ < options_.seed_retry_interval_ms) return;
  last_seed_attempt_ms_ = now_ms;
  std::vector<NodeId> contacts;
  for (const auto& [address, node] : seeds_) {
    if (node) {
      contacts.push_back(*node);
    } else if (seeds_dialing_.insert(address).second) {
      transport_->DialSeed(address);  // identified (or failed) later; offered next round
    }
  }
  std::vector<NodeId> members;
  for (const auto& [id, member] : locator_->members().members()) {
    if (id != self_ && member.status == membership::MemberStatus::kAlive && transport_->AddressOf(id)) {
      members.push_back(id);
    }
  }
  rng_.Shuffle(members);
  contacts.insert(contacts.end(), members.begin(), members.end());
  if (contacts.empty()) return;
  ++rejoins_;
  spdlog::warn("isolated for {} ms (no active or passive peer): re-joining through {} seed(s) and known members",
               now_ms - isolated_since_ms_, contacts.size());
  Post(membership::InEvent{membership::JoinRequest{std::move(contacts)}});
}

void Agent::OfferKnownMembers() {
  if (!joined_ || shutting_down_ || hyparview_->active_view().empty() || !hyparview_->wants_candidates()) return;
  std::vector<NodeId> members;
  for (const auto& [id, member] : locator_->members().members()) {
    if (id != self_ && member.status == membership::MemberStatus::kAlive && !hyparview_->is_active(id) &&
        transport_->AddressOf(id)) {
      members.push_back(id);
    }
  }
  if (members.empty()) return;
  const std::uint64_t taken_before = hyparview_->stats().known_peers_taken;
  Post(membership::InEvent{membership::KnownPeers{std::move(members)}});
  const std::uint64_t taken = hyparview_->stats().known_peers_taken - taken_before;
  if (taken > 0) {
    spdlog::info("{} active peer(s) and no passive peer to ask: asking {} alive member(s) from the member list",
                 hyparview_->active_size(), taken);
  }
}

void Agent::MaybeSaveKnownPeers(std::uint64_t now_ms) {
  if (!joined_ || hyparview_->active_view().empty()) return;
  if (known_peers_checked_ms_ != 0 && now_ms - known_peers_checked_ms_ < options_.known_peers_save_interval_ms) return;
  known_peers_checked_ms_ = now_ms;
  std::vector<net::SocketAddress> peers;
  std::set<std::string> listed;
  auto add = [&](NodeId node) {
    if (node == self_ || peers.size() == kMaxKnownPeers) return;
    auto address = transport_->AddressOf(node);
    if (!address) return;
    auto parsed = net::ParseSocketAddress(*address);
    if (!parsed.ok() || parsed->port == 0) return;
    if (listed.insert(parsed->ToString()).second) peers.push_back(std::move(*parsed));
  };
  for (NodeId node : hyparview_->active_view()) add(node);
  for (NodeId node : hyparview_->passive_view()) add(node);
  for (const auto& [node, member] : locator_->members().members()) {
    if (member.status == membership::MemberStatus::kAlive) add(node);
  }
  std::string text = EncodeKnownPeers(peers);
  if (text == known_peers_text_) return;
  // A few ms on the loop thread (one small file, fsync, rename, directory
  // fsync), at most once per known_peers_save_interval_ms.
  Status saved = SaveKnownPeers(*fs_, config_.raw.data_dir, peers);
  if (!saved.ok()) {
    if (known_peers_save_failures_++ == 0) {
      spdlog::warn("could not write {}/{}: {} (a restart then cannot find its peers without --join; retrying every "
                   "{} ms)",
                   config_.raw.data_dir, kKnownPeersFileName, saved.message(), options_.known_peers_save_interval_ms);
    }
    return;
  }
  known_peers_text_ = std::move(text);
  ++known_peers_saves_;
  spdlog::debug("{}/{}: {} peer address(es)", config_.raw.data_dir, kKnownPeersFileName, peers.size());
}

void Agent::OnSeedIdentified(const std::string& address, NodeId node) {
  seeds_dialing_.erase(address);
  auto it = seeds_.find(address);
  if (it == seeds_.end()) return;
  it->second = node;
  MaybeJoin();
}

void Agent::OnSeedFailed(const std::string& address, const Status& why) {
  seeds_dialing_.erase(address);
  if (shutting_down_ || joined_) return;
  const bool remembered = remembered_seeds_.count(address) != 0;
  if (why.code() == StatusCode::kConflict || (remembered && why.code() == StatusCode::kInvalidArgument)) {
    // The seed is this agent itself (a --join list shared by every node), or
    // a remembered address now answered by an agent we may not join (another
    // cluster or key): nothing to retry.
    if (remembered) {
      spdlog::warn("remembered peer {} ({}/{}): {}; forgetting it", address, config_.raw.data_dir,
                   kKnownPeersFileName, why.message());
    }
    seeds_.erase(address);
    remembered_seeds_.erase(address);
    MaybeJoin();
    return;
  }
  if (remembered) {
    spdlog::debug("remembered peer {} unreachable: {}", address, why.message());
    return;  // retried by Housekeeping, until remembered_peers_wait_ms
  }
  // Refused (another cluster or key, a version mismatch) or unreachable:
  // keep trying — joining nobody and starting a cluster of our own would
  // hide the mistake. Say so loudly, but not every retry.
  if (seed_refusals_++ % 15 == 0) {
    const bool refused = why.code() == StatusCode::kInvalidArgument;
    spdlog::log(refused ? spdlog::level::err : spdlog::level::warn, "--join {}: {}; retrying every {} ms", address,
                why.message(), options_.seed_retry_interval_ms);
  }
}

// ------------------------------------------------------------------ state

void Agent::OnDeliver(const broadcast::Deliver& deliver) {
  if (deliver.from == self_) return;  // our own broadcast: applied and logged already
  if (wire::HasFileIdentifier(deliver.payload, wire::kDeltaFileIdentifier)) {
    ApplyRemoteDelta(deliver.payload, /*from_sync=*/false);
  } else if (wire::HasFileIdentifier(deliver.payload, wire::kOverlayRecordFileIdentifier)) {
    OnOverlayRecord(deliver.payload, deliver.id.origin);
  } else if (Locator::IsLocatorPayload(deliver.payload)) {
    if (!draining_) locator_->OnBroadcast(deliver.payload, deliver.id.origin);
  } else {
    ++metrics_.payloads_unknown;
  }
}

void Agent::ApplyRemoteDelta(std::string encoded, bool from_sync) {
  if (draining_) return;  // the WAL is closing (Shutdown)
  auto delta = wire::DecodeDelta(encoded);
  if (!delta.ok()) {
    ++metrics_.deltas_rejected;
    spdlog::warn("dropping an invalid delta: {}", delta.status().ToString());
    return;
  }
  statestore::ApplyResult result = store_->Apply(*delta, WallMs());
  switch (result.status) {
    case statestore::ApplyStatus::kDuplicate:
      ++metrics_.deltas_duplicate;
      return;
    case statestore::ApplyStatus::kRejected:
      ++metrics_.deltas_rejected;
      spdlog::warn("delta {}#{} rejected: {}", delta->origin.ToString(), delta->seq, result.error.message());
      return;
    case statestore::ApplyStatus::kHeldBack:
      ++metrics_.deltas_held_back;
      break;
    case statestore::ApplyStatus::kApplied:
      metrics_.deltas_applied += result.applied.size();
      applied_changed_ = true;
      if (ui_) ui_->OnApplied(result.applied, &*delta);
      if (from_sync) metrics_.antientropy_deltas += result.applied.size();
      last_contact_wall_ms_ = WallMs();
      snapshot_->OnDeltasApplied(result.applied.size());
      break;
  }
  // Held-back deltas are logged too: replay holds them back again until
  // their gap is filled, so nothing received is lost to a restart.
  wal_writer_->Submit(encoded, [this](Result<wal::Lsn> lsn) {
    if (!lsn.ok()) {
      if (metrics_.wal_failures++ == 0) {
        spdlog::error("WAL append of a received delta failed: {}; restart the agent once the disk is fixed",
                      lsn.status().ToString());
      }
    }
  });
  RememberDelta(*delta, std::move(encoded));
  if (!result.changed.empty()) kv_->NotifyChanged(result.changed);
}

void Agent::RememberDelta(const statestore::Delta& delta, std::string encoded) {
  auto& seqs = tail_[delta.origin];
  if (seqs.count(delta.seq) != 0) return;
  tail_bytes_ += encoded.size();
  seqs.emplace(delta.seq, TailEntry{std::move(encoded)});
  tail_order_.push_back(statestore::DeltaId{delta.origin, delta.seq});
  while (!tail_order_.empty() &&
         (tail_order_.size() > config_.raw.catchup_tail || tail_bytes_ > options_.catchup_tail_max_bytes)) {
    const statestore::DeltaId oldest = tail_order_.front();
    tail_order_.pop_front();
    auto origin = tail_.find(oldest.origin);
    if (origin == tail_.end()) continue;
    auto entry = origin->second.find(oldest.seq);
    if (entry != origin->second.end()) {
      tail_bytes_ -= entry->second.encoded.size();
      origin->second.erase(entry);
    }
    if (origin->second.empty()) tail_.erase(origin);
  }
}

void Agent::RequestSync(NodeId peer) {
  if (!sync_outstanding_.emplace(peer, uv_now(loop_)).second) return;  // one request per peer in flight
  ++metrics_.antientropy_rounds;
  last_sync_ms_ = uv_now(loop_);
  // Away longer than tombstone_gc: the snapshot this leads to must replace
  // the state, not merge into it (a delete missed here may be collected).
  // Once stale, stay so (and say so to the peer) until a replacing install:
  // deltas received meanwhile reset the contact time but fill no collected delete.
  if (AwayMs() > config_.tombstone_gc_ms) stale_ = true;
  const std::uint64_t away_ms = stale_ ? std::max(AwayMs(), config_.tombstone_gc_ms + 1) : AwayMs();
  transport_->Send(peer, wire::SyncRequest{store_->Applied(), options_.max_sync_reply_bytes, away_ms});
}

std::uint64_t Agent::AwayMs() const {
  // A node that never held anything has nothing a stale delete could revive.
  if (last_contact_wall_ms_ == 0 || store_->Applied().empty()) return 0;
  const std::uint64_t now = WallMs();
  return now > last_contact_wall_ms_ ? now - last_contact_wall_ms_ : 0;
}

void Agent::OnSyncRequest(NodeId from, const wire::SyncRequest& request) {
  wire::SyncReply reply;
  if (stale_ && request.away_ms <= config_.tombstone_gc_ms) {
    // Our state may hold keys deleted and collected elsewhere: it must not
    // reach a peer that is current. Answer with nothing (the peer asks
    // another one at its next round). A peer that is stale too is served as
    // usual: after a whole-cluster outage every node is stale, nobody
    // collected a delete meanwhile, and refusing would leave them all stale.
    // (A snapshot is pulled only from a peer that answered snapshot_needed.)
    ++metrics_.sync_refused_stale;
    transport_->Send(from, reply);
    return;
  }
  ++metrics_.antientropy_served;
  // Deltas can catch the peer up only if, for every origin it lags on, the
  // tail still holds the first seq it lacks; and never after it was away
  // longer than tombstone_gc (deletes it missed may be collected here).
  std::string why_snapshot;
  if (request.away_ms > config_.tombstone_gc_ms) {
    why_snapshot = "it was away " + std::to_string(request.away_ms / 1000) + " s, longer than --tombstone-gc";
  }
  for (const auto& [origin, applied] : store_->Applied()) {
    if (!why_snapshot.empty()) break;
    auto have_it = request.applied.find(origin);
    const std::uint64_t have = have_it == request.applied.end() ? 0 : have_it->second;
    // Our own seqs above own_seq_handed_off_ are applied here but still on
    // their way through the WAL: not in the tail yet, and broadcast once
    // durable. A peer lacking only those is not behind the tail.
    const std::uint64_t ours = origin == self_ ? std::min(applied, own_seq_handed_off_) : applied;
    if (have >= ours) continue;
    // Every seq have+1..ours must be in the tail (it can have holes: evicted
    // out of order, or older seqs kept across a snapshot install).
    auto seqs = tail_.find(origin);
    std::uint64_t next = have + 1;
    if (seqs != tail_.end()) {
      for (auto it = seqs->second.lower_bound(next); it != seqs->second.end() && it->first == next && next <= ours;
           ++it) {
        ++next;
      }
    }
    if (next <= ours) {
      why_snapshot = "it lacks " + origin.ToString() + "#" + std::to_string(have + 1) + ".." + std::to_string(ours) +
                     " and the catch-up tail " +
                     (seqs == tail_.end() ? std::string("holds none of that origin")
                                          : "misses #" + std::to_string(next));
    }
  }
  if (!why_snapshot.empty()) {
    ++metrics_.sync_snapshot_needed;
    spdlog::info("anti-entropy: {} must catch up by snapshot: {}", from.ToString(), why_snapshot);
    reply.snapshot_needed = true;
    transport_->Send(from, reply);
    return;
  }
  const std::uint64_t budget = std::min<std::uint64_t>(
      request.max_reply_bytes == 0 ? options_.max_sync_reply_bytes : request.max_reply_bytes,
      options_.max_sync_reply_bytes);
  const std::size_t max_deltas = wire::EnvelopeLimits{}.max_sync_deltas;
  std::uint64_t bytes = 0;
  for (const auto& [origin, seqs] : tail_) {
    auto have_it = request.applied.find(origin);
    const std::uint64_t have = have_it == request.applied.end() ? 0 : have_it->second;
    auto from_it = seqs.upper_bound(have);
    if (from_it == seqs.end() || from_it->first != have + 1) continue;  // held-back seqs beyond a gap of our own
    std::uint64_t expected = have + 1;
    for (auto it = from_it; it != seqs.end() && it->first == expected; ++it, ++expected) {  // stop at a hole
      if (reply.deltas.size() >= max_deltas ||
          (!reply.deltas.empty() && bytes + it->second.encoded.size() > budget)) {
        reply.more = true;
        break;
      }
      bytes += it->second.encoded.size();
      reply.deltas.push_back(it->second.encoded);
    }
    if (reply.more) break;
  }
  if (!reply.deltas.empty()) {
    spdlog::debug("sync: sending {} deltas ({} bytes) to {}", reply.deltas.size(), bytes, from.ToString());
  }
  transport_->Send(from, reply);
}

void Agent::OnSyncReply(NodeId from, const wire::SyncReply& reply) {
  if (sync_outstanding_.erase(from) == 0) {
    ++metrics_.sync_replies_unexpected;  // nobody asked: ignore it
    return;
  }
  if (reply.snapshot_needed) {
    if (!draining_) snapshot_->StartPull(from);
    return;
  }
  last_contact_wall_ms_ = WallMs();
  const statestore::VersionVector applied_before = store_->Applied();
  const std::uint64_t before = metrics_.antientropy_deltas;
  for (const std::string& encoded : reply.deltas) ApplyRemoteDelta(encoded, /*from_sync=*/true);
  if (metrics_.antientropy_deltas > before) {
    spdlog::info("anti-entropy: {} missing deltas from {}", metrics_.antientropy_deltas - before, from.ToString());
  }
  // Ask again only while it makes progress: a peer answering `more` without
  // anything we can apply would otherwise keep us in a loop.
  if (reply.more && !draining_ && store_->Applied() != applied_before) RequestSync(from);
}

Status Agent::CheckSnapshotInstall(const statestore::VersionVector& snapshot_applied) const {
  auto ours_it = store_->Applied().find(self_);
  const std::uint64_t ours = ours_it == store_->Applied().end() ? 0 : ours_it->second;
  auto theirs_it = snapshot_applied.find(self_);
  const std::uint64_t theirs = theirs_it == snapshot_applied.end() ? 0 : theirs_it->second;
  if (theirs >= ours) return Status::Ok();
  // The tail holds this origin's newest deltas contiguously (appended in
  // order, evicted oldest first): it can re-apply theirs+1..ours if it
  // reaches back to theirs+1.
  auto tail = tail_.find(self_);
  if (tail != tail_.end() && tail->second.begin()->first <= theirs + 1 && tail->second.rbegin()->first >= ours &&
      tail->second.size() == tail->second.rbegin()->first - tail->second.begin()->first + 1) {
    return Status::Ok();
  }
  return Status::Conflict("the snapshot lacks this node's own writes #" + std::to_string(theirs + 1) + ".." +
                          std::to_string(ours) + ", older than its catch-up tail; installing it would lose them " +
                          "(restore a backup into a fresh --data-dir instead, or wait until the peers have them)");
}

void Agent::OnSnapshotInstalled(const std::string& source, bool replaced) {
  last_contact_wall_ms_ = WallMs();
  if (replaced) stale_ = false;  // a merge (a restore) fills no delete collected elsewhere
  // The snapshot may predate deltas this node already had (its own newest
  // writes above all): they are in the tail and the WAL, so apply them again.
  std::uint64_t reapplied = 0;
  for (const auto& [origin, seqs] : tail_) {
    for (const auto& [seq, entry] : seqs) {
      auto delta = wire::DecodeDelta(entry.encoded);
      if (!delta.ok()) continue;
      statestore::ApplyResult result = store_->Apply(*delta, WallMs());
      if (result.status == statestore::ApplyStatus::kApplied) reapplied += result.applied.size();
    }
  }
  spdlog::info("state taken from a snapshot from {}: {} keys; {} newer deltas of the catch-up tail applied again",
               source, store_->KeyCount(), reapplied);
  kv_->NotifyReplaced();
  gap_seen_since_ms_ = 0;
  // What the snapshot's source lacked, another peer may have.
  if (auto peer = RandomActivePeer()) RequestSync(*peer);
}

std::optional<NodeId> Agent::RandomActivePeer() {
  std::vector<NodeId> active = hyparview_->active_view();
  if (active.empty()) return std::nullopt;
  return active[rng_.Index(active.size())];
}

void Agent::Housekeeping() {
  if (draining_) return;
  const std::uint64_t now = uv_now(loop_);
  snapshot_->Housekeeping(now);
  if (!joined_ && now - last_seed_attempt_ms_ >= options_.seed_retry_interval_ms) MaybeJoin();
  RejoinIfIsolated(now);
  OfferKnownMembers();
  MaybeSaveKnownPeers(now);

  // A gap Plumtree did not fill within gap_timeout_ms is asked of a peer.
  if (store_->HeldBackCount() > 0) {
    if (gap_seen_since_ms_ == 0) {
      gap_seen_since_ms_ = now;
    } else if (now - gap_seen_since_ms_ >= options_.gap_timeout_ms ||
               store_->HeldBackCount() > options_.max_held_back_deltas / 4) {
      if (auto peer = RandomActivePeer()) RequestSync(*peer);
      gap_seen_since_ms_ = now;
    }
  } else {
    gap_seen_since_ms_ = 0;
  }
  // A request whose connection was closed on purpose gets no reply and no
  // loss report: forget it after a while so the peer can be asked again.
  for (auto it = sync_outstanding_.begin(); it != sync_outstanding_.end();) {
    it = now - it->second > options_.sync_reply_timeout_ms ? sync_outstanding_.erase(it) : std::next(it);
  }
  if (now - last_sync_ms_ >= config_.sync_interval_ms) {
    if (auto peer = RandomActivePeer()) {
      RequestSync(*peer);
    } else {
      last_sync_ms_ = now;
    }
  }
  if (now - last_gc_ms_ >= options_.tombstone_gc_check_interval_ms) {
    last_gc_ms_ = now;
    store_->CollectGarbage(WallMs());
  }
  if (now - last_record_ms_ >= options_.overlay_record_interval_ms ||
      (views_changed_ && now - last_record_ms_ >= options_.overlay_record_min_gap_ms) ||
      ((applied_changed_ || tree_changed_) &&
       now - last_record_ms_ >= std::max<std::uint64_t>(options_.overlay_record_min_gap_ms,
                                                        options_.busy_record_gap_per_node_ms * records_.size()))) {
    PublishRecord(/*left=*/false);
  }
  for (auto it = records_.begin(); it != records_.end();) {
    if (now - it->second.second > options_.overlay_record_expiry_ms) {
      if (ui_) ui_->OnRecordLeft(it->first);
      it = records_.erase(it);
    } else {
      ++it;
    }
  }
}

// ------------------------------------------------------------------ topology

wire::OverlayRecord Agent::LocalRecord() const {
  wire::OverlayRecord record;
  record.node = self_;
  record.name = config_.raw.name;
  record.address = config_.advertise.ToString();
  record.http = config_.http.ToString();
  record.version = record_seq_;
  record.active = hyparview_->active_view();
  record.passive = hyparview_->passive_view();
  record.eager.assign(plumtree_->eager_peers().begin(), plumtree_->eager_peers().end());
  record.lazy.assign(plumtree_->lazy_peers().begin(), plumtree_->lazy_peers().end());
  record.applied = store_->Applied();
  record.key_count = store_->KeyCount();
  return record;
}

void Agent::PublishRecord(bool left) {
  last_record_ms_ = uv_now(loop_);
  views_changed_ = false;
  tree_changed_ = false;
  applied_changed_ = false;
  record_seq_ = std::max(record_seq_ + 1, WallMs());
  wire::OverlayRecord record = LocalRecord();
  record.left = left;
  Post(broadcast::InEvent{
      broadcast::BroadcastRequest{broadcast::MessageId{self_, kRecordIdBit | record_seq_}, wire::EncodeOverlayRecord(record),
                                  /*background=*/true}});
}

void Agent::OnOverlayRecord(std::string_view payload, NodeId origin) {
  auto record = wire::DecodeOverlayRecord(payload);
  if (!record.ok()) {
    ++metrics_.payloads_unknown;
    spdlog::warn("dropping an invalid overlay record: {}", record.status().ToString());
    return;
  }
  // A node speaks only for itself; names and addresses end up in JSON.
  if (record->node != origin || !IsValidUtf8(record->name) || !IsValidUtf8(record->address) ||
      !IsValidUtf8(record->http)) {
    ++metrics_.payloads_unknown;
    spdlog::warn("dropping an overlay record from {}: it names node {} or carries invalid UTF-8", origin.ToString(),
                 record->node.ToString());
    return;
  }
  ++metrics_.overlay_records_received;
  if (record->node == self_) return;
  auto it = records_.find(record->node);
  if (it != records_.end() && it->second.first.version >= record->version) return;
  if (record->left) {
    spdlog::info("{} ({}) left the cluster", record->name, record->node.ToString());
    records_.erase(record->node);
    if (ui_) ui_->OnRecordLeft(record->node);
    return;
  }
  // The node's own Hello is the authority on its address: a record only
  // fills in an unknown one.
  if (!transport_->AddressOf(record->node)) transport_->AddAddress(record->node, record->address);
  if (it == records_.end() && records_.size() >= options_.max_overlay_records) return;
  const NodeId node = record->node;
  records_[node] = {std::move(*record), uv_now(loop_)};
  if (ui_) ui_->OnRecord(records_[node].first, 0);
}

// ------------------------------------------------------------------ HTTP

void Agent::RegisterRoutes() {
  // ?digest adds the BLAKE2b digest of the replicated state: it reads every
  // key, so only callers comparing replicas ask for it.
  http_->Route("GET", "/v1/status", [this](http::Request& request, http::Responder responder) {
    responder.Finish(http::Response::Json(200, StatusJson(request.Has("digest"))));
  });
  http_->Route("GET", "/v1/topology", [this](http::Request&, http::Responder responder) {
    responder.Finish(http::Response::Json(200, TopologyJson()));
  });
  http_->Route("GET", "/metrics", [this](http::Request&, http::Responder responder) {
    http::Response response = http::Response::Text(200, MetricsText());
    response.content_type = PrometheusWriter::kContentType;
    responder.Finish(std::move(response));
  });
}

std::string Agent::StatusJson(bool with_digest) const {
  json out;
  out["node_id"] = self_.ToString();
  out["name"] = config_.raw.name;
  out["cluster"] = config_.raw.cluster;
  out["address"] = config_.advertise.ToString();
  out["http"] = config_.http.ToString();
  out["malloc_huge_pages"] = malloc_huge_pages_;
  out["applied"] = VersionVectorJson(store_->Applied());
  out["key_count"] = store_->KeyCount();
  out["index"] = store_->Index();
  out["held_back"] = store_->HeldBackCount();
  out["active"] = NodeIdsJson(hyparview_->active_view());
  out["passive"] = NodeIdsJson(hyparview_->passive_view());
  out["eager"] = NodeIdsJson(plumtree_->eager_peers());
  out["lazy"] = NodeIdsJson(plumtree_->lazy_peers());
  // The root whose beacons shape the shared broadcast tree (null before the
  // first beacon, or while a new root is being elected).
  if (const auto root = plumtree_->root()) {
    out["broadcast_root"] = root->ToString();
  } else {
    out["broadcast_root"] = nullptr;
  }
  if (with_digest) out["digest"] = statestore::DigestHex(store_->Digest());
  const wal::WalStats wal = wal_->stats();
  out["wal"] = {{"durability", wal::DurabilityName(config_.durability)},
                {"segments", wal.segments},
                {"records", wal.records},
                {"bytes", wal.bytes},
                {"syncs", wal.syncs},
                {"last_lsn", wal.last_lsn},
                {"catchup_tail_deltas", tail_order_.size()},
                {"catchup_tail_bytes", tail_bytes_}};
  out["snapshot"] = json::parse(snapshot_->StatusJson());
  out["recovery"] = {{"snapshot_entries", metrics_.recovery_snapshot_entries},
                     {"wal_records", metrics_.recovery_wal_records}};
  out["uptime_ms"] = WallMs() - started_wall_ms_;
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Agent::TopologyJson() const {
  json nodes = json::array();
  json edges = json::array();
  const std::uint64_t now = uv_now(loop_);
  auto add = [&](const wire::OverlayRecord& record, std::uint64_t age_ms) {
    nodes.push_back(OverlayRecordJson(record, age_ms, record.node == self_));
    auto edges_of = [&](const std::vector<NodeId>& peers, const char* kind) {
      for (NodeId peer : peers) edges.push_back({{"from", record.node.ToString()}, {"to", peer.ToString()}, {"kind", kind}});
    };
    edges_of(record.active, "active");
    edges_of(record.passive, "passive");
    edges_of(record.eager, "eager");
    edges_of(record.lazy, "lazy");
  };
  add(LocalRecord(), 0);
  for (const auto& [id, entry] : records_) add(entry.first, now - entry.second);
  return json{{"nodes", nodes}, {"edges", edges}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string Agent::MetricsText() const {
  PrometheusWriter w;
  const PeerTransportMetrics& peer = transport_->metrics();
  {
    auto family = w.Family("grapevine_peer_messages_sent_total", PrometheusWriter::Type::kCounter,
                           "Peer messages sent, by type");
    for (const auto& [type, count] : peer.messages_sent) family.Sample(static_cast<double>(count), {{"type", type}});
  }
  {
    auto family = w.Family("grapevine_peer_messages_received_total", PrometheusWriter::Type::kCounter,
                           "Peer messages received and verified, by type");
    for (const auto& [type, count] : peer.messages_received) family.Sample(static_cast<double>(count), {{"type", type}});
  }
  w.Counter("grapevine_peer_bytes_sent_total", "Peer frame bytes queued for sending", static_cast<double>(peer.bytes_sent));
  w.Counter("grapevine_peer_bytes_received_total", "Peer frame bytes received", static_cast<double>(peer.bytes_received));
  {
    auto family = w.Family("grapevine_peer_frames_rejected_total", PrometheusWriter::Type::kCounter,
                           "Peer frames or connections refused, by reason");
    for (const char* reason : {"decode", "decrypt", "framing", "oversize", "handshake", "handshake_timeout",
                               "unexpected", "too_many_connections"}) {
      auto it = peer.frames_rejected.find(reason);
      family.Sample(it == peer.frames_rejected.end() ? 0.0 : static_cast<double>(it->second), {{"reason", reason}});
    }
  }
  {
    auto family = w.Family("grapevine_peer_disconnects_total", PrometheusWriter::Type::kCounter,
                           "Peer connections lost (not closed by this agent), by reason");
    for (const auto& [reason, count] : peer.disconnects) family.Sample(static_cast<double>(count), {{"reason", reason}});
  }
  w.Gauge("grapevine_peer_connections", "Open peer connections", static_cast<double>(transport_->open_connections()));
  w.Counter("grapevine_peer_connections_accepted_total", "Inbound peer connections accepted",
            static_cast<double>(peer.connections_accepted));
  w.Counter("grapevine_peer_dials_total", "Outbound peer connections started", static_cast<double>(peer.dials));
  w.Counter("grapevine_peer_dial_failures_total", "Outbound peer connections that never completed the handshake",
            static_cast<double>(peer.dial_failures));

  const membership::HyParViewStats& hv = hyparview_->stats();
  w.Gauge("grapevine_membership_active_peers", "Peers in the active view", static_cast<double>(hyparview_->active_size()));
  w.Gauge("grapevine_membership_passive_peers", "Peers in the passive view",
          static_cast<double>(hyparview_->passive_view().size()));
  w.Counter("grapevine_membership_peer_down_total", "Active peers lost", static_cast<double>(hv.peer_down));
  w.Counter("grapevine_membership_keepalive_timeouts_total", "Active peers dropped for silence",
            static_cast<double>(hv.keepalive_timeouts));
  w.Counter("grapevine_membership_shuffles_sent_total", "SHUFFLE walks started", static_cast<double>(hv.shuffles_sent));
  w.Counter("grapevine_membership_rejoins_total", "JOINs sent because the node was isolated",
            static_cast<double>(hv.rejoins));
  w.Counter("grapevine_membership_reconnects_sent_total",
            "High-priority NEIGHBORs to peers lost to a failure (partition healing)",
            static_cast<double>(hv.reconnects_sent));
  w.Counter("grapevine_membership_reconnects_accepted_total", "Reconnects that opened a link again",
            static_cast<double>(hv.reconnects_accepted));
  w.Counter("grapevine_membership_reconnects_refused_total",
            "Reconnects refused because the peer restarted since (it is forgotten)",
            static_cast<double>(hv.reconnects_refused));
  w.Counter("grapevine_membership_known_peers_taken_total",
            "Alive members taken from the member list into the passive view (short of active peers, none passive)",
            static_cast<double>(hv.known_peers_taken));
  w.Counter("grapevine_known_peers_saves_total", "Times DATA/peers was rewritten with the peers this agent knows",
            static_cast<double>(known_peers_saves_));
  w.Counter("grapevine_known_peers_save_failures_total", "Failed rewrites of DATA/peers",
            static_cast<double>(known_peers_save_failures_));
  w.Counter("grapevine_membership_isolated_rejoins_total",
            "Times an isolated agent offered HyParView its seeds and the alive members it knows",
            static_cast<double>(rejoins_));

  const broadcast::PlumtreeStats& pt = plumtree_->stats();
  w.Counter("grapevine_broadcast_deliveries_total", "Broadcast payloads delivered (own included)",
            static_cast<double>(pt.delivered));
  w.Counter("grapevine_broadcast_duplicates_total", "Duplicate GOSSIP payloads received", static_cast<double>(pt.duplicates));
  w.Counter("grapevine_broadcast_grafts_sent_total", "GRAFTs sent", static_cast<double>(pt.graft_sent));
  w.Counter("grapevine_broadcast_prunes_sent_total", "PRUNEs sent", static_cast<double>(pt.prune_sent));
  w.Counter("grapevine_broadcast_ihave_entries_sent_total", "Message ids announced lazily",
            static_cast<double>(pt.ihave_entries_sent));
  w.Counter("grapevine_broadcast_graft_timeouts_total", "Graft timers that found the message still missing",
            static_cast<double>(pt.graft_timeouts));
  w.Counter("grapevine_broadcast_hop_optimizations_total",
            "Tree repairs by the hop-difference rule (a shorter branch kept, the longer pruned)",
            static_cast<double>(pt.hop_optimizations));
  w.Counter("grapevine_broadcast_origin_trees_created_total", "Per-origin broadcast trees created",
            static_cast<double>(pt.origin_trees_created));
  w.Counter("grapevine_broadcast_root_beacons_sent_total", "Beacons this agent sent as the broadcast tree's root",
            static_cast<double>(pt.beacons_sent));
  w.Counter("grapevine_broadcast_root_changes_total", "Times this agent followed a different broadcast root",
            static_cast<double>(pt.root_changes));
  {
    auto family = w.Family("grapevine_broadcast_payload_messages_sent_total", PrometheusWriter::Type::kCounter,
                           "GOSSIP messages sent, by payload kind (delta: a write; overlay: a topology, member or "
                           "service record; beacon: the broadcast root's beacon)");
    for (const char* kind : {"delta", "overlay", "beacon"}) {
      auto it = payload_messages_sent_.find(kind);
      family.Sample(it == payload_messages_sent_.end() ? 0.0 : static_cast<double>(it->second), {{"kind", kind}});
    }
  }

  const statestore::StoreStats store = store_->Stats();
  w.Gauge("grapevine_kv_keys", "Live keys", static_cast<double>(store.live_keys));
  w.Gauge("grapevine_kv_tombstones", "Deleted keys not yet collected", static_cast<double>(store.tombstones));
  w.Gauge("grapevine_kv_held_back_deltas", "Deltas waiting for a predecessor", static_cast<double>(store.held_back));
  w.Counter("grapevine_kv_conflicts_total", "Merges that found concurrent writes", static_cast<double>(store.conflicts));
  w.Gauge("grapevine_kv_index", "The local change counter", static_cast<double>(store_->Index()));
  w.Counter("grapevine_deltas_applied_total", "Remote deltas applied", static_cast<double>(metrics_.deltas_applied));
  w.Counter("grapevine_deltas_duplicate_total", "Remote deltas already applied", static_cast<double>(metrics_.deltas_duplicate));
  w.Counter("grapevine_deltas_rejected_total", "Remote deltas refused", static_cast<double>(metrics_.deltas_rejected));
  w.Counter("grapevine_deltas_held_back_total", "Remote deltas that arrived before a predecessor",
            static_cast<double>(metrics_.deltas_held_back));
  const KvMetrics& kv = kv_->metrics();
  w.Counter("grapevine_kv_writes_total", "Acknowledged local writes", static_cast<double>(kv.writes));
  w.Counter("grapevine_kv_write_errors_total", "Local writes refused or failed", static_cast<double>(kv.write_errors));
  w.Counter("grapevine_kv_cas_conflicts_total", "Compare-and-set mismatches", static_cast<double>(kv.cas_conflicts));
  w.Counter("grapevine_kv_write_groups_total", "Deltas made from single-key writes read in one loop iteration",
            static_cast<double>(kv.write_groups));
  w.Counter("grapevine_kv_grouped_writes_total", "Single-key writes carried by those deltas",
            static_cast<double>(kv.grouped_writes));
  w.Gauge("grapevine_kv_blocking_reads", "Blocking reads waiting", static_cast<double>(kv.blocking_reads));
  w.Gauge("grapevine_kv_watchers", "Open watch streams", static_cast<double>(kv.watchers));

  const wal::WalStats wal = wal_->stats();
  w.Counter("grapevine_wal_appends_total", "WAL records appended", static_cast<double>(wal.records));
  w.Counter("grapevine_wal_bytes_total", "WAL bytes written", static_cast<double>(wal.bytes));
  w.Gauge("grapevine_wal_segments", "Live WAL segment files", static_cast<double>(wal.segments));
  w.Counter("grapevine_wal_append_failures_total", "WAL appends of received deltas that failed",
            static_cast<double>(metrics_.wal_failures));
  w.Family("grapevine_wal_fsync_seconds", PrometheusWriter::Type::kSummary, "WAL fdatasync latency")
      .SampleWithSuffix("_sum", static_cast<double>(wal.sync_micros_sum) / 1e6)
      .SampleWithSuffix("_count", static_cast<double>(wal.syncs));

  w.Counter("grapevine_antientropy_rounds_total", "Catch-up requests sent", static_cast<double>(metrics_.antientropy_rounds));
  w.Counter("grapevine_antientropy_served_total", "Catch-up requests answered", static_cast<double>(metrics_.antientropy_served));
  w.Counter("grapevine_antientropy_deltas_total", "Deltas applied from catch-up replies",
            static_cast<double>(metrics_.antientropy_deltas));
  w.Gauge("grapevine_topology_records", "Overlay records known from other nodes", static_cast<double>(records_.size()));

  {
    auto family = w.Family("grapevine_http_responses_total", PrometheusWriter::Type::kCounter, "HTTP answers, by status");
    for (const auto& [status, count] : http_->responses_by_status()) {
      family.Sample(static_cast<double>(count), {{"status", std::to_string(status)}});
    }
  }
  w.Counter("grapevine_http_rejected_total", "HTTP requests refused before a handler (bad path, body too large)",
            static_cast<double>(http_->rejected_requests()));
  snapshot_->WriteMetrics(w);
  locator_->WriteMetrics(w);
  dns_->WriteMetrics(w);
  w.Counter("grapevine_antientropy_refused_stale_total",
            "Anti-entropy requests answered with nothing: this node was away longer than --tombstone-gc",
            static_cast<double>(metrics_.sync_refused_stale));
  w.Counter("grapevine_antientropy_snapshot_needed_total",
            "Anti-entropy requests answered with 'pull a snapshot' (the gap was beyond the catch-up tail)",
            static_cast<double>(metrics_.sync_snapshot_needed));
  w.Gauge("grapevine_uptime_seconds", "Seconds since the agent started",
          static_cast<double>(WallMs() - started_wall_ms_) / 1000.0);
  return w.text();
}

// ------------------------------------------------------------------ shutdown

void Agent::Shutdown(std::function<void()> on_done) {
  if (shutdown_started_) return;
  shutdown_started_ = true;
  on_shutdown_done_ = std::move(on_done);
  // Phase 1: take no more requests and drain the WAL thread. Its callbacks
  // run the last writes' on_durable, which broadcasts them: a write that was
  // acknowledged (or is about to be) still leaves the node. Deltas arriving
  // now are not applied (the WAL is closing); anti-entropy brings them back
  // after a restart.
  draining_ = true;
  closing_components_ = 1;  // held until every Close below was started
  if (http_) {
    ++closing_components_;
    http_->Close([this] { ComponentClosed(); });
  }
  if (kv_) {
    ++closing_components_;
    kv_->Close([this] { ComponentClosed(); });
  }
  if (ui_) {
    ++closing_components_;
    ui_->Close([this] { ComponentClosed(); });
  }
  if (snapshot_) {
    ++closing_components_;
    snapshot_->Close([this] { ComponentClosed(); });
  }
  if (dns_) {
    ++closing_components_;
    dns_->Close([this] { ComponentClosed(); });
  }
  if (wal_writer_) {
    ++closing_components_;
    wal_writer_->Close([this] {
      Status st = wal_->Close();
      if (!st.ok()) spdlog::error("closing the WAL: {}", st.ToString());
      FinishLeave();
      ComponentClosed();
    });
  } else {
    if (wal_) {
      Status st = wal_->Close();
      if (!st.ok()) spdlog::error("closing the WAL: {}", st.ToString());
    }
    FinishLeave();
  }
  ComponentClosed();
}

void Agent::FinishLeave() {
  // Phase 2: tell the others, then close the connections (which write out
  // what is queued first) and the timers.
  if (plumtree_ && transport_ && joined_) {
    spdlog::info("leaving the cluster");
    if (locator_) locator_->Leave();
    PublishRecord(/*left=*/true);
  }
  if (locator_) {
    ++closing_components_;
    locator_->Close([this] { ComponentClosed(); });
  }
  shutting_down_ = true;
  pending_.clear();
  if (transport_) {
    ++closing_components_;
    transport_->Close([this] { ComponentClosed(); });
  }
  auto on_timer_closed = [](uv_handle_t* h) { static_cast<Agent*>(h->data)->ComponentClosed(); };
  if (open_timers_ > 0) {
    closing_components_ += open_timers_;
    uv_close(reinterpret_cast<uv_handle_t*>(&core_timer_), on_timer_closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&housekeeping_timer_), on_timer_closed);
    open_timers_ = 0;
  }
}

void Agent::ComponentClosed() {
  if (--closing_components_ > 0) return;
  spdlog::info("agent stopped");
  auto done = std::move(on_shutdown_done_);
  if (done) done();
}

}  // namespace gv::daemon
