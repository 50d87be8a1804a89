// The DNS server (daemon/dns/dns_server.h) on a real libuv loop: a plain UDP
// client socket and Debian's dig ask it; every loop run is bounded, and each
// test ends with uv_loop_close() succeeding (no handle left open).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <chrono>
#include <cstdio>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "daemon/dns/dns_server.h"
#include "daemon/net_address.h"
#include "daemon/prometheus.h"
#include "tests/daemon/dns_test_support.h"

using namespace gv;
using namespace gv::daemon::dns;
using namespace gv::dnstest;

namespace {

constexpr auto kPumpLimit = std::chrono::seconds(20);

FakeLookup MakeLookup() {
  FakeLookup lookup;
  lookup.services["web"] = {{"n1", "127.0.0.11", 80}, {"n2", "127.0.0.12", 8080}};
  for (int i = 0; i < 100; ++i) lookup.services["big"].push_back({"b" + std::to_string(i), "10.2.0." + std::to_string(i), 1});
  lookup.nodes["n1"] = "127.0.0.11";
  lookup.kv["a/b"] = "hello";
  return lookup;
}

struct Loop {
  uv_loop_t loop{};
  Loop() { REQUIRE(uv_loop_init(&loop) == 0); }
  // Runs the loop until `done()` (called once per turn: it may consume) or
  // the time limit; returns whether done() held.
  template <typename Done>
  bool PumpUntil(const Done& done) {
    const auto deadline = std::chrono::steady_clock::now() + kPumpLimit;
    while (std::chrono::steady_clock::now() < deadline) {
      uv_run(&loop, UV_RUN_NOWAIT);
      if (done()) return true;
      pollfd none{};
      poll(&none, 0, 1);  // yield 1 ms between loop turns (the peer is another thread or process)
    }
    return false;
  }
  // Every handle must be closed: the loop then runs out of work and closes.
  void Finish() {
    CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0);
    CHECK(uv_loop_close(&loop) == 0);
  }
};

std::unique_ptr<DnsServer> StartServer(Loop& loop, const Lookup& lookup, AnswerOptions options = {}) {
  auto address = net::ParseSocketAddress("127.0.0.1:0");
  REQUIRE(address.ok());
  auto server = DnsServer::Start(&loop.loop, *address, lookup, std::move(options));
  REQUIRE_MESSAGE(server.ok(), server.status().ToString());
  REQUIRE((*server)->port() > 0);
  return std::move(server).value();
}

void CloseServer(Loop& loop, std::unique_ptr<DnsServer>& server) {
  bool closed = false;
  server->Close([&closed] { closed = true; });
  server->Close([] { FAIL("a second Close must not call back"); });
  CHECK(loop.PumpUntil([&] { return closed; }));
  server.reset();
  loop.Finish();
}

// A non-blocking UDP client socket on 127.0.0.1.
struct Client {
  int fd = -1;
  sockaddr_in server{};
  explicit Client(int port) {
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    REQUIRE(fd >= 0);
    server.sin_family = AF_INET;
    server.sin_port = htons(static_cast<std::uint16_t>(port));
    server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  }
  ~Client() { close(fd); }
  void Send(const std::string& datagram) const {
    REQUIRE(sendto(fd, datagram.data(), datagram.size(), 0, reinterpret_cast<const sockaddr*>(&server), sizeof(server)) ==
            static_cast<ssize_t>(datagram.size()));
  }
  std::optional<std::string> TryReceive() const {
    char buffer[65536];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }
};

std::string Exchange(Loop& loop, const Client& client, const std::string& query) {
  client.Send(query);
  std::optional<std::string> reply;
  REQUIRE(loop.PumpUntil([&] { return (reply = client.TryReceive()).has_value(); }));
  return *reply;
}

