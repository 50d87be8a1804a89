// The DNS answerer (daemon/dns/dns_answer.h) against a fake Lookup: every
// answer is parsed back with ldns and checked field by field.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "daemon/dns/dns_answer.h"
#include "tests/daemon/dns_test_support.h"

using namespace gv;
using namespace gv::daemon::dns;
using namespace gv::dnstest;

namespace {

FakeLookup MakeLookup() {
  FakeLookup lookup;
  lookup.services["web"] = {{"n1", "10.0.0.1", 80},
                            {"n2", "10.0.0.2", 8080},
                            {"n3", "2001:db8::3", 80},
                            {"n1", "10.0.0.1", 81},   // a second instance on n1
                            {"n4", "not-an-ip", 90}};  // no A record, SRV without glue
  lookup.nodes["n1"] = "10.0.0.1";
  lookup.nodes["n6"] = "2001:db8::6";
  lookup.kv["a/b"] = "hello";
  lookup.kv["Config/DB"] = "postgres://db";
  lookup.kv["empty"] = "";
  return lookup;
}

struct Asked {
  AnswerResult result;
  PktPtr pkt;
};

Asked Ask(const Lookup& lookup, const QuerySpec& spec, const AnswerOptions& options = {}) {
  Asked asked;
  asked.result = Answer(BuildQuery(spec), lookup, options);
  REQUIRE(asked.result.outcome != Outcome::kDropped);
  REQUIRE_FALSE(asked.result.wire.empty());
  asked.pkt = ParseAnswer(asked.result.wire);
  CheckEchoes(asked.pkt.get(), spec);
  return asked;
}

std::vector<const ldns_rr*> Section(const ldns_pkt* pkt, ldns_pkt_section section) {
  const ldns_rr_list* list = section == LDNS_SECTION_ANSWER      ? ldns_pkt_answer(pkt)
                             : section == LDNS_SECTION_AUTHORITY ? ldns_pkt_authority(pkt)
                                                                 : ldns_pkt_additional(pkt);
  std::vector<const ldns_rr*> out;
  for (std::size_t i = 0; i < ldns_rr_list_rr_count(list); ++i) out.push_back(ldns_rr_list_rr(list, i));
  return out;
}

void CheckSoa(const ldns_pkt* pkt, std::uint32_t ttl, const std::string& domain = "grapevine.") {
  const auto authority = Section(pkt, LDNS_SECTION_AUTHORITY);
  REQUIRE(authority.size() == 1);
  const ldns_rr* soa = authority[0];
  CHECK(ldns_rr_get_type(soa) == LDNS_RR_TYPE_SOA);
  CHECK(OwnerText(soa) == domain);
  CHECK(ldns_rr_ttl(soa) == ttl);
  REQUIRE(ldns_rr_rd_count(soa) == 7);
  CHECK(RdfText(ldns_rr_rdf(soa, 0)) == "ns." + domain);
  CHECK(RdfText(ldns_rr_rdf(soa, 1)) == "hostmaster." + domain);
  CHECK(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)) == ttl);  // negative-caching TTL
}

std::vector<std::string> RecordTexts(const std::vector<const ldns_rr*>& records) {
  std::vector<std::string> out;
  for (const ldns_rr* rr : records) {
    std::string text = OwnerText(rr) + " " + std::to_string(ldns_rr_ttl(rr));
    for (std::size_t i = 0; i < ldns_rr_rd_count(rr); ++i) text += " " + RdfText(ldns_rr_rdf(rr, i));
    out.push_back(text);
  }
  return out;
}

// A hand-made query: header fields and the raw rest.
std::string RawQuery(std::uint16_t flags, std::uint16_t qd, std::uint16_t an, std::uint16_t ns, std::uint16_t ar,
                     const std::string& rest) {
  std::string wire;
  for (std::uint16_t word : {std::uint16_t{0xBEEF}, flags, qd, an, ns, ar}) {
    wire += static_cast<char>(word >> 8);
    wire += static_cast<char>(word & 0xFF);
  }
  return wire + rest;
}

const std::string kWebName = std::string("\x03web\x07service\x09grapevine\x00", 23);
const std::string kTypeA = std::string("\x00\x01", 2);
const std::string kClassIn = std::string("\x00\x01", 2);
const std::string kRootOpt = std::string("\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00", 11);  // OPT 4096, no options

}  // namespace

