#include "daemon/snapshot_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <utility>

#include "fs/posix_file_system.h"
#include "snapshot/codec.h"

namespace gv::daemon {

using json = nlohmann::json;

namespace {

snapshot::SnapshotMeta MetaOf(const statestore::LoadedSnapshot& loaded) {
  snapshot::SnapshotMeta meta;
  meta.format_version = loaded.format_version;
  meta.node = loaded.node;
  meta.applied = loaded.applied;
  meta.hlc = loaded.hlc;
  meta.index = loaded.index;
  meta.entry_count = loaded.entries.size();
  meta.live_keys = loaded.live_keys;
  meta.created_wall_ms = loaded.created_wall_ms;
  meta.wal_lsn = loaded.wal_lsn;
  return meta;
}

double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string VectorText(const statestore::VersionVector& vector) {
  std::string out;
  for (const auto& [node, seq] : vector) {
    out += (out.empty() ? "" : ",") + node.ToString() + ":" + std::to_string(seq);
  }
  return "{" + out + "}";
}

// Streams on the loop thread while the client reads: at most this much waits
// in the HTTP responder at a time.
constexpr std::size_t kDownloadBufferBytes = 1u << 20;

}  // namespace

// A local snapshot being written on a libuv worker thread. The view is
// immutable and safe to read there while the loop keeps writing the store.
struct SnapshotService::LocalWrite {
  uv_work_t work{};
  SnapshotService* service = nullptr;
  std::string dir;
  statestore::StoreView view;
  std::uint64_t created_wall_ms = 0;
  wal::Lsn wal_lsn_at_capture = 0;
  std::chrono::steady_clock::time_point started;
  Result<snapshot::SnapshotFileInfo> result = Status::Aborted("not written");
};

// A transfer this node serves: the captured view and the encoder's position.
struct SnapshotService::Serving {
  NodeId peer;
  std::unique_ptr<snapshot::SnapshotEncoder> encoder;
  std::string lookahead;  // the chunk after the last one sent, so `last` is known
  bool lookahead_valid = false;
  std::uint64_t next_index = 0;
  std::deque<std::size_t> in_flight_bytes;  // sizes of chunks sent and not yet acknowledged, oldest first
  std::uint64_t acknowledged = 0;           // chunks the requester said it holds
  std::uint64_t last_activity_ms = 0;
};

// The transfer this node pulls.
struct SnapshotService::Pull {
  NodeId peer;
  std::uint64_t transfer = 0;
  std::optional<snapshot::SnapshotDecoder> decoder;  // verifies each chunk and keeps the entries
  std::uint64_t received = 0;
  std::uint64_t last_activity_ms = 0;
  std::chrono::steady_clock::time_point started;
  int logged_tenths = 0;
};

SnapshotService::SnapshotService(Host host, SnapshotServiceOptions options, Prng rng)
    : host_(std::move(host)), options_(options), rng_(std::move(rng)) {}

SnapshotService::~SnapshotService() = default;

Result<std::optional<snapshot::SnapshotMeta>> SnapshotService::LoadAtStartup(fs::FileSystem& fs,
                                                                              const std::string& dir,
                                                                              statestore::Store& store) {
  std::vector<std::string> skipped;
  const auto started = std::chrono::steady_clock::now();
  auto cleaned = snapshot::CleanTempFiles(fs, dir);
  if (!cleaned.ok()) return cleaned.status();
  if (*cleaned > 0) spdlog::warn("removed {} unfinished snapshot temp files in {}", *cleaned, dir);
  auto loaded = snapshot::LoadNewestValidSnapshot(fs, dir, &skipped);
  for (const std::string& why : skipped) {
    spdlog::error("snapshot unusable, falling back to an older one: {}", why);
  }
  if (!loaded.ok()) {
    if (loaded.status().code() == StatusCode::kNotFound) {
      if (!skipped.empty()) {
        spdlog::error("no valid snapshot in {}: starting from the WAL alone ({} unusable)", dir, skipped.size());
      }
      return std::optional<snapshot::SnapshotMeta>();
    }
    return loaded.status();
  }
  snapshot::SnapshotMeta meta = MetaOf(*loaded);
  GV_RETURN_IF_ERROR(store.Install(std::move(*loaded), /*keep_local_indexes=*/true));
  spdlog::info("loaded snapshot of {} entries covering {} in {:.0f} ms", meta.entry_count,
               VectorText(meta.applied), SecondsSince(started) * 1000);
  return std::optional<snapshot::SnapshotMeta>(std::move(meta));
}

// ------------------------------------------------------------ local snapshots

void SnapshotService::OnDeltasApplied(std::uint64_t count) {
  deltas_since_snapshot_ += count;
  if (deltas_since_snapshot_ >= options_.snapshot_every_deltas) SnapshotNow();
}

bool SnapshotService::SnapshotNow() {
  if (closing_) return false;
  if (local_write_ != nullptr) {
    snapshot_again_ = true;  // FinishLocalWrite starts it
    return false;
  }
  deltas_since_snapshot_ = 0;
  auto* write = new LocalWrite;
  write->work.data = write;
  write->service = this;
  write->dir = host_.snapshots_dir;
  write->started = std::chrono::steady_clock::now();
  // Every record up to this LSN was applied to the store before the capture
  // (the agent applies, then logs), so the snapshot covers them.
  write->wal_lsn_at_capture = host_.wal->last_lsn();
  write->view = host_.store->Capture();
  write->created_wall_ms = host_.wall_ms();
  local_write_ = write;
  const int rc = uv_queue_work(
      host_.loop, &write->work,
      [](uv_work_t* work) {
        auto* w = static_cast<LocalWrite*>(work->data);
        fs::PosixFileSystem fs;  // this thread's own
        w->result = snapshot::WriteSnapshotFile(fs, w->dir, w->view, w->created_wall_ms, w->wal_lsn_at_capture);
        // Dropped here, off the loop thread, once the file is durable. With
        // writes going on while the view was held, this frees the nodes
        // copied away meanwhile: ~165 ms for 1M keys under a write load
        // (snapshot_bench), a stall for every request if the loop thread did
        // it. persistent_map.h allows another thread to drop a view.
        w->view = statestore::StoreView();
      },
      [](uv_work_t* work, int status) {
        auto* w = static_cast<LocalWrite*>(work->data);
        w->service->FinishLocalWrite(w, status);
      });
  if (rc != 0) {
    local_write_ = nullptr;
    delete write;
    ++metrics_.local_snapshot_failures;
    spdlog::error("cannot start a snapshot: {}", uv_strerror(rc));
    return false;
  }
  return true;
}

void SnapshotService::FinishLocalWrite(LocalWrite* write, int status) {
  std::unique_ptr<LocalWrite> owned(write);
  local_write_ = nullptr;
  if (status != 0 || !write->result.ok()) {
    ++metrics_.local_snapshot_failures;
    spdlog::error("local snapshot failed: {} (the WAL is kept whole; the next one is tried after {} more deltas)",
                  status != 0 ? std::string(uv_strerror(status)) : write->result.status().ToString(),
                  options_.snapshot_every_deltas);
  } else {
    const snapshot::SnapshotFileInfo& info = *write->result;
    ++metrics_.local_snapshots;
    metrics_.last_write_seconds = SecondsSince(write->started);
    metrics_.last_snapshot_bytes = info.bytes;
    metrics_.last_snapshot_entries = info.entries;
    metrics_.last_snapshot_path = info.path;
    Status pruned = snapshot::PruneSnapshots(*host_.fs, host_.snapshots_dir, options_.keep_snapshots);
    if (!pruned.ok()) spdlog::warn("removing old snapshots: {}", pruned.ToString());
    // WAL records are dropped only below both (a) the capture point of the
    // PREVIOUS snapshot, so that falling back to it (the newest one damaged)
    // still finds every later record, and (b) the catch-up tail: the last
    // catchup_tail_records stay so peers that fall a little behind (and this
    // node after a restart) still get deltas, not a snapshot. The first
    // snapshot after start-up deletes nothing.
    const wal::Lsn last = host_.wal->last_lsn();
    const wal::Lsn tail_floor = last > options_.catchup_tail_records ? last - options_.catchup_tail_records + 1 : 1;
    const wal::Lsn floor = std::min<wal::Lsn>(previous_capture_lsn_ + 1, tail_floor);
    previous_capture_lsn_ = write->wal_lsn_at_capture;
    if (!closing_ && floor > 1) {
      Status compacted = host_.wal->RemoveSegmentsBefore(floor);
      if (compacted.ok()) {
        ++metrics_.wal_compactions;
      } else {
        spdlog::warn("WAL compaction after the snapshot failed: {}", compacted.ToString());
      }
    }
    spdlog::info("snapshot {}: {} entries, {} bytes in {:.0f} ms; WAL kept from record {}", info.path, info.entries,
                 info.bytes, metrics_.last_write_seconds * 1000, floor);
  }
  if (closing_ && on_closed_) {
    auto done = std::move(on_closed_);
    on_closed_ = nullptr;
    done();
    return;
  }
  if (snapshot_again_) {
    snapshot_again_ = false;
    SnapshotNow();
  }
}

// ------------------------------------------------------------ serving peers

void SnapshotService::OnSnapshotRequest(NodeId from, const wire::SnapshotRequest& request) {
  if (closing_) return;
  auto refuse = [&](const std::string& why) {
    wire::SnapshotChunk chunk;
    chunk.transfer = request.transfer;
    chunk.error = why;
    host_.send(from, std::move(chunk));
  };
  auto it = serving_.find(request.transfer);
  if (it == serving_.end()) {
    if (request.received != 0) return refuse("unknown snapshot transfer (expired or already finished)");
    if (serving_.size() >= options_.max_serving_transfers) {
      return refuse("busy: " + std::to_string(serving_.size()) + " snapshot transfers in progress; retry later");
    }
    auto serving = std::make_unique<Serving>();
    serving->peer = from;
    serving->encoder = std::make_unique<snapshot::SnapshotEncoder>(host_.store->Capture(), host_.wall_ms(),
                                                                     host_.wal->last_lsn(), options_.chunk_target_bytes);
    ++metrics_.transfers_served;
    spdlog::info("serving a snapshot of {} entries to {} (transfer {:016x})", serving->encoder->meta().entry_count,
                 from.ToString(), request.transfer);
    it = serving_.emplace(request.transfer, std::move(serving)).first;
  } else if (it->second->peer != from) {
    return refuse("snapshot transfer belongs to another peer");
  }
  SendChunks(request.transfer, *it->second, request.received, request.window);
}

void SnapshotService::SendChunks(std::uint64_t transfer_id, Serving& serving, std::uint64_t received,
                                 std::uint32_t window) {
  serving.last_activity_ms = uv_now(host_.loop);
  // The requester cannot hold chunks not sent yet; a larger count is clamped.
  received = std::min(received, serving.next_index);
  while (serving.acknowledged < received && !serving.in_flight_bytes.empty()) {
    serving.in_flight_bytes.pop_front();
    ++serving.acknowledged;
  }
  std::size_t bytes_in_flight = 0;
  for (std::size_t bytes : serving.in_flight_bytes) bytes_in_flight += bytes;
  // In flight: at most `window` chunks (the requester's ask, capped) and
  // max_in_flight_bytes (well under the connection's send queue bound, so a
  // transfer of large values never makes the link look like a slow peer).
  const std::uint32_t effective_window = std::clamp<std::uint32_t>(window, 1, options_.window_chunks);
  while (serving.next_index < received + effective_window &&
         (serving.in_flight_bytes.empty() || bytes_in_flight < options_.max_in_flight_bytes)) {
    std::string data;
    if (serving.lookahead_valid) {
      data = std::move(serving.lookahead);
      serving.lookahead_valid = false;
    } else if (!serving.encoder->NextChunk(&data)) {
      break;  // only reached when the stream is empty, which an encoder never makes
    }
    serving.lookahead.clear();
    serving.lookahead_valid = serving.encoder->NextChunk(&serving.lookahead);
    wire::SnapshotChunk chunk;
    chunk.transfer = transfer_id;
    chunk.index = serving.next_index++;
    chunk.last = !serving.lookahead_valid;
    ++metrics_.chunks_sent;
    metrics_.bytes_sent += data.size();
    bytes_in_flight += data.size();
    serving.in_flight_bytes.push_back(data.size());
    chunk.data = std::move(data);
    const bool last = chunk.last;
    const NodeId peer = serving.peer;
    host_.send(peer, std::move(chunk));
    if (last) {
      spdlog::info("snapshot transfer {:016x} to {}: all {} chunks sent", transfer_id, peer.ToString(),
                   serving.next_index);
      serving_.erase(transfer_id);  // `serving` is gone
      return;
    }
  }
}

// ------------------------------------------------------------ pulling

void SnapshotService::StartPull(NodeId peer) {
  if (closing_ || pull_ != nullptr) return;
  pull_ = std::make_unique<Pull>();
  pull_->peer = peer;
  do {
    pull_->transfer = rng_.NextU64();
  } while (pull_->transfer == 0);
  pull_->decoder.emplace(options_.max_snapshot_bytes, /*keep_entries=*/true);
  pull_->last_activity_ms = uv_now(host_.loop);
  pull_->started = std::chrono::steady_clock::now();
  spdlog::info("catch-up by snapshot: the gap is beyond {}'s catch-up tail; pulling its snapshot (transfer {:016x})",
               peer.ToString(), pull_->transfer);
  host_.send(peer, wire::SnapshotRequest{pull_->transfer, 0, options_.window_chunks});
}

void SnapshotService::FailPull(const std::string& why) {
  ++metrics_.install_failures;
  spdlog::warn("snapshot transfer from {} failed: {}; the next anti-entropy round tries again", pull_->peer.ToString(),
               why);
  pull_.reset();
}

void SnapshotService::OnSnapshotChunk(NodeId from, wire::SnapshotChunk chunk) {
  if (closing_ || pull_ == nullptr || chunk.transfer != pull_->transfer || from != pull_->peer) return;
  if (!chunk.error.empty()) return FailPull("the peer refused: " + chunk.error);
  if (chunk.index != pull_->received) {
    return FailPull("chunk " + std::to_string(chunk.index) + " arrived, expected " + std::to_string(pull_->received));
  }
  ++metrics_.chunks_received;
  metrics_.bytes_received += chunk.data.size();
  Status appended = pull_->decoder->Feed(chunk.data);
  if (!appended.ok()) return FailPull(appended.ToString());
  ++pull_->received;
  pull_->last_activity_ms = uv_now(host_.loop);
  const snapshot::SnapshotDecoder& decoder = *pull_->decoder;
  if (const snapshot::SnapshotMeta* meta = decoder.meta(); meta != nullptr && meta->entry_count > 0) {
    const int tenths = static_cast<int>(decoder.entries() * 10 / meta->entry_count);
    if (tenths > pull_->logged_tenths) {
      pull_->logged_tenths = tenths;
      spdlog::info("snapshot transfer from {}: {}% ({} of {} entries, {} bytes)", from.ToString(), tenths * 10,
                   decoder.entries(), meta->entry_count, decoder.bytes());
    }
  }
  if (!chunk.last) {
    host_.send(from, wire::SnapshotRequest{pull_->transfer, pull_->received, options_.window_chunks});
    return;
  }
  if (!pull_->decoder->complete()) return FailPull("the last chunk arrived but the stream is incomplete");
  auto loaded = pull_->decoder->Finish();
  if (!loaded.ok()) return FailPull(loaded.status().ToString());
  const std::string source = "peer " + from.ToString();
  const auto started = pull_->started;
  pull_.reset();
  Status installed = Install(std::move(*loaded), source, host_.replace_on_install && host_.replace_on_install());
  if (!installed.ok()) {
    ++metrics_.install_failures;
    spdlog::error("installing the snapshot from {} failed: {}", source, installed.ToString());
    return;
  }
  ++metrics_.installs;
  metrics_.last_install_seconds = SecondsSince(started);
  spdlog::info("catch-up by snapshot from {} done in {:.0f} ms", source, metrics_.last_install_seconds * 1000);
}

Status SnapshotService::Install(statestore::LoadedSnapshot loaded, const std::string& source, bool replace) {
  const snapshot::SnapshotMeta meta = MetaOf(loaded);
  if (replace) {
    if (host_.check_install) GV_RETURN_IF_ERROR(host_.check_install(loaded.applied));
    GV_RETURN_IF_ERROR(host_.store->Install(std::move(loaded), /*keep_local_indexes=*/false));
  } else {
    GV_RETURN_IF_ERROR(host_.store->MergeSnapshot(std::move(loaded)));
  }
  metrics_.last_snapshot_entries = meta.entry_count;
  spdlog::info("{} a snapshot from {}: {} entries covering {}", replace ? "installed (replacing the state)" : "merged",
               source, meta.entry_count, VectorText(meta.applied));
  if (host_.on_installed) host_.on_installed(source, replace);
  // The new state lives only in memory until a local snapshot holds it (it
  // is not in the WAL): write one now. A crash before it completes restarts
  // from the previous snapshot and the WAL, and anti-entropy does this again.
  SnapshotNow();
  return Status::Ok();
}

void SnapshotService::OnPeerLost(NodeId peer) {
  for (auto it = serving_.begin(); it != serving_.end();) {
    it = it->second->peer == peer ? serving_.erase(it) : std::next(it);
  }
  if (pull_ != nullptr && pull_->peer == peer) FailPull("the connection to the peer was lost");
}

void SnapshotService::Housekeeping(std::uint64_t now_ms) {
  for (auto it = serving_.begin(); it != serving_.end();) {
    if (now_ms - it->second->last_activity_ms > options_.transfer_idle_timeout_ms) {
      spdlog::warn("snapshot transfer {:016x} to {} expired: no request for {} ms", it->first,
                   it->second->peer.ToString(), options_.transfer_idle_timeout_ms);
      it = serving_.erase(it);
    } else {
      ++it;
    }
  }
  if (pull_ != nullptr && now_ms - pull_->last_activity_ms > options_.transfer_idle_timeout_ms) {
    FailPull("no chunk for " + std::to_string(options_.transfer_idle_timeout_ms) + " ms");
  }
}

// ------------------------------------------------------------ HTTP backup

namespace {

// GET /v1/snapshot: encodes while the client reads, a chunk at a time, never
// more than kDownloadBufferBytes waiting. The drained callback holds the
// download alive; the server drops it when the client leaves.
struct Download {
  http::Responder responder;
  std::unique_ptr<snapshot::SnapshotEncoder> encoder;
  std::shared_ptr<std::size_t> active;  // the service's count of open downloads
  ~Download() {
    if (active) --*active;
  }