// Runs dig in a thread while this one runs the loop; returns its stdout.
std::string Dig(Loop& loop, int port, const std::string& args) {
  const std::string command =
      "dig @127.0.0.1 -p " + std::to_string(port) + " +tries=1 +time=2 " + args + " 2>&1";
  std::future<std::string> output = std::async(std::launch::async, [command] {
    std::string out;
    FILE* pipe = popen(command.c_str(), "r");
    if (pipe == nullptr) return std::string("popen failed");
    char chunk[4096];
    std::size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), pipe)) > 0) out.append(chunk, n);
    pclose(pipe);
    return out;
  });
  REQUIRE(loop.PumpUntil([&] { return output.wait_for(std::chrono::seconds(0)) == std::future_status::ready; }));
  std::string out = output.get();
  INFO("dig " << args << "\n" << out);
  REQUIRE(out.find("connection timed out") == std::string::npos);
  return out;
}

bool HasLine(const std::string& text, const std::string& line) { return ("\n" + text).find("\n" + line + "\n") != std::string::npos; }

}  // namespace

TEST_CASE("the server answers a UDP client and counts malformed datagrams without answering them") {
  Loop loop;
  FakeLookup lookup = MakeLookup();
  std::unique_ptr<DnsServer> server = StartServer(loop, lookup);
  Client client(server->port());

  QuerySpec spec{.name = "web.service.grapevine.", .id = 4242};
  PktPtr answer = ParseAnswer(Exchange(loop, client, BuildQuery(spec)));
  CheckEchoes(answer.get(), spec);
  CHECK(ldns_pkt_ancount(answer.get()) == 2);
  CHECK(server->stats().answered == 1);

  // Malformed: no reply; the counter shows the server saw it.
  client.Send(std::string("\x12\x34\x81\x00\x00\x01", 6));
  CHECK(loop.PumpUntil([&] { return server->stats().dropped == 1; }));
  CHECK(server->stats().last_drop_reason == "shorter than the 12-byte header");
  client.Send(std::string());  // a zero-byte datagram
  CHECK(loop.PumpUntil([&] { return server->stats().dropped == 2; }));
  CHECK(server->stats().last_drop_reason == "empty datagram");
  // The next reply is the next query's, not one for the dropped datagrams.
  QuerySpec nx{.name = "nosuch.node.grapevine.", .id = 99};
  PktPtr nx_answer = ParseAnswer(Exchange(loop, client, BuildQuery(nx)));
  CHECK(ldns_pkt_id(nx_answer.get()) == 99);
  CHECK(ldns_pkt_get_rcode(nx_answer.get()) == LDNS_RCODE_NXDOMAIN);
  CHECK_FALSE(client.TryReceive().has_value());

  const DnsServerStats& stats = server->stats();
  CHECK(stats.nxdomain == 1);
  CHECK(stats.answer_bytes > 0);
  CHECK(stats.request_bytes > 0);
  CHECK(stats.send_errors == 0);
  daemon::PrometheusWriter writer;
  server->WriteMetrics(writer);
  CHECK(writer.text().find("grapevine_dns_queries_total{outcome=\"answered\"} 1\n") != std::string::npos);
  CHECK(writer.text().find("grapevine_dns_queries_total{outcome=\"dropped\"} 2\n") != std::string::npos);
  CHECK(writer.text().find("grapevine_dns_queries_total{outcome=\"nxdomain\"} 1\n") != std::string::npos);

  CloseServer(loop, server);
}

