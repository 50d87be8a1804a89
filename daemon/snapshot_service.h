// SnapshotService: the agent's side of snapshots (DESIGN.md §4–5, issue 5).
//
//   local compaction  every --snapshot-every applied deltas: capture the store
//                     (O(1), copy-on-write), write DATA/snapshots/*.snap on a
//                     libuv worker thread, then drop the WAL segments the
//                     snapshot covers, keeping --catchup-tail records for peers.
//   serving peers     SnapshotRequest → capture → SnapshotChunks, pulled by the
//                     requester with a window (flow control without timers).
//   pulling           SyncReply.snapshot_needed → SnapshotRequest to that peer;
//                     every chunk is verified as it arrives; the complete
//                     stream is MERGED into the state (Store::MergeSnapshot:
//                     nothing the node had is lost, its own seqs never go
//                     back) — or, for a node away longer than tombstone_gc,
//                     installed in place of it, after checking that no own
//                     write would be lost. A local snapshot of the result is
//                     written at once (the snapshot's content is not in the WAL).
//   backup            GET /v1/snapshot streams a fresh capture; PUT
//                     /v1/snapshot verifies one and merges it (a restore
//                     brings back what is missing, never rolls back).
//
// Invariants:
// - A snapshot file reaches its final name only complete, verified and
//   fsynced (snapshot/); a crash at any point leaves the previous one usable.
// - WAL records are deleted only when two durable snapshots cover them: the
//   compaction floor is the WAL's last LSN when the previous snapshot was
//   captured (every record up to it was applied to the store before that
//   capture), so a damaged newest snapshot can fall back to the previous one
//   plus the WAL; it is lowered further to keep the catch-up tail.
// - Installing changes the replicated state atomically on the loop thread;
//   nothing is installed that has not been verified chunk by chunk.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/node_id.h"
#include "common/prng.h"
#include "common/status.h"
#include "daemon/http/server.h"
#include "daemon/prometheus.h"
#include "fs/file_system.h"
#include "snapshot/files.h"
#include "statestore/store.h"
#include "wal/wal.h"
#include "wire/envelope.h"

namespace gv::daemon {

struct SnapshotServiceOptions {
  std::uint64_t snapshot_every_deltas = 100000;  // --snapshot-every
  std::uint64_t catchup_tail_records = 50000;    // --catchup-tail: WAL records kept behind a snapshot
  std::size_t keep_snapshots = 2;                // the newest and one to fall back to
  std::size_t max_serving_transfers = 4;
  std::size_t max_downloads = 4;                 // concurrent GET /v1/snapshot
  std::uint32_t window_chunks = 8;               // chunks a responder may have in flight
  std::uint64_t transfer_idle_timeout_ms = 30000;
  std::size_t chunk_target_bytes = 256 * 1024;
  std::size_t max_in_flight_bytes = 4u << 20;    // per transfer, well under a connection's send queue bound
  std::uint64_t max_snapshot_bytes = 8ull << 30; // a pulled or uploaded stream
};

struct SnapshotMetrics {
  std::uint64_t local_snapshots = 0;          // written by compaction
  std::uint64_t local_snapshot_failures = 0;
  std::uint64_t wal_compactions = 0;
  std::uint64_t installs = 0;                 // from a peer
  std::uint64_t install_failures = 0;         // transfers that failed verification, errors, timeouts
  std::uint64_t restores = 0;                 // PUT /v1/snapshot
  std::uint64_t downloads = 0;                // GET /v1/snapshot
  std::uint64_t transfers_served = 0;
  std::uint64_t chunks_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t chunks_received = 0;
  std::uint64_t bytes_received = 0;
  double last_write_seconds = 0;              // capture → durable file, last local snapshot
  double last_install_seconds = 0;            // first chunk requested → installed
  std::uint64_t last_snapshot_bytes = 0;
  std::uint64_t last_snapshot_entries = 0;
  std::string last_snapshot_path;
};

class SnapshotService {
 public:
  struct Host {
    uv_loop_t* loop = nullptr;
    std::string snapshots_dir;                 // DATA/snapshots
    fs::FileSystem* fs = nullptr;              // the loop thread's
    statestore::Store* store = nullptr;
    wal::Wal* wal = nullptr;
    std::function<void(NodeId peer, wire::PeerMessage message)> send;
    // After the store's state was replaced (peer snapshot or restore): the
    // agent re-applies its own recent deltas, wakes readers and asks for the
    // rest. `source` names where the snapshot came from, for the log.
    // `replaced`: the state was replaced (a stale node), not merged into.
    std::function<void(const std::string& source, bool replaced)> on_installed;
    // Asked before any install with the snapshot's applied vector: Conflict
    // when installing would lose writes the node cannot replay (its own
    // writes the snapshot lacks, older than its catch-up tail) — installing
    // them away would let the node reuse their seqs.
    std::function<Status(const statestore::VersionVector& snapshot_applied)> check_install;
    // True when a pulled snapshot must REPLACE the state (the node was away
    // longer than tombstone_gc: deletes it missed may be collected, so a merge
    // could revive keys); otherwise it is merged (Store::MergeSnapshot).
    std::function<bool()> replace_on_install;
    std::function<std::uint64_t()> wall_ms;
  };