  static void Pump(const std::shared_ptr<Download>& self) {
    if (!self->responder.alive()) return;
    while (self->responder.buffered_bytes() < kDownloadBufferBytes) {
      std::string chunk;
      if (!self->encoder->NextChunk(&chunk)) {
        self->responder.End();
        return;
      }
      self->responder.Send(std::move(chunk));
    }
    self->responder.OnDrained([self] { Pump(self); });
  }
};

}  // namespace

void SnapshotService::RegisterRoutes(http::HttpServer& server) {
  server.Route("GET", "/v1/snapshot", [this](http::Request&, http::Responder responder) {
    if (closing_) {
      return responder.Finish(http::Response::Error(503, "shutting_down", "the agent is leaving"));
    }
    // Each download holds a view (memory grows with every write while it is
    // open): a few at a time.
    if (*downloads_active_ >= options_.max_downloads) {
      return responder.Finish(http::Response::Error(
          503, "busy", std::to_string(*downloads_active_) + " snapshot downloads in progress; retry later"));
    }
    ++metrics_.downloads;
    ++*downloads_active_;
    auto download = std::make_shared<Download>();
    download->active = downloads_active_;
    download->responder = responder;
    download->encoder = std::make_unique<snapshot::SnapshotEncoder>(
        host_.store->Capture(), host_.wall_ms(), host_.wal->last_lsn(), options_.chunk_target_bytes);
    responder.StartStream(200, "application/octet-stream",
                          {{"X-Grapevine-Snapshot-Entries", std::to_string(download->encoder->meta().entry_count)},
                           {"Content-Disposition", "attachment; filename=\"grapevine.snap\""}});
    Download::Pump(download);
  });

  server.Route(
      "PUT", "/v1/snapshot",
      [this](http::Request& request, http::Responder responder) {
        if (closing_) {
          return responder.Finish(http::Response::Error(503, "shutting_down", "the agent is leaving"));
        }
        if (request.body.empty()) {
          return responder.Finish(
              http::Response::Error(400, "bad_request", "the body must be a snapshot (grapevine snapshot save FILE)"));
        }
        snapshot::SnapshotDecoder decoder(options_.max_snapshot_bytes, /*keep_entries=*/true);
        Status verified = decoder.Feed(request.body);
        if (verified.ok() && !decoder.complete()) {
          verified = Status::Corruption("the snapshot is incomplete: it ends after " +
                                        std::to_string(decoder.chunks()) + " chunks");
        }
        if (!verified.ok()) return responder.Finish(http::Response::Error(400, "bad_snapshot", verified.message()));
        auto loaded = decoder.Finish();
        if (!loaded.ok()) return responder.Finish(http::Response::Error(400, "bad_snapshot", loaded.status().message()));
        const std::uint64_t entries = loaded->entries.size();
        // A restore merges: it brings back what this node lacks and never
        // rolls back a newer write (peers would only send it again).
        Status installed = Install(std::move(*loaded), "a restore (PUT /v1/snapshot)", /*replace=*/false);
        if (!installed.ok()) {
          return responder.Finish(http::Response::Error(400, "bad_snapshot", installed.message()));
        }
        ++metrics_.restores;
        json out;
        out["restored"] = true;
        out["entries"] = entries;
        out["bytes"] = request.body.size();
        out["keys"] = host_.store->KeyCount();
        responder.Finish(http::Response::Json(200, out.dump()));
      },
      /*large_body=*/true);
}

// ------------------------------------------------------------ observability

void SnapshotService::WriteMetrics(PrometheusWriter& w) const {
  using T = PrometheusWriter::Type;
  w.Counter("grapevine_snapshot_installs_total", "Snapshots pulled from a peer and installed (catch-up by snapshot)",
            static_cast<double>(metrics_.installs));
  w.Counter("grapevine_snapshot_install_failures_total",
            "Snapshot pulls that failed (refused, verification, timeout, IO)",
            static_cast<double>(metrics_.install_failures));
  w.Counter("grapevine_snapshots_written_total", "Local snapshots written by compaction",
            static_cast<double>(metrics_.local_snapshots));
  w.Counter("grapevine_snapshot_write_failures_total", "Local snapshots that failed",
            static_cast<double>(metrics_.local_snapshot_failures));
  w.Counter("grapevine_snapshot_restores_total", "Snapshots restored with PUT /v1/snapshot",
            static_cast<double>(metrics_.restores));
  w.Counter("grapevine_snapshot_downloads_total", "GET /v1/snapshot downloads started",
            static_cast<double>(metrics_.downloads));
  w.Counter("grapevine_snapshot_transfers_served_total", "Snapshot transfers started for peers",
            static_cast<double>(metrics_.transfers_served));
  {
    auto family = w.Family("grapevine_snapshot_chunks_total", T::kCounter, "Snapshot chunks by direction");
    family.Sample(static_cast<double>(metrics_.chunks_sent), {{"direction", "sent"}});
    family.Sample(static_cast<double>(metrics_.chunks_received), {{"direction", "received"}});
  }
  {
    auto family = w.Family("grapevine_snapshot_transfer_bytes_total", T::kCounter, "Snapshot bytes by direction");
    family.Sample(static_cast<double>(metrics_.bytes_sent), {{"direction", "sent"}});
    family.Sample(static_cast<double>(metrics_.bytes_received), {{"direction", "received"}});
  }
  w.Gauge("grapevine_snapshot_write_seconds", "Capture to durable file, the last local snapshot",
          metrics_.last_write_seconds);
  w.Gauge("grapevine_snapshot_install_seconds", "First request to installed, the last snapshot pulled",
          metrics_.last_install_seconds);
  w.Gauge("grapevine_snapshot_bytes", "Size of the last local snapshot", static_cast<double>(metrics_.last_snapshot_bytes));
  w.Counter("grapevine_wal_compactions_total", "WAL compactions after a local snapshot",
            static_cast<double>(metrics_.wal_compactions));
  w.Gauge("grapevine_snapshot_pull_in_progress_bytes", "Bytes received so far by the snapshot pull in progress",
          pull_ != nullptr && pull_->decoder ? static_cast<double>(pull_->decoder->bytes()) : 0.0);
}

std::string SnapshotService::StatusJson() const {
  json out;
  auto files = snapshot::ListSnapshotFiles(*host_.fs, host_.snapshots_dir);
  out["files"] = files.ok() ? files->size() : 0;
  if (files.ok() && !files->empty()) out["newest"] = files->front();
  out["written"] = metrics_.local_snapshots;
  out["installs"] = metrics_.installs;
  out["restores"] = metrics_.restores;
  out["last_write_ms"] = metrics_.last_write_seconds * 1000;
  out["last_bytes"] = metrics_.last_snapshot_bytes;
  out["last_entries"] = metrics_.last_snapshot_entries;
  out["deltas_since_last"] = deltas_since_snapshot_;
  out["snapshot_every"] = options_.snapshot_every_deltas;
  out["pulling"] = pull_ != nullptr;
  out["serving"] = serving_.size();
  return out.dump();
}

void SnapshotService::Close(std::function<void()> on_closed) {
  closing_ = true;
  serving_.clear();
  pull_.reset();
  if (local_write_ == nullptr) {
    on_closed();
    return;
  }
  on_closed_ = std::move(on_closed);  // FinishLocalWrite runs it
}

}  // namespace gv::daemon