TEST_CASE("A and AAAA of a service: one record per distinct address of the right family") {
  FakeLookup lookup = MakeLookup();
  QuerySpec spec{.name = "web.service.grapevine."};
  Asked a = Ask(lookup, spec);
  CHECK(a.result.outcome == Outcome::kAnswered);
  CHECK(a.result.reason.empty());
  CHECK(ldns_pkt_aa(a.pkt.get()));
  CHECK_FALSE(ldns_pkt_tc(a.pkt.get()));
  CHECK(ldns_pkt_get_rcode(a.pkt.get()) == LDNS_RCODE_NOERROR);
  CHECK(RecordTexts(Section(a.pkt.get(), LDNS_SECTION_ANSWER)) ==
        std::vector<std::string>{"web.service.grapevine. 0 10.0.0.1", "web.service.grapevine. 0 10.0.0.2"});
  for (const ldns_rr* rr : Section(a.pkt.get(), LDNS_SECTION_ANSWER)) {
    CHECK(ldns_rr_get_type(rr) == LDNS_RR_TYPE_A);
    CHECK(ldns_rr_get_class(rr) == LDNS_RR_CLASS_IN);
  }
  CHECK(ldns_pkt_nscount(a.pkt.get()) == 0);
  CHECK(ldns_pkt_arcount(a.pkt.get()) == 0);
  CHECK(lookup.asked == std::vector<std::string>{"service:web"});

  spec.type = LDNS_RR_TYPE_AAAA;
  Asked aaaa = Ask(lookup, spec, AnswerOptions{.ttl_seconds = 30});
  CHECK(aaaa.result.outcome == Outcome::kAnswered);
  CHECK(RecordTexts(Section(aaaa.pkt.get(), LDNS_SECTION_ANSWER)) ==
        std::vector<std::string>{"web.service.grapevine. 30 2001:db8::3"});
}

TEST_CASE("SRV of a service: priority 1, weight 1, port, <node>.node target, address glue in additional") {
  FakeLookup lookup = MakeLookup();
  QuerySpec spec{.name = "web.service.grapevine.", .type = LDNS_RR_TYPE_SRV, .id = 7};
  Asked srv = Ask(lookup, spec, AnswerOptions{.ttl_seconds = 5});
  CHECK(srv.result.outcome == Outcome::kAnswered);
  CHECK(RecordTexts(Section(srv.pkt.get(), LDNS_SECTION_ANSWER)) ==
        std::vector<std::string>{"web.service.grapevine. 5 1 1 80 n1.node.grapevine.",
                                 "web.service.grapevine. 5 1 1 8080 n2.node.grapevine.",
                                 "web.service.grapevine. 5 1 1 80 n3.node.grapevine.",
                                 "web.service.grapevine. 5 1 1 81 n1.node.grapevine.",
                                 "web.service.grapevine. 5 1 1 90 n4.node.grapevine."});
  for (const ldns_rr* rr : Section(srv.pkt.get(), LDNS_SECTION_ANSWER)) CHECK(ldns_rr_get_type(rr) == LDNS_RR_TYPE_SRV);
  CHECK(RecordTexts(Section(srv.pkt.get(), LDNS_SECTION_ADDITIONAL)) ==
        std::vector<std::string>{"n1.node.grapevine. 5 10.0.0.1", "n2.node.grapevine. 5 10.0.0.2",
                                 "n3.node.grapevine. 5 2001:db8::3"});

  // RFC 2782 form, and ANY: addresses and SRV together.
  Asked rfc2782 = Ask(lookup, QuerySpec{.name = "_web._tcp.service.grapevine.", .type = LDNS_RR_TYPE_SRV});
  CHECK(ldns_pkt_ancount(rfc2782.pkt.get()) == 5);
  Asked any = Ask(lookup, QuerySpec{.name = "web.service.grapevine.", .type = LDNS_RR_TYPE_ANY});
  CHECK(ldns_pkt_ancount(any.pkt.get()) == 3 + 5);
}

