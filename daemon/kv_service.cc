#include "daemon/kv_service.h"

#include <sodium.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <vector>

#include "daemon/http/url.h"
#include "wire/delta_codec.h"

namespace gv::daemon {

using http::Request;
using http::Responder;
using http::Response;
using statestore::KeyEntry;
using statestore::LocalOp;
using statestore::OpKind;

bool IsValidUtf8(std::string_view text) {
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += len;
  }
  return true;
}

namespace {

std::string Base64(std::string_view bytes) {
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
                    sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

nlohmann::json EntryObject(std::string_view key, const KeyEntry& entry) {
  nlohmann::json j;
  j["key"] = std::string(key);
  if (IsValidUtf8(entry.value)) {
    j["value"] = entry.value;
  } else {
    j["value"] = Base64(entry.value);
    j["encoding"] = "base64";
  }
  j["version"] = entry.modify_index;
  j["create_version"] = entry.create_index;
  j["hlc"] = entry.hlc.ToString();
  j["origin"] = entry.origin.ToString();
  j["conflict"] = entry.conflict;
  j["flags"] = entry.flags;
  return j;
}

Response StatusResponse(const Status& status) {
  switch (status.code()) {
    case StatusCode::kConflict: return Response::Error(409, "cas_mismatch", status.message());
    case StatusCode::kTooLarge: return Response::Error(413, "too_large", status.message());
    case StatusCode::kInvalidArgument: return Response::Error(400, "bad_request", status.message());
    case StatusCode::kNotFound: return Response::Error(404, "not_found", status.message());
    case StatusCode::kUnavailable:
    case StatusCode::kIOError: return Response::Error(503, "unavailable", status.message());
    default: return Response::Error(500, "internal", status.ToString());
  }
}

constexpr std::string_view kKvPrefix = "/v1/kv/";

}  // namespace

std::string EntryJson(std::string_view key, const KeyEntry& entry) { return EntryObject(key, entry).dump(); }

// A read waiting for a change (?index=N). The timer is the first member so the
// close callback can free the whole waiter.
struct BlockingRead {
  uv_timer_t timer;
  KvService::Impl* impl = nullptr;
  std::uint64_t id = 0;
  std::string key;  // the key, or the prefix with ?recurse / ?keys
  bool prefix = false;
  Request request;
  Responder responder;
};

struct Watch {
  std::string prefix;
  Responder responder;
};

struct KvService::Impl {
  KvService* owner = nullptr;
  uv_loop_t* loop = nullptr;
  statestore::Store& store;
  WalWriter& writer;
  WallClockMs clock;
  OnDurable on_durable;
  KvServiceOptions options;
  KvMetrics& metrics;

  std::map<std::uint64_t, BlockingRead*> blocking;
  std::map<std::uint64_t, Watch> watches;
  std::uint64_t next_id = 1;
  uv_timer_t keepalive{};
  bool keepalive_started = false;

  // Write grouping. Single-key PUTs and DELETEs that arrive in one loop
  // iteration become one delta (one seq, one WAL record, one broadcast), the
  // way etcd batches proposals: under load the per-delta costs (Plumtree ids,
  // frames, WAL records, catch-up tail entries) are paid once per group
  // instead of once per request. Invariants: the group's keys are distinct (a
  // second write of a key flushes the group first, so it sees the first one's
  // result, ?cas included); the group is flushed by the prepare handle before
  // the loop next blocks in poll, so grouping never delays a write past the
  // current iteration; each request is checked on its own at the flush, so a
  // refused one (?cas mismatch, limits) fails alone.
  struct PendingWrite {
    LocalOp op;
    std::function<void(const Status&, std::uint64_t version, const statestore::Hlc&)> done;
  };
  static constexpr std::size_t kMaxGroupOps = 64;
  static constexpr std::size_t kMaxGroupBytes = 256 * 1024;  // keys + values
  std::vector<PendingWrite> group;
  std::set<std::string, std::less<>> group_keys;
  std::size_t group_bytes = 0;
  uv_prepare_t group_flush{};
  bool closing = false;
  int closing_handles = 0;
  std::function<void()> on_closed;

