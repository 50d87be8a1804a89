// Hostile and broken input against a real agent. Each case checks three
// things: the answer (an HTTP error status, or the peer connection closed),
// the matching metric counter went up, and the agent still serves. Two stuck
// peers: one silent (dropped by the keepalive timeout) and one that keeps
// sending keepalives but never reads (dropped by the send-queue bound).
#include <doctest/doctest.h>

#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <string>
#include <variant>
#include <vector>

#include "tests/integration/cluster.h"
#include "tests/integration/peer_socket.h"

namespace gv::integration {
namespace {

constexpr char kCluster[] = "integration";  // AgentOptions' default
constexpr milliseconds kCloseTimeout{15000};

// The agent answers HTTP and takes a write.
void CheckStillServes(Agent& agent, const std::string& after) {
  auto status = AgentStatus(agent);
  CHECK_MESSAGE(status.ok(), "after " << after << ": " << status.status().ToString());
  const std::string key = "still-serving/" + std::to_string(std::hash<std::string>()(after));
  Status put = Put(agent.http(), key, after);
  CHECK_MESSAGE(put.ok(), "after " << after << ": " << put.ToString());
  auto value = GetRaw(agent.http(), key);
  CHECK_MESSAGE(value.ok(), "after " << after << ": " << value.status().ToString());
  if (value.ok()) CHECK(*value == std::optional<std::string>(after));
}

// The peer port still completes a handshake for a well-behaved peer.
void CheckPeerPortServes(Agent& agent, const std::string& after) {
  auto peer = ConnectAndHandshake(agent.peer_port(), kCluster, NodeId(0x7e57000000000999ull), "probe",
                                  "127.0.0.1:1");
  CHECK_MESSAGE(peer.ok(), "after " << after << ": " << peer.status().ToString());
  if (peer.ok()) (*peer)->Abort();
}

// A "before" reading: 0 while the labelled sample does not exist yet; a
// scrape failure ends the test case (nothing below could be judged).
double CounterBefore(Agent& agent, std::string_view name, const std::map<std::string, std::string>& labels = {}) {
  auto value = ScrapeMetricOrZero(agent, name, labels);
  REQUIRE_MESSAGE(value.ok(), value.status().ToString());
  return *value;
}

// Checks that the sample went up by at least one since `before`.
void CheckCounterWentUp(Agent& agent, std::string_view name, const std::map<std::string, std::string>& labels,
                        double before) {
  auto after = ScrapeMetric(agent, name, labels);
  CHECK_MESSAGE(after.ok(), after.status().ToString());
  if (after.ok()) CHECK_MESSAGE(*after >= before + 1, name << " stayed at " << *after);
}

// Sends `request` and expects `expected_status`; checks the counter of
// responses with that status went up and the agent still serves.
void ExpectHttpError(Agent& agent, const std::string& what, std::string_view method, const std::string& target,
                     const std::string& body, std::vector<int> accepted_statuses) {
  CAPTURE(what);
  std::map<int, double> before;
  for (int status : accepted_statuses) {
    before[status] = CounterBefore(agent, "grapevine_http_responses_total", {{"status", std::to_string(status)}});
  }
  auto client = agent.NewClient(20000);
  auto response = client->Request(method, target, body);
  // A transport error (say, the server cut the upload short without an
  // answer the client could read) fails this case but not the ones after it.
  CHECK_MESSAGE(response.ok(), what << ": no HTTP answer: " << response.status().ToString());
  if (!response.ok()) {
    CheckStillServes(agent, what);
    return;
  }
  const bool accepted = std::find(accepted_statuses.begin(), accepted_statuses.end(), response->status) !=
                        accepted_statuses.end();
  CHECK_MESSAGE(accepted, what << " answered " << response->status << ": " << response->body.substr(0, 300));
  auto error = nlohmann::json::parse(response->body, nullptr, false);
  CHECK_MESSAGE((error.is_object() && error.contains("error") && error.contains("code")),
                "not the contract's error shape: " << response->body.substr(0, 300));
  if (accepted) {
    CheckCounterWentUp(agent, "grapevine_http_responses_total", {{"status", std::to_string(response->status)}},
                       before[response->status]);
  }
  CheckStillServes(agent, what);
}

TEST_CASE("bad HTTP input gets a clear error, is counted, and the agent keeps serving") {
  Cluster cluster("badhttp");
  Agent& agent = cluster.AddAgent("solo");
  Status started = cluster.Start(agent);
  REQUIRE_MESSAGE(started.ok(), started.ToString());

  // Bodies over the server's limit: a little over it, and far over it.
  ExpectHttpError(agent, "a 200 KiB body", "PUT", "/v1/kv/big-body", std::string(200u << 10, 'b'), {413});
  ExpectHttpError(agent, "a 3 MiB body", "PUT", "/v1/kv/big-body", std::string(3u << 20, 'b'), {413});
  // Key over 1024 bytes.
  ExpectHttpError(agent, "a 1100-byte key", "PUT", "/v1/kv/" + std::string(1100, 'k'), "v", {400, 413});
  // Value over the 64 KiB default --max-value-bytes.
  ExpectHttpError(agent, "a 64 KiB + 1 value", "PUT", "/v1/kv/big-value", std::string(64 * 1024 + 1, 'v'), {413});
  // Bad percent-encoding: a non-hex escape, a truncated one, an encoded NUL.
  ExpectHttpError(agent, "a non-hex escape", "GET", "/v1/kv/bad%zzkey", "", {400});
  ExpectHttpError(agent, "a truncated escape", "PUT", "/v1/kv/bad%4", "v", {400});
  ExpectHttpError(agent, "an encoded NUL", "PUT", "/v1/kv/bad%00key", "v", {400});
  ExpectHttpError(agent, "a bad query escape", "GET", "/v1/kv/key?index=%g1", "", {400});
  // Unknown paths, and a known path with an unknown method.
  ExpectHttpError(agent, "an unknown path", "GET", "/v1/no-such-endpoint", "", {404});
  ExpectHttpError(agent, "an unknown root path", "GET", "/nothing/here", "", {404});
  ExpectHttpError(agent, "PATCH on /v1/kv", "PATCH", "/v1/kv/key", "v", {405});
  // Bad parameters.
  ExpectHttpError(agent, "a non-numeric cas", "PUT", "/v1/kv/key?cas=abc", "v", {400});
  ExpectHttpError(agent, "a negative wait", "GET", "/v1/kv/key?index=1&wait=-5s", "", {400});

  // None of the refused writes stored anything.
  for (const char* key : {"big-body", "big-value", "key"}) {
    auto value = GetRaw(agent.http(), key);
    REQUIRE_MESSAGE(value.ok(), value.status().ToString());
    CHECK_MESSAGE(!value->has_value(), "refused write stored " << key);
  }
}

TEST_CASE("garbage, unverifiable frames and a wrong cluster on the peer port: closed, counted, still serving") {
  Cluster cluster("badpeer");
  auto agents = cluster.StartCluster(2);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& agent = *(*agents)[0];
  Agent& other = *(*agents)[1];

  struct Case {
    std::string what;
    std::string reason;  // the frames_rejected label expected ("" = any: only the total is checked)
    std::function<Status(PeerSocket&)> send;
    bool expect_refuse = false;
  };
  const NodeId fake(0x7e57000000000001ull);
  const std::string fake_address = "127.0.0.1:1";
  auto hello = [&](std::string cluster_name) { return HelloEnvelope(std::move(cluster_name), fake, "fake", fake_address); };

  std::vector<Case> cases;
  cases.push_back({"an HTTP request on the peer port (length prefix 0x47455420 > 16 MiB)", "oversize",
                   [](PeerSocket& s) { return s.SendBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"); }});
  cases.push_back({"a frame of random bytes", "decode", [](PeerSocket& s) {
                     std::string junk;
                     std::uint64_t x = 0x9e3779b97f4a7c15ull;
                     for (int i = 0; i < 64; ++i) {
                       x ^= x << 13;
                       x ^= x >> 7;
                       x ^= x << 17;
                       junk.push_back(static_cast<char>(x & 0xff));
                     }
                     return s.SendFrame(junk);
                   }});
  cases.push_back({"an empty frame", "", [](PeerSocket& s) { return s.SendFrame(""); }});
  cases.push_back({"a Hello whose file identifier is wrong", "decode", [&](PeerSocket& s) {
                     std::string bytes = wire::EncodeEnvelope(hello(kCluster));
                     REQUIRE(bytes.substr(4, 4) == "GVE1");
                     bytes[4] ^= 0x20;  // "GVE1" -> "gVE1"
                     return s.SendFrame(bytes);
                   }});
  cases.push_back({"a truncated Hello", "decode", [&](PeerSocket& s) {
                     std::string bytes = wire::EncodeEnvelope(hello(kCluster));
                     bytes.resize(bytes.size() / 2);
                     return s.SendFrame(bytes);
                   }});
  cases.push_back({"a well-formed Hello from node id 0", "decode", [&](PeerSocket& s) {
                     return s.SendEnvelope(HelloEnvelope(kCluster, NodeId(0), "zero", fake_address));
                   }});
  cases.push_back({"garbage after a good handshake", "decode", [&](PeerSocket& s) {
                     GV_RETURN_IF_ERROR(s.SendEnvelope(hello(kCluster)));
                     auto reply = s.ReadEnvelope(milliseconds(10000));
                     if (!reply.ok()) return Status::Aborted("no Hello back: " + reply.status().ToString());
                     return s.SendFrame(std::string(40, '\x7f'));
                   }});
  cases.push_back({"a Hello naming another cluster", "handshake",
                   [&](PeerSocket& s) { return s.SendEnvelope(hello("some-other-cluster")); }, true});
  cases.push_back({"a Hello with another protocol version", "handshake", [&](PeerSocket& s) {
                     wire::Envelope envelope = hello(kCluster);
                     std::get<wire::Hello>(envelope.message).protocol_version = wire::kPeerProtocolVersion + 41;
                     return s.SendEnvelope(envelope);
                   }, true});

  for (const Case& c : cases) {
    CAPTURE(c.what);
    const double total_before = CounterBefore(agent, "grapevine_peer_frames_rejected_total");
    std::map<std::string, std::string> reason_label;
    if (!c.reason.empty()) reason_label["reason"] = c.reason;
    const double reason_before = CounterBefore(agent, "grapevine_peer_frames_rejected_total", reason_label);
    auto socket = PeerSocket::Connect(agent.peer_port());
    REQUIRE_MESSAGE(socket.ok(), socket.status().ToString());
    Status sent = c.send(**socket);
    CHECK_MESSAGE(sent.ok(), sent.ToString());
    if (c.expect_refuse) {
      // The agent may send its own Hello first; a Refuse must follow, then the close.
      bool refused = false;
      for (int frame = 0; frame < 2 && !refused; ++frame) {
        auto envelope = (*socket)->ReadEnvelope(milliseconds(10000));
        if (!envelope.ok()) {
          FAIL_CHECK("no Refuse for " << c.what << ": " << envelope.status().ToString());
          break;
        }
        if (auto* refuse = std::get_if<wire::Refuse>(&envelope->message)) {
          refused = true;
          CHECK_MESSAGE(!refuse->reason.empty(), "a Refuse without a reason");
          MESSAGE("refused: " << refuse->reason);
        }
      }
      CHECK(refused);
    }
    Status closed = (*socket)->WaitClosed(kCloseTimeout);
    CHECK_MESSAGE(closed.ok(), c.what << ": " << closed.ToString());
    // The counter may be bumped a moment after the close reached us.
    Status counted = WaitFor("grapevine_peer_frames_rejected_total" +
                                 (c.reason.empty() ? std::string(" (any reason)") : "{reason=\"" + c.reason + "\"}") +
                                 " to go up",
                             milliseconds(5000),
                             [&](std::string& last_seen) {
                               auto total = ScrapeMetric(agent, "grapevine_peer_frames_rejected_total");
                               auto reason = ScrapeMetric(agent, "grapevine_peer_frames_rejected_total",
                                                          reason_label);
                               last_seen = "total " + (total.ok() ? std::to_string(*total) : total.status().ToString()) +
                                           ", reason " +
                                           (reason.ok() ? std::to_string(*reason) : reason.status().ToString());
                               return total.ok() && reason.ok() && *total >= total_before + 1 &&
                                      *reason >= reason_before + 1;
                             });
    CHECK_MESSAGE(counted.ok(), counted.ToString());
    CheckStillServes(agent, c.what);
    CheckPeerPortServes(agent, c.what);
  }

  // The real peer was never disturbed: writes still flow both ways.
  REQUIRE(Put(agent.http(), "after-bad-frames/a", "1").ok());
  REQUIRE(Put(other.http(), "after-bad-frames/b", "2").ok());
  Status a_spread = WaitForValue({&agent, &other}, "after-bad-frames/a", std::string("1"));
  CHECK_MESSAGE(a_spread.ok(), a_spread.ToString());
  Status b_spread = WaitForValue({&agent, &other}, "after-bad-frames/b", std::string("2"));
  CHECK_MESSAGE(b_spread.ok(), b_spread.ToString());
}

// A listening socket that never accepts: the fake peer's advertised address,
// so an agent that dials it connects (into the backlog) and gets nothing.
struct SilentListener {
  int fd = -1;
  int port = 0;
  SilentListener() {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && ::listen(fd, 64) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
  }
  ~SilentListener() {
    if (fd >= 0) ::close(fd);
  }
};

TEST_CASE("a peer that joins and then never reads is dropped, and the agent keeps serving the others") {
  Cluster cluster("stuckpeer");
  auto agents = cluster.StartCluster(3);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& target = *(*agents)[0];
  std::vector<Agent*> all = *agents;

  SilentListener listener;
  REQUIRE(listener.port > 0);
  const NodeId stuck_id(0x7e570000000000a1ull);
  const std::string stuck_hex = stuck_id.ToString();
  const std::string stuck_address = "127.0.0.1:" + std::to_string(listener.port);

  // The drop is counted either as a disconnect (send queue over its bound) or
  // as a keepalive timeout (the stuck peer sends nothing either).
  const double disconnects_before = CounterBefore(target, "grapevine_peer_disconnects_total");
  const double timeouts_before = CounterBefore(target, "grapevine_membership_keepalive_timeouts_total");
  auto peer = ConnectAndHandshake(target.peer_port(), kCluster, stuck_id, "stuck", stuck_address);
  REQUIRE_MESSAGE(peer.ok(), peer.status().ToString());
  wire::Envelope join;
  join.message = membership::Message(membership::Join{1});
  join.addresses.push_back(wire::AddressBookEntry{stuck_id, stuck_address});
  REQUIRE((*peer)->SendEnvelope(join).ok());
  // From here on the stuck peer reads nothing and sends nothing.

  auto view_of_target = [&](std::string& last_seen) -> std::optional<std::vector<std::string>> {
    auto view = ActiveView(target);
    if (!view.ok()) {
      last_seen = view.status().ToString();
      return std::nullopt;
    }
    last_seen.clear();
    for (const auto& id : *view) last_seen += id + " ";
    return *view;
  };
  Status accepted = WaitFor("the target to take the stuck peer " + stuck_hex + " into its active view",
                            milliseconds(10000), [&](std::string& last_seen) {
                              auto view = view_of_target(last_seen);
                              return view && std::find(view->begin(), view->end(), stuck_hex) != view->end();
                            });
  REQUIRE_MESSAGE(accepted.ok(), accepted.ToString());

  // While the stuck peer sits there, the target keeps serving: writes on it
  // reach the other agents (some of them fat, to push bytes at the stuck peer too).
  for (int i = 0; i < 20; ++i) {
    const std::string value = std::to_string(i) + std::string(32 * 1024, 'p');
    REQUIRE(Put(target.http(), "while-stuck/" + std::to_string(i), value).ok());
  }
  for (int i = 0; i < 20; ++i) {
    const std::string value = std::to_string(i) + std::string(32 * 1024, 'p');
    Status spread = WaitForValue(all, "while-stuck/" + std::to_string(i), value);
    CHECK_MESSAGE(spread.ok(), spread.ToString());
  }

  Status dropped = WaitFor("the target to drop the stuck peer " + stuck_hex, kConvergeTimeout,
                           [&](std::string& last_seen) {
                             auto view = view_of_target(last_seen);
                             return view && std::find(view->begin(), view->end(), stuck_hex) == view->end();
                           });
  CHECK_MESSAGE(dropped.ok(), dropped.ToString());
  // The connection really is closed (reading now drains what was queued, then EOF).
  Status closed = (*peer)->WaitClosed(kCloseTimeout);
  CHECK_MESSAGE(closed.ok(), closed.ToString());
  auto disconnects_after = ScrapeMetricOrZero(target, "grapevine_peer_disconnects_total");
  auto timeouts_after = ScrapeMetric(target, "grapevine_membership_keepalive_timeouts_total");
  REQUIRE_MESSAGE(disconnects_after.ok(), disconnects_after.status().ToString());
  REQUIRE_MESSAGE(timeouts_after.ok(), timeouts_after.status().ToString());
  CHECK_MESSAGE(*disconnects_after + *timeouts_after >= disconnects_before + timeouts_before + 1,
                "neither grapevine_peer_disconnects_total (" << *disconnects_after
                    << ") nor grapevine_membership_keepalive_timeouts_total (" << *timeouts_after << ") went up");
  MESSAGE("stuck peer dropped; disconnects " << disconnects_before << " -> " << *disconnects_after
                                             << ", keepalive timeouts " << timeouts_before << " -> " << *timeouts_after);

  // Still serving: HTTP, and replication to and from the real peers.
  CheckStillServes(target, "a stuck peer");
  REQUIRE(Put(all[2]->http(), "after-stuck", "fine").ok());
  Status spread = WaitForValue(all, "after-stuck", std::string("fine"));
  CHECK_MESSAGE(spread.ok(), spread.ToString());
}

TEST_CASE("a peer that sends keepalives but never reads is dropped when its send queue overflows") {
  // The keepalive timeout cannot fire here (the stuck peer keeps talking), so
  // only the send-queue bound can free the agent of it (DESIGN.md §2: a slow
  // peer counts as failed). Big values fill the queue quickly.
  Cluster cluster("slowpeer");
  AgentOptions options;
  options.log_level = "info";
  options.extra_args = {"--max-value-bytes", "1048576"};  // the cap (default 64 KiB)
  auto agents = cluster.StartCluster(2, options);
  REQUIRE_MESSAGE(agents.ok(), agents.status().ToString());
  Agent& target = *(*agents)[0];
  Agent& other = *(*agents)[1];

  SilentListener listener;
  REQUIRE(listener.port > 0);
  const NodeId slow_id(0x7e570000000000b2ull);
  const std::string slow_hex = slow_id.ToString();
  const std::string slow_address = "127.0.0.1:" + std::to_string(listener.port);

  const double disconnects_before = CounterBefore(target, "grapevine_peer_disconnects_total");
  const double timeouts_before = CounterBefore(target, "grapevine_membership_keepalive_timeouts_total");
  auto peer = ConnectAndHandshake(target.peer_port(), kCluster, slow_id, "slow", slow_address);
  REQUIRE_MESSAGE(peer.ok(), peer.status().ToString());
  wire::Envelope join;
  join.message = membership::Message(membership::Join{1});
  join.addresses.push_back(wire::AddressBookEntry{slow_id, slow_address});
  REQUIRE((*peer)->SendEnvelope(join).ok());

  // Keepalives every 300 ms (the agent's keepalive timeout is seconds) until
  // a send fails (the agent closed) or the test ends.
  std::atomic<bool> stop{false};
  std::atomic<int> keepalives_sent{0};
  PeerSocket& socket = **peer;
  std::thread talker([&] {
    wire::Envelope keepalive;
    keepalive.message = membership::Message(membership::KeepAlive{});
    const std::string frame = wire::EncodeEnvelope(keepalive);
    while (!stop.load()) {
      if (!socket.SendFrame(frame).ok()) return;
      ++keepalives_sent;
      for (int i = 0; i < 30 && !stop.load(); ++i) std::this_thread::sleep_for(milliseconds(10));  // pacing
    }
  });
  auto in_view = [&](std::string& last_seen) -> std::optional<bool> {
    auto view = ActiveView(target);
    if (!view.ok()) {
      last_seen = view.status().ToString();
      return std::nullopt;
    }
    last_seen.clear();
    for (const auto& id : *view) last_seen += id + " ";
    return std::find(view->begin(), view->end(), slow_hex) != view->end();
  };
  Status accepted = WaitFor("the target to take the slow peer " + slow_hex + " into its active view",
                            milliseconds(10000), [&](std::string& last_seen) {
                              auto present = in_view(last_seen);
                              return present && *present;
                            });
  if (!accepted.ok()) {
    stop = true;
    talker.join();
  }
  REQUIRE_MESSAGE(accepted.ok(), accepted.ToString());

  // 512 KiB writes until the agent gives up on the slow peer; bounded at
  // 400 MiB (its queue bound plus socket buffers is far less).
  // 512 KiB: well inside both the value limit and Plumtree's payload limit.
  const std::string big(512u << 10, 's');
  int writes = 0;
  bool dropped = false;
  std::string last_seen;
  for (; writes < 800 && !dropped; ++writes) {
    Status put = Put(target.http(), "slow/" + std::to_string(writes % 4), std::to_string(writes) + big);
    if (!put.ok()) {
      stop = true;
      talker.join();
      FAIL("write " << writes << " while the slow peer was attached: " << put.ToString());
    }
    if (writes % 8 == 7) {
      auto present = in_view(last_seen);
      dropped = present && !*present;
    }
  }
  Status gone = WaitFor("the target to drop the slow peer " + slow_hex + " after " + std::to_string(writes) +
                            " writes of 512 KiB",
                        kConvergeTimeout, [&](std::string& seen) {
                          auto present = in_view(seen);
                          return present && !*present;
                        });
  stop = true;
  talker.join();
  if (!gone.ok()) {
    // What reached the stuck socket tells whether the agent pushed at all.
    int unread_bytes = 0;
    ::ioctl(socket.fd(), FIONREAD, &unread_bytes);
    auto bytes_sent = ScrapeMetric(target, "grapevine_peer_bytes_sent_total");
    auto gossip_sent = ScrapeMetric(target, "grapevine_peer_messages_sent_total", {{"type", "GOSSIP"}});
    MESSAGE("slow peer still attached: " << unread_bytes << " bytes wait unread in its socket; the target sent "
                                         << (bytes_sent.ok() ? std::to_string(*bytes_sent) : bytes_sent.status().ToString())
                                         << " peer bytes and "
                                         << (gossip_sent.ok() ? std::to_string(*gossip_sent) : gossip_sent.status().ToString())
                                         << " GOSSIP messages in all");
  }
  CHECK_MESSAGE(gone.ok(), gone.ToString());
  MESSAGE("slow peer dropped after " << writes << " writes of 512 KiB; it sent " << keepalives_sent.load()
                                     << " keepalives");
  Status closed = socket.WaitClosed(kCloseTimeout);
  CHECK_MESSAGE(closed.ok(), closed.ToString());
  // Counted as a disconnect, not as silence.
  CheckCounterWentUp(target, "grapevine_peer_disconnects_total", {}, disconnects_before);
  auto timeouts_after = ScrapeMetricOrZero(target, "grapevine_membership_keepalive_timeouts_total");
  REQUIRE(timeouts_after.ok());
  CHECK_MESSAGE(*timeouts_after == timeouts_before, "the slow peer was dropped by the keepalive timeout instead");

  // Still serving, and the real peer got every write.
  CheckStillServes(target, "a slow peer");
  const int last = writes - 1;
  Status replicated = WaitForValue({&other}, "slow/" + std::to_string(last % 4), std::to_string(last) + big);
  CHECK_MESSAGE(replicated.ok(), replicated.ToString().substr(0, 500));
}

}  // namespace
}  // namespace gv::integration