TEST_CASE("names are case-insensitive; the question is echoed as asked; KV keys keep their case") {
  FakeLookup lookup = MakeLookup();
  Asked upper = Ask(lookup, QuerySpec{.name = "WeB.SERVICE.GrapeVine."});
  CHECK(upper.result.outcome == Outcome::kAnswered);
  CHECK(OwnerText(Section(upper.pkt.get(), LDNS_SECTION_ANSWER).at(0)) == "WeB.SERVICE.GrapeVine.");
  CHECK(lookup.asked.back() == "service:web");
  Asked kv = Ask(lookup, QuerySpec{.name = "Config.DB.KV.grapevine.", .type = LDNS_RR_TYPE_TXT});
  CHECK(kv.result.outcome == Outcome::kAnswered);
  CHECK(lookup.asked.back() == "kv:Config/DB");
  Asked node = Ask(lookup, QuerySpec{.name = "N1.Node.grapevine."});
  CHECK(lookup.asked.back() == "node:n1");
  CHECK(RecordTexts(Section(node.pkt.get(), LDNS_SECTION_ANSWER)) == std::vector<std::string>{"N1.Node.grapevine. 0 10.0.0.1"});
}

TEST_CASE("node names: A or AAAA by address family, NODATA for the other") {
  FakeLookup lookup = MakeLookup();
  Asked v6 = Ask(lookup, QuerySpec{.name = "n6.node.grapevine.", .type = LDNS_RR_TYPE_AAAA});
  CHECK(RecordTexts(Section(v6.pkt.get(), LDNS_SECTION_ANSWER)) == std::vector<std::string>{"n6.node.grapevine. 0 2001:db8::6"});
  Asked v6_as_a = Ask(lookup, QuerySpec{.name = "n6.node.grapevine."}, AnswerOptions{.ttl_seconds = 9});
  CHECK(v6_as_a.result.outcome == Outcome::kNoData);
  CHECK(ldns_pkt_get_rcode(v6_as_a.pkt.get()) == LDNS_RCODE_NOERROR);
  CHECK(ldns_pkt_ancount(v6_as_a.pkt.get()) == 0);
  CHECK(ldns_pkt_aa(v6_as_a.pkt.get()));
  CheckSoa(v6_as_a.pkt.get(), 9);
}

TEST_CASE("KV: TXT with the value split into 255-byte character-strings") {
  FakeLookup lookup = MakeLookup();
  Asked small = Ask(lookup, QuerySpec{.name = "a.b.kv.grapevine.", .type = LDNS_RR_TYPE_TXT});
  CHECK(lookup.asked.back() == "kv:a/b");
  REQUIRE(ldns_pkt_ancount(small.pkt.get()) == 1);
  const ldns_rr* txt = Section(small.pkt.get(), LDNS_SECTION_ANSWER)[0];
  CHECK(ldns_rr_get_type(txt) == LDNS_RR_TYPE_TXT);
  CHECK(TxtStrings(txt) == std::vector<std::string>{"hello"});

  std::string big(600, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);  // binary, NULs included
  lookup.kv["big"] = big;
  Asked large = Ask(lookup, QuerySpec{.name = "big.kv.grapevine.", .type = LDNS_RR_TYPE_TXT, .edns_udp_size = 1232});
  CHECK(large.result.outcome == Outcome::kAnswered);
  const std::vector<std::string> strings = TxtStrings(Section(large.pkt.get(), LDNS_SECTION_ANSWER).at(0));
  REQUIRE(strings.size() == 3);
  CHECK(strings[0].size() == 255);
  CHECK(strings[1].size() == 255);
  CHECK(strings[2].size() == 90);
  CHECK(strings[0] + strings[1] + strings[2] == big);

  Asked empty = Ask(lookup, QuerySpec{.name = "empty.kv.grapevine.", .type = LDNS_RR_TYPE_TXT});
  CHECK(TxtStrings(Section(empty.pkt.get(), LDNS_SECTION_ANSWER).at(0)) == std::vector<std::string>{""});

  Asked a_of_kv = Ask(lookup, QuerySpec{.name = "a.b.kv.grapevine."});
  CHECK(a_of_kv.result.outcome == Outcome::kNoData);
}