  Impl(KvService* o, uv_loop_t* l, statestore::Store& s, WalWriter& w, WallClockMs c, OnDurable d,
       KvServiceOptions opt, KvMetrics& m)
      : owner(o), loop(l), store(s), writer(w), clock(std::move(c)), on_durable(std::move(d)), options(opt),
        metrics(m) {
    uv_timer_init(loop, &keepalive);
    keepalive.data = this;
    uv_prepare_init(loop, &group_flush);
    group_flush.data = this;
  }

  Response WithIndex(Response r) const {
    r.headers.emplace_back("X-Grapevine-Index", std::to_string(store.Index()));
    return r;
  }

  // The non-blocking read of the contract.
  Response Read(const Request& req, const std::string& key) const {
    if (req.Has("keys")) {
      std::vector<std::string> keys = store.KeysUnderPrefix(key, options.max_recurse_results);
      if (keys.empty()) return WithIndex(Response::Error(404, "not_found", "no keys under prefix '" + key + "'"));
      return WithIndex(Response::Json(200, nlohmann::json(keys).dump()));
    }
    if (req.Has("recurse")) {
      nlohmann::json entries = nlohmann::json::array();
      std::size_t count = 0;
      store.VisitPrefix(key, [&](std::string_view k, const KeyEntry& entry) {
        entries.push_back(EntryObject(k, entry));
        return ++count < options.max_recurse_results;
      });
      if (entries.empty()) return WithIndex(Response::Error(404, "not_found", "no keys under prefix '" + key + "'"));
      return WithIndex(Response::Json(200, entries.dump()));
    }
    if (key.empty()) return Response::Error(400, "bad_request", "missing key: GET /v1/kv/<key> (or ?recurse / ?keys)");
    const KeyEntry* entry = store.Get(key);
    if (entry == nullptr) return WithIndex(Response::Error(404, "not_found", "key '" + key + "' not found"));
    if (req.Has("raw")) {
      Response r;
      r.status = 200;
      r.content_type = "application/octet-stream";
      r.body = entry->value;
      return WithIndex(std::move(r));
    }
    return WithIndex(Response::Json(200, EntryObject(key, *entry).dump()));
  }

  void HandleGet(Request& req, Responder responder) {
    const std::string key = req.path.substr(kKvPrefix.size());
    const std::string* index_param = req.Param("index");
    if (index_param == nullptr) {
      responder.Finish(Read(req, key));
      return;
    }
    auto index = http::ParseUint(*index_param);
    if (!index.ok()) {
      responder.Finish(Response::Error(400, "bad_request", "?index: " + index.status().message()));
      return;
    }
    std::int64_t wait_ms = options.default_wait_ms;
    if (const std::string* wait = req.Param("wait")) {
      auto d = http::ParseDuration(*wait);
      if (!d.ok()) {
        responder.Finish(Response::Error(400, "bad_request", "?wait: " + d.status().message()));
        return;
      }
      wait_ms = std::min<std::int64_t>(ToMillis(*d), options.max_wait_ms);
    }
    const bool prefix = req.Has("recurse") || req.Has("keys");
    // Over-approximates for a single key (other keys with it as a prefix
    // count): an early answer only makes the client ask again.
    if (store.MaxModifyIndexUnderPrefix(key) > *index || wait_ms <= 0 || closing) {
      responder.Finish(Read(req, key));
      return;
    }
    if (blocking.size() >= options.max_blocking_reads) {
      responder.Finish(Response::Error(503, "unavailable",
                                       "too many blocking reads (" + std::to_string(blocking.size()) +
                                           "); retry without ?index or later"));
      return;
    }
    auto* waiter = new BlockingRead{};
    uv_timer_init(loop, &waiter->timer);
    waiter->timer.data = waiter;
    waiter->impl = this;
    waiter->id = next_id++;
    waiter->key = key;
    waiter->prefix = prefix;
    waiter->request = std::move(req);
    waiter->responder = responder;
    blocking[waiter->id] = waiter;
    metrics.blocking_reads = blocking.size();
    uv_timer_start(&waiter->timer, [](uv_timer_t* t) {
      auto* w = static_cast<BlockingRead*>(t->data);
      w->impl->Wake(w);
    }, static_cast<std::uint64_t>(wait_ms), 0);
  }