TEST_CASE("Close keeps the figures; destroying an open server closes it; a taken port is an error") {
  Loop loop;
  FakeLookup lookup = MakeLookup();
  std::unique_ptr<DnsServer> server = StartServer(loop, lookup);
  {
    Client client(server->port());
    Exchange(loop, client, BuildQuery(QuerySpec{.name = "n1.node.grapevine."}));
  }
  bool closed = false;
  server->Close([&closed] { closed = true; });
  CHECK(loop.PumpUntil([&] { return closed; }));
  CHECK(server->stats().answered == 1);  // read from the final copy
  daemon::PrometheusWriter writer;
  server->WriteMetrics(writer);
  CHECK(writer.text().find("outcome=\"answered\"} 1") != std::string::npos);

  std::unique_ptr<DnsServer> open = StartServer(loop, lookup);
  auto taken = net::ParseSocketAddress("127.0.0.1:" + std::to_string(open->port()));
  REQUIRE(taken.ok());
  auto second = DnsServer::Start(&loop.loop, *taken, lookup, AnswerOptions{});
  CHECK_FALSE(second.ok());
  CHECK(second.status().message().find("bind") != std::string::npos);
  auto bad_domain = DnsServer::Start(&loop.loop, *taken, lookup, AnswerOptions{.domain = "a..b"});
  CHECK(bad_domain.status().code() == StatusCode::kInvalidArgument);
  open.reset();  // closes its handle; the loop frees it
  server.reset();
  loop.Finish();
}

TEST_CASE("dig: A, SRV, TXT, NXDOMAIN, EDNS and truncation") {
  Loop loop;
  FakeLookup lookup = MakeLookup();
  std::unique_ptr<DnsServer> server = StartServer(loop, lookup, AnswerOptions{.ttl_seconds = 7});
  const int port = server->port();

  const std::string a = Dig(loop, port, "web.service.grapevine. A +short");
  CHECK(a == "127.0.0.11\n127.0.0.12\n");

  const std::string srv = Dig(loop, port, "web.service.grapevine. SRV");
  CHECK(srv.find("status: NOERROR") != std::string::npos);
  CHECK(srv.find("flags: qr aa rd;") != std::string::npos);
  CHECK(HasLine(srv, "web.service.grapevine.\t7\tIN\tSRV\t1 1 80 n1.node.grapevine."));
  CHECK(HasLine(srv, "web.service.grapevine.\t7\tIN\tSRV\t1 1 8080 n2.node.grapevine."));
  CHECK(HasLine(srv, "n1.node.grapevine.\t7\tIN\tA\t127.0.0.11"));
  CHECK(HasLine(srv, "n2.node.grapevine.\t7\tIN\tA\t127.0.0.12"));
  CHECK(srv.find("; EDNS: version: 0, flags:; udp: 4096") != std::string::npos);

  CHECK(Dig(loop, port, "a.b.kv.grapevine. TXT +short") == "\"hello\"\n");
  CHECK(Dig(loop, port, "N1.NODE.grapevine. +short") == "127.0.0.11\n");

  const std::string nx = Dig(loop, port, "nosuch.service.grapevine.");
  CHECK(nx.find("status: NXDOMAIN") != std::string::npos);
  CHECK(nx.find("grapevine.\t\t7\tIN\tSOA\tns.grapevine. hostmaster.grapevine. 1 3600 600 86400 7") != std::string::npos);

  const std::string noedns = Dig(loop, port, "web.service.grapevine. +noedns");
  CHECK(noedns.find("OPT PSEUDOSECTION") == std::string::npos);
  CHECK(noedns.find("ANSWER: 2,") != std::string::npos);

  // 100 A records (about 1.6 KB): fit dig's default 1232 bytes? No: TC. With
  // +bufsize=4096 they fit; with +bufsize=512 even fewer come back.
  const std::string small = Dig(loop, port, "big.service.grapevine. +bufsize=512 +ignore");
  CHECK(small.find("flags: qr aa tc rd;") != std::string::npos);
  CHECK(small.find("ANSWER: 100,") == std::string::npos);
  const std::string whole = Dig(loop, port, "big.service.grapevine. +bufsize=4096 +ignore");
  CHECK(whole.find("flags: qr aa rd;") != std::string::npos);
  CHECK(whole.find("ANSWER: 100,") != std::string::npos);
  const std::string plain = Dig(loop, port, "big.service.grapevine. +noedns +ignore");
  CHECK(plain.find(" tc ") != std::string::npos);

  CHECK(server->stats().truncated == 2);
  CHECK(server->stats().dropped == 0);
  CloseServer(loop, server);
}