TEST_CASE("unknown names are NXDOMAIN with the zone's SOA; empty non-terminals and the apex are NODATA") {
  FakeLookup lookup = MakeLookup();
  for (const char* name : {"nosuch.service.grapevine.", "nosuch.node.grapevine.", "missing.kv.grapevine.",
                           "foo.grapevine.", "a.b.node.grapevine.", "x.web.service.grapevine.", "_web._sctp.service.grapevine."}) {
    INFO(name);
    Asked nx = Ask(lookup, QuerySpec{.name = name}, AnswerOptions{.ttl_seconds = 3});
    CHECK(nx.result.outcome == Outcome::kNxDomain);
    CHECK(ldns_pkt_get_rcode(nx.pkt.get()) == LDNS_RCODE_NXDOMAIN);
    CHECK(ldns_pkt_aa(nx.pkt.get()));
    CHECK(ldns_pkt_ancount(nx.pkt.get()) == 0);
    CheckSoa(nx.pkt.get(), 3);
  }
  // Outside the zone: NXDOMAIN too (the contract), but not authoritative and no SOA.
  Asked outside = Ask(lookup, QuerySpec{.name = "example.com."});
  CHECK(outside.result.outcome == Outcome::kNxDomain);
  CHECK_FALSE(ldns_pkt_aa(outside.pkt.get()));
  CHECK(ldns_pkt_nscount(outside.pkt.get()) == 0);

  for (const char* name : {"service.grapevine.", "node.grapevine.", "kv.grapevine.", "grapevine."}) {
    INFO(name);
    Asked ent = Ask(lookup, QuerySpec{.name = name});
    CHECK(ent.result.outcome == Outcome::kNoData);
    CheckSoa(ent.pkt.get(), 0);
  }
  Asked txt_of_service = Ask(lookup, QuerySpec{.name = "web.service.grapevine.", .type = LDNS_RR_TYPE_TXT});
  CHECK(txt_of_service.result.outcome == Outcome::kNoData);
  CheckSoa(txt_of_service.pkt.get(), 0);

  Asked soa = Ask(lookup, QuerySpec{.name = "GrapeVine.", .type = LDNS_RR_TYPE_SOA});
  CHECK(soa.result.outcome == Outcome::kAnswered);
  REQUIRE(ldns_pkt_ancount(soa.pkt.get()) == 1);
  CHECK(ldns_rr_get_type(Section(soa.pkt.get(), LDNS_SECTION_ANSWER)[0]) == LDNS_RR_TYPE_SOA);
}

TEST_CASE("another domain, with or without its trailing dot") {
  FakeLookup lookup = MakeLookup();
  for (const char* domain : {"dc1.example.", "DC1.Example"}) {
    Asked a = Ask(lookup, QuerySpec{.name = "web.service.dc1.example."}, AnswerOptions{.domain = domain});
    CHECK(a.result.outcome == Outcome::kAnswered);
    Asked nx = Ask(lookup, QuerySpec{.name = "web.service.grapevine."}, AnswerOptions{.domain = domain});
    CHECK(nx.result.outcome == Outcome::kNxDomain);
    Asked srv = Ask(lookup, QuerySpec{.name = "web.service.dc1.example.", .type = LDNS_RR_TYPE_SRV},
                    AnswerOptions{.domain = domain});
    CHECK(RdfText(ldns_rr_rdf(Section(srv.pkt.get(), LDNS_SECTION_ANSWER).at(0), 3)) == "n1.node.dc1.example.");
  }
  CHECK_FALSE(ValidateAnswerOptions(AnswerOptions{.domain = "a..b."}).ok());
  CHECK_FALSE(ValidateAnswerOptions(AnswerOptions{.domain = std::string(64, 'x') + "."}).ok());
  CHECK_FALSE(ValidateAnswerOptions(AnswerOptions{.max_udp_bytes = 100}).ok());
  const AnswerResult misconfigured =
      Answer(BuildQuery(QuerySpec{.name = "web.service.grapevine."}), MakeLookup(), AnswerOptions{.domain = ".."});
  CHECK(misconfigured.outcome == Outcome::kDropped);
  CHECK(misconfigured.reason.find("misconfigured") != std::string::npos);
}