  // Answers a waiting read with the current state and frees it.
  void Wake(BlockingRead* waiter) {
    blocking.erase(waiter->id);
    metrics.blocking_reads = blocking.size();
    waiter->responder.Finish(Read(waiter->request, waiter->key));
    uv_close(reinterpret_cast<uv_handle_t*>(&waiter->timer), [](uv_handle_t* h) {
      auto* w = reinterpret_cast<BlockingRead*>(h);
      KvService::Impl* impl = w->impl;
      delete w;
      impl->HandleClosed();
    });
    ++closing_handles;
  }

  void HandleWatch(Request& req, Responder responder) {
    const std::string* prefix = req.Param("prefix");
    if (prefix == nullptr) {
      responder.Finish(Response::Error(400, "bad_request", "missing ?prefix= (use ?prefix= with nothing for all keys)"));
      return;
    }
    if (watches.size() >= options.max_watchers) {
      responder.Finish(Response::Error(503, "unavailable", "too many watch streams"));
      return;
    }
    if (closing) {
      responder.Finish(Response::Error(503, "unavailable", "the agent is shutting down"));
      return;
    }
    responder.StartStream(200, "text/event-stream",
                          {{"Cache-Control", "no-cache"}, {"X-Grapevine-Index", std::to_string(store.Index())}});
    // A first comment tells the client the stream is live from this index on.
    responder.Send(": watching prefix '" + *prefix + "' from index " + std::to_string(store.Index()) + "\n\n");
    watches[next_id++] = Watch{*prefix, responder};
    metrics.watchers = watches.size();
    if (!keepalive_started) {
      keepalive_started = true;
      uv_timer_start(&keepalive, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->SendKeepalives(); },
                     options.sse_keepalive_ms, options.sse_keepalive_ms);
    }
  }

  void SendKeepalives() {
    for (auto it = watches.begin(); it != watches.end();) {
      if (!it->second.responder.alive()) {
        it = watches.erase(it);
        continue;
      }
      it->second.responder.Send(": keepalive\n\n");
      ++it;
    }
    metrics.watchers = watches.size();
  }

  void NotifyChanged(const std::map<std::string, std::uint64_t>& changed) {
    if (changed.empty()) return;
    std::vector<BlockingRead*> to_wake;
    for (auto& [id, waiter] : blocking) {
      for (const auto& [key, index] : changed) {
        bool match = waiter->prefix ? key.compare(0, waiter->key.size(), waiter->key) == 0 : key == waiter->key;
        if (match) {
          to_wake.push_back(waiter);
          break;
        }
      }
    }
    for (BlockingRead* waiter : to_wake) Wake(waiter);
    for (auto it = watches.begin(); it != watches.end();) {
      Watch& watch = it->second;
      if (!watch.responder.alive()) {
        it = watches.erase(it);
        continue;
      }
      for (const auto& [key, index] : changed) {
        if (key.compare(0, watch.prefix.size(), watch.prefix) != 0) continue;
        const KeyEntry* entry = store.Get(key);
        std::string event;
        if (entry != nullptr) {
          event = "event: put\nid: " + std::to_string(index) + "\ndata: " + EntryObject(key, *entry).dump() + "\n\n";
        } else {
          nlohmann::json j{{"key", key}, {"version", index}};
          event = "event: delete\nid: " + std::to_string(index) + "\ndata: " + j.dump() + "\n\n";
        }
        watch.responder.Send(std::move(event));
        ++metrics.watch_events;
      }
      ++it;
    }
    metrics.watchers = watches.size();
  }

  void NotifyReplaced() {
    std::vector<BlockingRead*> to_wake;
    for (auto& [id, waiter] : blocking) to_wake.push_back(waiter);
    for (BlockingRead* waiter : to_wake) Wake(waiter);
    for (auto it = watches.begin(); it != watches.end();) {
      if (!it->second.responder.alive()) {
        it = watches.erase(it);
        continue;
      }
      nlohmann::json j{{"index", store.Index()}};
      it->second.responder.Send("event: reset\nid: " + std::to_string(store.Index()) + "\ndata: " + j.dump() + "\n\n");
      ++metrics.watch_events;
      ++it;
    }
    metrics.watchers = watches.size();
  }