  SnapshotService(Host host, SnapshotServiceOptions options, Prng rng);
  ~SnapshotService();
  SnapshotService(const SnapshotService&) = delete;
  SnapshotService& operator=(const SnapshotService&) = delete;

  // Start-up, before the WAL replay: installs the newest valid snapshot in
  // `store` (keeping its local indexes); falls back loudly past invalid ones.
  // Returns the installed snapshot's meta, or nullopt when there is none.
  static Result<std::optional<snapshot::SnapshotMeta>> LoadAtStartup(fs::FileSystem& fs, const std::string& dir,
                                                                      statestore::Store& store);

  // Counts deltas applied to the store (local and remote); starts a local
  // snapshot every snapshot_every_deltas.
  void OnDeltasApplied(std::uint64_t count);
  // Starts a local snapshot now unless one is being written. False if busy or closing.
  bool SnapshotNow();

  void OnSnapshotRequest(NodeId from, const wire::SnapshotRequest& request);
  void OnSnapshotChunk(NodeId from, wire::SnapshotChunk chunk);
  // Pulls a snapshot from `peer` unless a pull is already running.
  void StartPull(NodeId peer);
  bool pulling() const { return pull_ != nullptr; }
  // Drops transfers with a peer whose connection is gone.
  void OnPeerLost(NodeId peer);
  // Expires idle transfers; call every housekeeping tick.
  void Housekeeping(std::uint64_t now_ms);

  void RegisterRoutes(http::HttpServer& server);
  void WriteMetrics(PrometheusWriter& w) const;
  // {"count","newest":{"path","bytes","entries",...},"last_write_ms",...} for /v1/status.
  std::string StatusJson() const;
  const SnapshotMetrics& metrics() const { return metrics_; }

  // Ends transfers and waits for a snapshot being written; on_closed runs once
  // the worker is done (at once if idle).
  void Close(std::function<void()> on_closed);

 private:
  struct Serving;
  struct Pull;
  struct LocalWrite;

  void FinishLocalWrite(LocalWrite* write, int status);
  void SendChunks(std::uint64_t transfer_id, Serving& serving, std::uint64_t received, std::uint32_t window);
  void FailPull(const std::string& why);
  // Merges (or, with `replace`, installs) a verified snapshot, tells the
  // agent, and starts a local snapshot of the result.
  Status Install(statestore::LoadedSnapshot loaded, const std::string& source, bool replace);

  Host host_;
  SnapshotServiceOptions options_;
  Prng rng_;
  SnapshotMetrics metrics_;
  std::uint64_t deltas_since_snapshot_ = 0;
  wal::Lsn previous_capture_lsn_ = 0;  // the WAL's last LSN when the previous local snapshot was captured
  LocalWrite* local_write_ = nullptr;  // owned by the worker request until its after-callback
  std::map<std::uint64_t, std::unique_ptr<Serving>> serving_;  // transfer id -> state
  std::unique_ptr<Pull> pull_;
  bool closing_ = false;
  bool snapshot_again_ = false;
  std::shared_ptr<std::size_t> downloads_active_ = std::make_shared<std::size_t>(0);  // SnapshotNow was asked while one was being written
  std::function<void()> on_closed_;
};

}  // namespace gv::daemon