TEST_CASE("EDNS0: an OPT record answers one, with our size and the DO bit copied; none without") {
  FakeLookup lookup = MakeLookup();
  Asked with = Ask(lookup, QuerySpec{.name = "web.service.grapevine.", .edns_udp_size = 1232, .edns_do = true},
                   AnswerOptions{.max_udp_bytes = 2048});
  CHECK(ldns_pkt_edns(with.pkt.get()));
  CHECK(ldns_pkt_edns_udp_size(with.pkt.get()) == 2048);
  CHECK(ldns_pkt_edns_version(with.pkt.get()) == 0);
  CHECK(ldns_pkt_edns_do(with.pkt.get()));
  CHECK(ldns_pkt_arcount(with.pkt.get()) == 0);  // ldns counts OPT apart from the section
  Asked without = Ask(lookup, QuerySpec{.name = "web.service.grapevine."});
  CHECK_FALSE(ldns_pkt_edns(without.pkt.get()));

  // EDNS version 1: BADVERS (extended rcode 1, rcode 0), the question echoed.
  std::string query = RawQuery(0x0100, 1, 0, 0, 1, kWebName + kTypeA + kClassIn +
                                                       std::string("\x00\x00\x29\x10\x00\x00\x01\x00\x00\x00\x00", 11));
  const AnswerResult badvers = Answer(query, lookup, AnswerOptions{});
  CHECK(badvers.outcome == Outcome::kNotImplemented);
  CHECK(badvers.reason == "EDNS version 1");
  PktPtr pkt = ParseAnswer(badvers.wire);
  CHECK(ldns_pkt_edns_extended_rcode(pkt.get()) == 1);
  CHECK(ldns_pkt_get_rcode(pkt.get()) == 0);
  CHECK(ldns_pkt_ancount(pkt.get()) == 0);
}

TEST_CASE("an answer larger than the client's limit is cut and TC set; glue alone is cut without TC") {
  FakeLookup lookup = MakeLookup();
  for (int i = 0; i < 200; ++i) {
    lookup.services["big"].push_back({"node" + std::to_string(i), "10.1." + std::to_string(i / 250) + "." + std::to_string(i % 250), 9000});
  }
  // Without EDNS: 512 bytes, as many whole A records as fit.
  Asked plain = Ask(lookup, QuerySpec{.name = "big.service.grapevine."});
  CHECK(plain.result.outcome == Outcome::kTruncated);
  CHECK(plain.result.wire.size() <= 512);
  CHECK(ldns_pkt_tc(plain.pkt.get()));
  const std::size_t partial = ldns_pkt_ancount(plain.pkt.get());
  CHECK(partial > 20);   // 16 bytes a record with name compression: about 29 fit
  CHECK(partial < 200);
  CHECK(RecordTexts(Section(plain.pkt.get(), LDNS_SECTION_ANSWER)).at(partial - 1) ==
        "big.service.grapevine. 0 10.1.0." + std::to_string(partial - 1));

  // With EDNS 4096 the 200 records (about 3.2 KB) fit whole.
  Asked edns = Ask(lookup, QuerySpec{.name = "big.service.grapevine.", .edns_udp_size = 4096});
  CHECK(edns.result.outcome == Outcome::kAnswered);
  CHECK_FALSE(ldns_pkt_tc(edns.pkt.get()));
  CHECK(ldns_pkt_ancount(edns.pkt.get()) == 200);
  // ...unless the server's own limit is lower, or the client's (clamped up to 512).
  Asked capped = Ask(lookup, QuerySpec{.name = "big.service.grapevine.", .edns_udp_size = 4096},
                     AnswerOptions{.max_udp_bytes = 1024});
  CHECK(capped.result.outcome == Outcome::kTruncated);
  CHECK(capped.result.wire.size() <= 1024);
  CHECK(capped.result.wire.size() > 900);
  Asked tiny = Ask(lookup, QuerySpec{.name = "big.service.grapevine.", .edns_udp_size = 100});
  CHECK(tiny.result.wire.size() <= 512);
  CHECK(tiny.result.wire.size() > 400);
  CHECK(AnswerLimitBytes(std::nullopt, AnswerOptions{}) == 512);
  CHECK(AnswerLimitBytes(100, AnswerOptions{}) == 512);
  CHECK(AnswerLimitBytes(1232, AnswerOptions{}) == 1232);
  CHECK(AnswerLimitBytes(65535, AnswerOptions{}) == 4096);

  // SRV: the 200 SRV records do not fit 512 bytes: TC, no glue.
  Asked srv = Ask(lookup, QuerySpec{.name = "big.service.grapevine.", .type = LDNS_RR_TYPE_SRV});
  CHECK(srv.result.outcome == Outcome::kTruncated);
  CHECK(ldns_pkt_arcount(srv.pkt.get()) == 0);
  // 10 SRV records fit 512 bytes (40 bytes each: the target is never
  // compressed, RFC 2782) but their glue does not: the answer is complete,
  // so TC stays clear and only some glue is left out.
  lookup.services["ten"].assign(lookup.services["big"].begin(), lookup.services["big"].begin() + 10);
  Asked ten = Ask(lookup, QuerySpec{.name = "ten.service.grapevine.", .type = LDNS_RR_TYPE_SRV});
  CHECK(ten.result.outcome == Outcome::kAnswered);
  CHECK_FALSE(ldns_pkt_tc(ten.pkt.get()));
  CHECK(ldns_pkt_ancount(ten.pkt.get()) == 10);
  CHECK(ldns_pkt_arcount(ten.pkt.get()) > 0);
  CHECK(ldns_pkt_arcount(ten.pkt.get()) < 10);
  CHECK(ten.result.wire.size() <= 512);

  // A TXT value that cannot fit: TC and an empty answer.
  lookup.kv["huge"] = std::string(3000, 'v');
  Asked huge = Ask(lookup, QuerySpec{.name = "huge.kv.grapevine.", .type = LDNS_RR_TYPE_TXT});
  CHECK(huge.result.outcome == Outcome::kTruncated);
  CHECK(ldns_pkt_tc(huge.pkt.get()));
  CHECK(ldns_pkt_ancount(huge.pkt.get()) == 0);
  Asked huge_edns = Ask(lookup, QuerySpec{.name = "huge.kv.grapevine.", .type = LDNS_RR_TYPE_TXT, .edns_udp_size = 4096});
  CHECK(huge_edns.result.outcome == Outcome::kAnswered);
  std::string joined;
  for (const std::string& s : TxtStrings(Section(huge_edns.pkt.get(), LDNS_SECTION_ANSWER).at(0))) joined += s;
  CHECK(joined == lookup.kv["huge"]);
  lookup.kv["too-big"] = std::string(70000, 'v');  // more than any datagram: never built
  Asked too_big = Ask(lookup, QuerySpec{.name = "too-big.kv.grapevine.", .type = LDNS_RR_TYPE_TXT, .edns_udp_size = 65535},
                      AnswerOptions{.max_udp_bytes = 65535});
  CHECK(too_big.result.outcome == Outcome::kTruncated);
}