  // Makes, applies and logs one delta per op batch, in order; `done` runs
  // once every delta is durable (or at the first failure).
  struct WriteJob {
    std::size_t pending = 0;
    Status failure;
    std::uint64_t last_version = 0;
    statestore::Hlc last_hlc;
    std::function<void(const WriteJob&)> done;
  };

  // `versions`, when given, receives each changed key's new modify index as
  // the deltas are applied (before `done`).
  void Write(const std::vector<std::vector<LocalOp>>& batches, std::function<void(const WriteJob&)> done,
             std::map<std::string, std::uint64_t>* versions = nullptr) {
    auto job = std::make_shared<WriteJob>();
    job->done = std::move(done);
    job->pending = 1;  // released below, after every batch is submitted
    for (const auto& ops : batches) {
      auto delta = store.MakeLocalDelta(ops, clock());
      if (!delta.ok()) {
        job->failure = delta.status();
        break;
      }
      statestore::ApplyResult applied = store.Apply(*delta, clock());
      if (applied.status != statestore::ApplyStatus::kApplied) {
        job->failure = Status::Aborted("local delta not applied (" +
                                       std::string(statestore::ApplyStatusName(applied.status)) +
                                       "): " + applied.error.ToString());
        break;
      }
      for (const auto& [key, version] : applied.changed) job->last_version = std::max(job->last_version, version);
      if (versions != nullptr) versions->insert(applied.changed.begin(), applied.changed.end());
      job->last_hlc = delta->hlc;
      NotifyChanged(applied.changed);
      auto shared_delta = std::make_shared<statestore::Delta>(std::move(*delta));
      std::string encoded = wire::EncodeDelta(*shared_delta);
      ++job->pending;
      writer.Submit(encoded, [this, job, shared_delta, encoded](Result<wal::Lsn> lsn) {
        if (!lsn.ok()) {
          if (job->failure.ok()) {
            job->failure = Status::Unavailable("write-ahead log failed: " + lsn.status().message() +
                                               "; the agent accepts no more writes until restarted");
          }
        } else if (on_durable) {
          on_durable(*shared_delta, encoded);
        }
        if (--job->pending == 0) job->done(*job);
      });
    }
    if (--job->pending == 0) job->done(*job);
  }

  // Queues a single-key write into the current group (see PendingWrite).
  void Enqueue(LocalOp op, std::function<void(const Status&, std::uint64_t, const statestore::Hlc&)> done) {
    if (closing) {
      done(Status::Unavailable("the agent is shutting down"), 0, {});
      return;
    }
    const std::size_t bytes = op.key.size() + op.value.size();
    const std::size_t max_ops = std::min(kMaxGroupOps, store.limits().max_ops_per_delta);
    if (!group.empty() && (group_keys.count(op.key) != 0 || group.size() >= max_ops ||
                           group_bytes + bytes > kMaxGroupBytes)) {
      FlushGroup();
    }
    if (group.empty()) uv_prepare_start(&group_flush, [](uv_prepare_t* h) { static_cast<Impl*>(h->data)->FlushGroup(); });
    group_keys.insert(op.key);
    group_bytes += bytes;
    group.push_back(PendingWrite{std::move(op), std::move(done)});
  }

  void FlushGroup() {
    uv_prepare_stop(&group_flush);
    if (group.empty()) return;
    std::vector<PendingWrite> writes = std::move(group);
    group.clear();
    group_keys.clear();
    group_bytes = 0;
    // Each request on its own first: one refused write must not fail the others.
    std::vector<PendingWrite> accepted;
    accepted.reserve(writes.size());
    for (PendingWrite& w : writes) {
      if (Status st = store.CheckLocalOp(w.op); !st.ok()) {
        w.done(st, 0, {});
        continue;
      }
      accepted.push_back(std::move(w));
    }
    if (!accepted.empty()) WriteGroup(std::move(accepted));
  }

