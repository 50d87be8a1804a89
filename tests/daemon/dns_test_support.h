// Shared by the DNS answerer and server tests: a fake Lookup, queries built
// with ldns, and answers parsed back with ldns.
#pragma once

#include <doctest/doctest.h>
#include <ldns/ldns.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/dns/dns_answer.h"

namespace gv::dnstest {

struct PktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

// Records which names were asked, so tests see the case-folding.
class FakeLookup : public daemon::dns::Lookup {
 public:
  std::map<std::string, std::vector<daemon::dns::ServiceTarget>> services;
  std::map<std::string, std::string> nodes;
  std::map<std::string, std::string> kv;
  mutable std::vector<std::string> asked;

  std::vector<daemon::dns::ServiceTarget> HealthyInstances(std::string_view service) const override {
    asked.push_back("service:" + std::string(service));
    auto it = services.find(std::string(service));
    return it == services.end() ? std::vector<daemon::dns::ServiceTarget>{} : it->second;
  }
  std::optional<std::string> NodeAddress(std::string_view node) const override {
    asked.push_back("node:" + std::string(node));
    auto it = nodes.find(std::string(node));
    if (it == nodes.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> KvValue(std::string_view key) const override {
    asked.push_back("kv:" + std::string(key));
    auto it = kv.find(std::string(key));
    if (it == kv.end()) return std::nullopt;
    return it->second;
  }
};

struct QuerySpec {
  std::string name{};
  ldns_rr_type type = LDNS_RR_TYPE_A;
  std::uint16_t id = 0x1234;
  std::optional<std::uint16_t> edns_udp_size{};  // nullopt: no OPT record
  bool edns_do = false;
  bool recursion_desired = true;
  bool checking_disabled = false;
};

inline std::string ToWire(const ldns_pkt* pkt) {
  std::uint8_t* bytes = nullptr;
  std::size_t size = 0;
  REQUIRE(ldns_pkt2wire(&bytes, pkt, &size) == LDNS_STATUS_OK);
  std::string wire(reinterpret_cast<const char*>(bytes), size);
  std::free(bytes);
  return wire;
}

inline std::string BuildQuery(const QuerySpec& spec) {
  ldns_rdf* name = ldns_dname_new_frm_str(spec.name.c_str());
  REQUIRE(name != nullptr);
  std::uint16_t flags = spec.recursion_desired ? LDNS_RD : 0;
  if (spec.checking_disabled) flags |= LDNS_CD;
  PktPtr pkt(ldns_pkt_query_new(name, spec.type, LDNS_RR_CLASS_IN, flags));
  REQUIRE(pkt != nullptr);
  ldns_pkt_set_id(pkt.get(), spec.id);
  if (spec.edns_udp_size) {
    ldns_pkt_set_edns_udp_size(pkt.get(), *spec.edns_udp_size);
    ldns_pkt_set_edns_do(pkt.get(), spec.edns_do);
  }
  return ToWire(pkt.get());
}

inline PktPtr ParseAnswer(const std::string& wire) {
  ldns_pkt* pkt = nullptr;
  const ldns_status status = ldns_wire2pkt(&pkt, reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size());
  REQUIRE_MESSAGE(status == LDNS_STATUS_OK, ldns_get_errorstr_by_id(status));
  return PktPtr(pkt);
}

inline std::string RdfText(const ldns_rdf* rdf) {
  char* text = ldns_rdf2str(rdf);
  REQUIRE(text != nullptr);
  std::string out(text);
  std::free(text);
  return out;
}

inline std::string OwnerText(const ldns_rr* rr) { return RdfText(ldns_rr_owner(rr)); }

// The TXT record's character-strings, raw.
inline std::vector<std::string> TxtStrings(const ldns_rr* rr) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < ldns_rr_rd_count(rr); ++i) {
    const ldns_rdf* rdf = ldns_rr_rdf(rr, i);
    const std::uint8_t* data = ldns_rdf_data(rdf);
    REQUIRE(ldns_rdf_size(rdf) == std::size_t{data[0]} + 1);
    out.emplace_back(reinterpret_cast<const char*>(data + 1), data[0]);
  }
  return out;
}

// Checks what every answer must echo of its query (RFC 1035 §4.1.1).
inline void CheckEchoes(const ldns_pkt* answer, const QuerySpec& spec) {
  CHECK(ldns_pkt_id(answer) == spec.id);
  CHECK(ldns_pkt_qr(answer));
  CHECK(ldns_pkt_get_opcode(answer) == LDNS_PACKET_QUERY);
  CHECK(ldns_pkt_rd(answer) == spec.recursion_desired);
  CHECK(ldns_pkt_cd(answer) == spec.checking_disabled);
  CHECK_FALSE(ldns_pkt_ra(answer));
  CHECK_FALSE(ldns_pkt_ad(answer));
  REQUIRE(ldns_pkt_qdcount(answer) == 1);
  const ldns_rr* question = ldns_rr_list_rr(ldns_pkt_question(answer), 0);
  CHECK(OwnerText(question) == spec.name);
  CHECK(ldns_rr_get_type(question) == spec.type);
  CHECK(ldns_rr_get_class(question) == LDNS_RR_CLASS_IN);
  CHECK(ldns_pkt_edns(answer) == spec.edns_udp_size.has_value());
  if (spec.edns_udp_size) CHECK(ldns_pkt_edns_do(answer) == spec.edns_do);
}

}  // namespace gv::dnstest