TEST_CASE("other opcodes are NOTIMP, zone transfers REFUSED") {
  FakeLookup lookup = MakeLookup();
  const std::string question = kWebName + kTypeA + kClassIn;
  const AnswerResult status = Answer(RawQuery(0x1000, 1, 0, 0, 0, question), lookup, AnswerOptions{});  // opcode 2
  CHECK(status.outcome == Outcome::kNotImplemented);
  CHECK(status.reason == "opcode 2");
  PktPtr pkt = ParseAnswer(status.wire);
  CHECK(ldns_pkt_id(pkt.get()) == 0xBEEF);
  CHECK(ldns_pkt_qr(pkt.get()));
  CHECK(ldns_pkt_get_opcode(pkt.get()) == LDNS_PACKET_STATUS);
  CHECK(ldns_pkt_get_rcode(pkt.get()) == LDNS_RCODE_NOTIMPL);
  CHECK(ldns_pkt_qdcount(pkt.get()) == 1);
  CHECK(lookup.asked.empty());
  // An UPDATE-like message with no question: NOTIMP with an empty question section.
  const AnswerResult update = Answer(RawQuery(0x2800, 0, 0, 0, 0, ""), lookup, AnswerOptions{});
  CHECK(update.outcome == Outcome::kNotImplemented);
  CHECK(ldns_pkt_qdcount(ParseAnswer(update.wire).get()) == 0);

  Asked axfr = Ask(lookup, QuerySpec{.name = "grapevine.", .type = LDNS_RR_TYPE_AXFR});
  CHECK(axfr.result.outcome == Outcome::kRefused);
  CHECK(ldns_pkt_get_rcode(axfr.pkt.get()) == LDNS_RCODE_REFUSED);
}