  // One delta for `writes` (distinct keys, each already checked). When the
  // delta as a whole is refused (its encoded size bound, with large version
  // vectors), each write is tried as its own delta, so only a write that is
  // refused alone fails.
  void WriteGroup(std::vector<PendingWrite> writes) {
    ++metrics.write_groups;
    metrics.grouped_writes += writes.size();
    auto shared = std::make_shared<std::vector<PendingWrite>>(std::move(writes));
    std::vector<LocalOp> ops;
    ops.reserve(shared->size());
    for (const PendingWrite& w : *shared) ops.push_back(w.op);
    auto versions = std::make_shared<std::map<std::string, std::uint64_t>>();
    // Write runs `done` synchronously exactly when the delta could not be
    // made or applied; later (from the WAL writer) otherwise.
    auto in_call = std::make_shared<bool>(true);
    bool refused_whole = false;
    Write(
        {std::move(ops)},
        [shared, versions, in_call, &refused_whole](const WriteJob& job) {
          if (*in_call && !job.failure.ok() && shared->size() > 1) {
            refused_whole = true;  // `refused_whole` is alive: we are inside Write
            return;
          }
          for (PendingWrite& w : *shared) {
            auto it = versions->find(w.op.key);
            w.done(job.failure, it == versions->end() ? 0 : it->second, job.last_hlc);
          }
        },
        versions.get());
    *in_call = false;
    if (refused_whole) {
      --metrics.write_groups;  // counted again per write below
      metrics.grouped_writes -= shared->size();
      for (PendingWrite& w : *shared) {
        std::vector<PendingWrite> one;
        one.push_back(std::move(w));
        WriteGroup(std::move(one));
      }
    }
  }

  void Answer(Responder responder, const Status& failure, std::uint64_t version, const statestore::Hlc& hlc,
              nlohmann::json body) {
    WriteJob job;
    job.failure = failure;
    job.last_version = version;
    job.last_hlc = hlc;
    Answer(std::move(responder), job, std::move(body));
  }

  void Answer(Responder responder, const WriteJob& job, nlohmann::json body) {
    if (!job.failure.ok()) {
      ++metrics.write_errors;
      if (job.failure.code() == StatusCode::kConflict) ++metrics.cas_conflicts;
      responder.Finish(WithIndex(StatusResponse(job.failure)));
      return;
    }
    ++metrics.writes;
    body["version"] = job.last_version;
    body["hlc"] = job.last_hlc.ToString();
    body["origin"] = store.self().ToString();
    responder.Finish(WithIndex(Response::Json(200, body.dump())));
  }

  Result<std::optional<std::uint64_t>> OptionalUint(const Request& req, const char* name) {
    const std::string* p = req.Param(name);
    if (p == nullptr) return std::optional<std::uint64_t>();
    auto v = http::ParseUint(*p);
    if (!v.ok()) return Status::InvalidArgument(std::string("?") + name + ": " + v.status().message());
    return std::optional<std::uint64_t>(*v);
  }

  void HandlePut(Request& req, Responder responder) {
    const std::string key = req.path.substr(kKvPrefix.size());
    if (key.empty()) {
      responder.Finish(Response::Error(400, "bad_request", "missing key: PUT /v1/kv/<key>"));
      return;
    }
    auto cas = OptionalUint(req, "cas");
    auto flags = OptionalUint(req, "flags");
    if (!cas.ok() || !flags.ok()) {
      responder.Finish(StatusResponse(cas.ok() ? flags.status() : cas.status()));
      return;
    }
    LocalOp op;
    op.kind = OpKind::kPut;
    op.key = key;
    op.value = std::move(req.body);
    op.flags = flags->value_or(0);
    op.cas = *cas;
    Enqueue(std::move(op), [this, responder, key](const Status& failure, std::uint64_t version, const statestore::Hlc& hlc) {
      Answer(responder, failure, version, hlc, nlohmann::json{{"key", key}});
    });
  }

