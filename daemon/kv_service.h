// KvService: the key/value part of the HTTP contract (DESIGN.md §6) over the
// local store and the WAL.
//
//   GET    /v1/kv/<key>      ?raw ?recurse ?keys ?index=N&wait=30s
//   PUT    /v1/kv/<key>      body = value; ?cas=<version> ?flags=N
//   DELETE /v1/kv/<key>      ?recurse ?cas=<version>
//   GET    /v1/watch?prefix=P  Server-Sent Events, one event per change
//
// The write path: request -> delta (Store::MakeLocalDelta) -> applied to the
// local store (so the next delta gets the next seq) -> WAL via WalWriter ->
// once durable, handed to `on_durable` (the broadcast) -> answered. A write is
// acknowledged only when durable per the durability mode, and leaves the node
// only then, so a crash can never have published a delta whose seq the
// restarted node would reuse. Local readers may see a write a few hundred
// microseconds before it is durable; it is never acknowledged before.
//
// Every read answers X-Grapevine-Index (the store's local change counter). A
// read with ?index=N waits (up to ?wait, default 5m, at most 10m) until a key
// it covers changes past N, then answers as an ordinary read.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "daemon/http/server.h"
#include "daemon/wal_writer.h"
#include "statestore/store.h"

namespace gv::daemon {

struct KvServiceOptions {
  std::int64_t default_wait_ms = 5 * 60 * 1000;
  std::int64_t max_wait_ms = 10 * 60 * 1000;
  std::uint64_t sse_keepalive_ms = 15 * 1000;
  std::size_t max_blocking_reads = 10000;
  std::size_t max_watchers = 1000;
  std::size_t max_recurse_results = 100000;
};

struct KvMetrics {
  std::uint64_t writes = 0;          // acknowledged write requests
  std::uint64_t write_errors = 0;    // refused (limits, CAS) or failed (WAL)
  std::uint64_t cas_conflicts = 0;
  std::uint64_t write_groups = 0;    // deltas made from grouped single-key writes
  std::uint64_t grouped_writes = 0;  // single-key writes those deltas carried
  std::uint64_t blocking_reads = 0;  // currently waiting
  std::uint64_t watchers = 0;        // open SSE streams
  std::uint64_t watch_events = 0;
};

class KvService {
 public:
  using WallClockMs = std::function<std::uint64_t()>;
  using OnDurable = std::function<void(const statestore::Delta& delta, const std::string& encoded)>;

  KvService(uv_loop_t* loop, statestore::Store& store, WalWriter& wal_writer, WallClockMs clock,
            OnDurable on_durable, KvServiceOptions options = {});
  ~KvService();
  KvService(const KvService&) = delete;
  KvService& operator=(const KvService&) = delete;

  void RegisterRoutes(http::HttpServer& server);

  // After any Store::Apply (local or from a peer): wakes blocking reads and
  // sends watch events for the changed keys.
  void NotifyChanged(const std::map<std::string, std::uint64_t>& changed);
  // After the whole state was replaced (a snapshot installed): wakes every
  // blocking read and sends every watch stream an "event: reset" carrying the
  // new index, so clients read again.
  void NotifyReplaced();

  // Answers every waiting read, ends every watch stream and closes the timers.
  // on_closed runs once the last handle is closed.
  void Close(std::function<void()> on_closed);

  const KvMetrics& metrics() const { return metrics_; }

  struct Impl;  // implementation detail (kv_service.cc)

 private:
  std::unique_ptr<Impl> impl_;
  KvMetrics metrics_;
};

// {"key","value","version","hlc","origin","conflict","flags"} — value as a
// JSON string when it is valid UTF-8, otherwise base64 with "encoding":"base64".
std::string EntryJson(std::string_view key, const statestore::KeyEntry& entry);
bool IsValidUtf8(std::string_view text);

}  // namespace gv::daemon