TEST_CASE("malformed datagrams are dropped with a reason") {
  FakeLookup lookup = MakeLookup();
  const std::string question = kWebName + kTypeA + kClassIn;
  struct Case {
    const char* what;
    std::string wire;
  };
  const std::string pointer_to_itself = RawQuery(0x0100, 1, 0, 0, 0, std::string("\xC0\x0C\x00\x01\x00\x01", 6));
  const std::string forward_pointer = RawQuery(0x0100, 1, 0, 0, 0, std::string("\xC0\x0E\x00\x03www\x00\x00\x01\x00\x01", 12));
  // A loop through a label: "a" then a pointer back to "a".
  const std::string label_loop = RawQuery(0x0100, 1, 0, 0, 0, std::string("\x01" "a\xC0\x0C\x00\x01\x00\x01", 8));
  const std::vector<Case> cases = {
      {"zero bytes", ""},
      {"truncated header", std::string("\x12\x34\x01\x00\x00", 5)},
      {"header only, one question announced", RawQuery(0x0100, 1, 0, 0, 0, "")},
      {"question cut in its name", RawQuery(0x0100, 1, 0, 0, 0, kWebName.substr(0, 10))},
      {"question without type and class", RawQuery(0x0100, 1, 0, 0, 0, kWebName)},
      {"a response (QR=1)", RawQuery(0x8100, 1, 0, 0, 0, question)},
      {"two questions", RawQuery(0x0100, 2, 0, 0, 0, question + question)},
      {"no question", RawQuery(0x0100, 0, 0, 0, 0, "")},
      {"class CH", RawQuery(0x0100, 1, 0, 0, 0, kWebName + kTypeA + std::string("\x00\x03", 2))},
      {"class ANY", RawQuery(0x0100, 1, 0, 0, 0, kWebName + kTypeA + std::string("\x00\xFF", 2))},
      {"answer count with no record", RawQuery(0x0100, 1, 3, 0, 0, question)},
      {"huge additional count", RawQuery(0x0100, 1, 0, 0, 0xFFFF, question)},
      {"compression pointer to itself", pointer_to_itself},
      {"forward compression pointer", forward_pointer},
      {"compression loop through a label", label_loop},
      {"extended label type", RawQuery(0x0100, 1, 0, 0, 0, std::string("\x41x\x00\x00\x01\x00\x01", 7))},
      {"trailing bytes", RawQuery(0x0100, 1, 0, 0, 0, question + "junk")},
      {"oversize", RawQuery(0x0100, 1, 0, 0, 0, question) + std::string(5000, '\0')},
      {"two OPT records", RawQuery(0x0100, 1, 0, 0, 2, question + kRootOpt + kRootOpt)},
      {"OPT not owned by the root", RawQuery(0x0100, 1, 0, 0, 1, question + "\x01x" + kRootOpt)},
      {"OPT in the answer section", RawQuery(0x0100, 1, 1, 0, 0, question + kRootOpt)},
      {"EDNS option cut off",
       RawQuery(0x0100, 1, 0, 0, 1, question + std::string("\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x06\x00\x0a\x00\x08\xAA\xBB", 17))},
      {"record data cut off", RawQuery(0x0100, 1, 0, 0, 1, question + std::string("\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x04\x01", 12))},
      {"OPT as the question type", RawQuery(0x0100, 1, 0, 0, 0, kWebName + std::string("\x00\x29", 2) + kClassIn)},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    const AnswerResult result = Answer(c.wire, lookup, AnswerOptions{});
    CHECK(result.outcome == Outcome::kDropped);
    CHECK(result.wire.empty());
    CHECK_FALSE(result.reason.empty());
  }
  CHECK(lookup.asked.empty());
  CHECK(Answer(pointer_to_itself, lookup, AnswerOptions{}).reason.find("backwards") != std::string::npos);

  // Well-formed compression (a record owned by a pointer to the question
  // name) and an unknown record type in the additional section are fine.
  const std::string compressed_owner =
      RawQuery(0x0100, 1, 0, 0, 1, question + std::string("\xC0\x0C\x00\x63\x00\x01\x00\x00\x00\x00\x00\x02zz", 14));
  const AnswerResult fine = Answer(compressed_owner, lookup, AnswerOptions{});
  CHECK(fine.outcome == Outcome::kAnswered);
  CHECK(fine.reason.empty());
  const AnswerResult with_opt = Answer(RawQuery(0x0100, 1, 0, 0, 1, question + kRootOpt), lookup, AnswerOptions{});
  CHECK(with_opt.outcome == Outcome::kAnswered);
  CHECK(ldns_pkt_edns(ParseAnswer(with_opt.wire).get()));
}
