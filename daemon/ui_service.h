// UiService: the web visualizer's side of the agent (issue 7, docs/ui.md).
//
//   GET /ui/...           the page and its assets, compiled into the binary
//                         (viz/, embedded at build time by viz/embed_assets.cmake)
//   GET /v1/events        Server-Sent Events for the page: first a `snapshot`
//                         (this node's id, /v1/topology, the member list), then
//                         `batch` events with what changed since
//   GET /ui/api/status    /v1/status, readable by a page another agent of the
//                         cluster served (CORS for members' HTTP addresses only)
//
// The agent feeds it: overlay records as they arrive (and its own when it
// publishes one or its views change), records of nodes that left, member
// status changes, and the deltas it applies. Events are coalesced and go out
// every flush_interval_ms as one `batch` event per stream (a node's newest
// record only, at most max_applies_per_batch applied deltas), so a
// 1,000-node cluster costs a viewer a bounded rate whatever the write rate.
// With no stream open, the feeds only return.
//
// libuv: one timer, owned here, closed once by Close(); streams are the HTTP
// server's (Responder), dropped when their client leaves.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/node_id.h"
#include "daemon/http/server.h"
#include "membership/member_list.h"
#include "statestore/delta.h"
#include "statestore/store.h"
#include "wire/overlay_record.h"

namespace gv::daemon {

// One file of the page, compiled in (the generated ui_assets.cc).
struct UiAsset {
  std::string_view path;  // below /ui/, e.g. "index.html", "vendor/cytoscape.min.js"
  std::string_view content_type;
  const unsigned char* data;
  std::size_t size;
};
std::span<const UiAsset> UiAssets();

struct UiHost {
  NodeId self;
  std::function<std::string()> topology_json;  // GET /v1/topology's body
  std::function<std::string()> status_json;    // GET /v1/status's body
  std::function<const membership::MemberList&()> members;
  // This node's record as of now: an open page gets it whenever it changed
  // (checked every flush), so the viewing node itself is always current.
  std::function<wire::OverlayRecord()> local_record;
};

struct UiOptions {
  std::uint64_t flush_interval_ms = 250;
  std::uint64_t keepalive_ms = 15000;
  std::size_t max_streams = 64;
  std::size_t max_applies_per_batch = 256;  // more are counted as dropped_applies
};

class UiService {
 public:
  UiService(uv_loop_t* loop, UiHost host, UiOptions options = {});
  ~UiService();
  UiService(const UiService&) = delete;
  UiService& operator=(const UiService&) = delete;

  void RegisterRoutes(http::HttpServer& server);

  // ---- feeds (cheap no-ops while no page is open) ----
  bool watched() const;
  // Another node's overlay record, as stored.
  void OnRecord(const wire::OverlayRecord& record, std::uint64_t age_ms);
  void OnRecordLeft(NodeId node);
  // A member's status changed (member null: reaped).
  void OnMemberChanged(NodeId node, const membership::MemberRecord* member);
  // Deltas this node applied; `delta` is the one that released them (its keys are shown).
  void OnApplied(const std::vector<statestore::DeltaId>& applied, const statestore::Delta* delta);

  // Ends the streams and closes the timer; on_closed runs once it is closed.
  void Close(std::function<void()> on_closed);

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace gv::daemon