  void HandleDelete(Request& req, Responder responder) {
    const std::string key = req.path.substr(kKvPrefix.size());
    auto cas = OptionalUint(req, "cas");
    if (!cas.ok()) {
      responder.Finish(StatusResponse(cas.status()));
      return;
    }
    if (!req.Has("recurse")) {
      if (key.empty()) {
        responder.Finish(Response::Error(400, "bad_request", "missing key: DELETE /v1/kv/<key> (or ?recurse)"));
        return;
      }
      LocalOp op;
      op.kind = OpKind::kDelete;
      op.key = key;
      op.cas = *cas;
      Enqueue(std::move(op),
              [this, responder, key](const Status& failure, std::uint64_t version, const statestore::Hlc& hlc) {
                Answer(responder, failure, version, hlc, nlohmann::json{{"key", key}, {"deleted", 1}});
              });
      return;
    }
    if (cas->has_value()) {
      responder.Finish(Response::Error(400, "bad_request", "?cas cannot be combined with ?recurse"));
      return;
    }
    FlushGroup();  // earlier single-key writes come first
    const std::vector<std::string> keys = store.KeysUnderPrefix(key, options.max_recurse_results);
    if (keys.empty()) {
      responder.Finish(WithIndex(Response::Json(200, nlohmann::json{{"key", key}, {"deleted", 0}}.dump())));
      return;
    }
    // One delta per max_ops_per_delta keys (a delta's size is bounded).
    std::vector<std::vector<LocalOp>> batches;
    const std::size_t per_delta = store.limits().max_ops_per_delta;
    for (std::size_t i = 0; i < keys.size(); i += per_delta) {
      std::vector<LocalOp> ops;
      for (std::size_t k = i; k < std::min(keys.size(), i + per_delta); ++k) {
        LocalOp op;
        op.kind = OpKind::kDelete;
        op.key = keys[k];
        ops.push_back(std::move(op));
      }
      batches.push_back(std::move(ops));
    }
    const std::size_t count = keys.size();
    Write(batches, [this, responder, key, count](const WriteJob& job) {
      Answer(responder, job, nlohmann::json{{"key", key}, {"deleted", count}});
    });
  }

  void HandleClosed() {
    --closing_handles;
    if (closing && closing_handles == 0 && on_closed) {
      auto cb = std::move(on_closed);
      on_closed = nullptr;
      cb();
    }
  }

  void Close(std::function<void()> cb) {
    if (closing) return;
    FlushGroup();  // requests already accepted are written, as without grouping
    closing = true;
    on_closed = std::move(cb);
    ++closing_handles;  // held until the end of this function
    std::vector<BlockingRead*> waiting;
    for (auto& [id, waiter] : blocking) waiting.push_back(waiter);
    for (BlockingRead* waiter : waiting) Wake(waiter);
    for (auto& [id, watch] : watches) watch.responder.End();
    watches.clear();
    metrics.watchers = 0;
    ++closing_handles;
    uv_close(reinterpret_cast<uv_handle_t*>(&keepalive),
             [](uv_handle_t* h) { static_cast<Impl*>(h->data)->HandleClosed(); });
    ++closing_handles;
    uv_close(reinterpret_cast<uv_handle_t*>(&group_flush),
             [](uv_handle_t* h) { static_cast<Impl*>(h->data)->HandleClosed(); });
    HandleClosed();
  }
};

KvService::KvService(uv_loop_t* loop, statestore::Store& store, WalWriter& wal_writer, WallClockMs clock,
                     OnDurable on_durable, KvServiceOptions options)
    : impl_(std::make_unique<Impl>(this, loop, store, wal_writer, std::move(clock), std::move(on_durable), options,
                                   metrics_)) {}

KvService::~KvService() = default;

void KvService::RegisterRoutes(http::HttpServer& server) {
  Impl* impl = impl_.get();
  server.Route("GET", std::string(kKvPrefix), [impl](Request& req, Responder r) { impl->HandleGet(req, r); });
  server.Route("PUT", std::string(kKvPrefix), [impl](Request& req, Responder r) { impl->HandlePut(req, r); });
  server.Route("DELETE", std::string(kKvPrefix), [impl](Request& req, Responder r) { impl->HandleDelete(req, r); });
  server.Route("GET", "/v1/watch", [impl](Request& req, Responder r) { impl->HandleWatch(req, r); });
}

void KvService::NotifyChanged(const std::map<std::string, std::uint64_t>& changed) { impl_->NotifyChanged(changed); }
void KvService::NotifyReplaced() { impl_->NotifyReplaced(); }

void KvService::Close(std::function<void()> on_closed) { impl_->Close(std::move(on_closed)); }

}  // namespace gv::daemon
