#include "fuzz/dns_request_check.h"

#include <ldns/ldns.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string_view>
#include <vector>

namespace gv::fuzz {
namespace {

using daemon::dns::Outcome;

struct PktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
struct RdfFree {
  void operator()(ldns_rdf* rdf) const { ldns_rdf_deep_free(rdf); }
};
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;

class FuzzLookup : public daemon::dns::Lookup {
 public:
  FuzzLookup() {
    services_["web"] = {{"n1", "10.0.0.1", 80}, {"n2", "10.0.0.2", 8080}, {"n6", "2001:db8::6", 80}, {"n1", "10.0.0.1", 81}};
    services_["bad"] = {{"", "10.0.0.9", 1}, {std::string(70, 'x'), "nonsense", 2}};  // no valid target label
    for (int i = 0; i < 400; ++i) {
      services_["big"].push_back({"b" + std::to_string(i), "10.3." + std::to_string(i / 200) + "." + std::to_string(i % 200),
                                  static_cast<std::uint16_t>(i)});
    }
    nodes_["n1"] = "10.0.0.1";
    nodes_["n6"] = "2001:db8::6";
    kv_["a/b"] = "hello";
    kv_["empty"] = "";
    kv_["big"] = std::string(3000, 'v');
    kv_["huge"] = std::string(70000, 'h');
  }
  std::vector<daemon::dns::ServiceTarget> HealthyInstances(std::string_view service) const override {
    auto it = services_.find(std::string(service));
    return it == services_.end() ? std::vector<daemon::dns::ServiceTarget>{} : it->second;
  }
  std::optional<std::string> NodeAddress(std::string_view node) const override {
    auto it = nodes_.find(std::string(node));
    if (it == nodes_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> KvValue(std::string_view key) const override {
    auto it = kv_.find(std::string(key));
    if (it == kv_.end()) return std::nullopt;
    return it->second;
  }

 private:
  std::map<std::string, std::vector<daemon::dns::ServiceTarget>> services_;
  std::map<std::string, std::string> nodes_;
  std::map<std::string, std::string> kv_;
};

const FuzzLookup& TheLookup() {
  static const FuzzLookup lookup;
  return lookup;
}

daemon::dns::AnswerOptions OptionsFor(const std::uint8_t* data, std::size_t size) {
  static constexpr std::size_t kSizes[] = {512, 1232, 4096, 65535};
  const std::uint8_t selector = size > 1 ? data[1] : 0;  // the id's low byte: any value is a valid query
  daemon::dns::AnswerOptions options;
  options.max_udp_bytes = kSizes[selector & 3];
  options.ttl_seconds = (selector & 4) ? 60 : 0;
  return options;
}

std::uint16_t ReadU16(const std::uint8_t* p) { return static_cast<std::uint16_t>((p[0] << 8) | p[1]); }

// The request's first question as ldns reads it: name, type, class.
struct Question {
  RdfPtr name;
  std::uint16_t type = 0;
  std::uint16_t klass = 0;
};

std::optional<Question> ReadQuestion(const std::uint8_t* data, std::size_t size) {
  if (size < 12) return std::nullopt;
  std::size_t pos = 12;
  ldns_rdf* name = nullptr;
  if (ldns_wire2dname(&name, data, size, &pos) != LDNS_STATUS_OK) return std::nullopt;
  Question question;
  question.name.reset(name);
  if (pos + 4 > size) return std::nullopt;
  question.type = ReadU16(data + pos);
  question.klass = ReadU16(data + pos + 2);
  return question;
}

bool SameBytes(const ldns_rdf* a, const ldns_rdf* b) {
  return ldns_rdf_size(a) == ldns_rdf_size(b) && std::memcmp(ldns_rdf_data(a), ldns_rdf_data(b), ldns_rdf_size(a)) == 0;
}

std::string CheckRcode(Outcome outcome, const ldns_pkt* answer) {
  const auto rcode = ldns_pkt_get_rcode(answer);
  const std::size_t answers = ldns_pkt_ancount(answer);
  switch (outcome) {
    case Outcome::kAnswered:
      if (rcode != LDNS_RCODE_NOERROR || answers == 0) return "kAnswered without NOERROR and an answer record";
      return "";
    case Outcome::kNoData:
      if (rcode != LDNS_RCODE_NOERROR || answers != 0) return "kNoData is not NOERROR with no answer record";
      return "";
    case Outcome::kNxDomain:
      if (rcode != LDNS_RCODE_NXDOMAIN || answers != 0) return "kNxDomain is not NXDOMAIN with no answer record";
      return "";
    case Outcome::kRefused:
      if (rcode != LDNS_RCODE_REFUSED) return "kRefused is not REFUSED";
      return "";
    case Outcome::kNotImplemented:
      if (rcode != LDNS_RCODE_NOTIMPL && !(rcode == 0 && ldns_pkt_edns_extended_rcode(answer) == 1)) {
        return "kNotImplemented is neither NOTIMP nor BADVERS";
      }
      return "";
    case Outcome::kTruncated:
      if (rcode != LDNS_RCODE_NOERROR && rcode != LDNS_RCODE_NXDOMAIN) return "truncated answer with an error rcode";
      return "";
    case Outcome::kDropped:
      return "dropped outcome with an answer";
  }
  return "unknown outcome";
}

}  // namespace

std::string CheckDnsRequest(const std::uint8_t* data, std::size_t size, DnsRequestOutcome* outcome) {
  const daemon::dns::AnswerOptions options = OptionsFor(data, size);
  const std::string_view request(reinterpret_cast<const char*>(data), size);
  const daemon::dns::AnswerResult result = daemon::dns::Answer(request, TheLookup(), options);
  DnsRequestOutcome local;
  DnsRequestOutcome& out = outcome ? *outcome : local;
  out = DnsRequestOutcome{};
  out.outcome = result.outcome;
  out.answer_bytes = result.wire.size();

  if (result.outcome == Outcome::kDropped) {
    if (!result.wire.empty()) return "dropped, yet answer bytes were returned";
    if (result.reason.empty()) return "dropped without a reason";
    return "";
  }
  if (result.wire.empty()) return "not dropped, yet no answer bytes";
  if ((result.outcome == Outcome::kNotImplemented || result.outcome == Outcome::kRefused) && result.reason.empty()) {
    return "NOTIMP or REFUSED without a reason";
  }

  // The request as ldns reads it, independently of the answerer's parser.
  ldns_pkt* parsed_request = nullptr;
  PktPtr request_pkt;
  if (ldns_wire2pkt(&parsed_request, data, size) == LDNS_STATUS_OK) request_pkt.reset(parsed_request);
  std::size_t limit = daemon::dns::AnswerLimitBytes(std::uint16_t{65535}, options);
  if (request_pkt) {
    const bool had_opt = ldns_pkt_edns(request_pkt.get());
    limit = daemon::dns::AnswerLimitBytes(
        had_opt ? std::optional<std::uint16_t>(ldns_pkt_edns_udp_size(request_pkt.get())) : std::nullopt, options);
  }
  if (result.wire.size() > limit) {
    return "answer of " + std::to_string(result.wire.size()) + " bytes over the limit of " + std::to_string(limit);
  }

  ldns_pkt* parsed_answer = nullptr;
  const ldns_status status = ldns_wire2pkt(&parsed_answer, reinterpret_cast<const std::uint8_t*>(result.wire.data()),
                                           result.wire.size());
  if (status != LDNS_STATUS_OK) return std::string("answer does not parse: ") + ldns_get_errorstr_by_id(status);
  PktPtr answer(parsed_answer);
  out.answer_records = ldns_pkt_ancount(answer.get());

  if (!ldns_pkt_qr(answer.get())) return "answer without QR";
  if (ldns_pkt_id(answer.get()) != ReadU16(data)) return "answer id differs from the request's";
  if (static_cast<unsigned>(ldns_pkt_get_opcode(answer.get())) != ((data[2] >> 3) & 0x0Fu)) return "opcode not echoed";
  if (ldns_pkt_rd(answer.get()) != ((data[2] & 1) != 0)) return "RD not echoed";
  if (ldns_pkt_tc(answer.get()) != (result.outcome == Outcome::kTruncated)) return "TC set without kTruncated, or not set with it";
  if (std::string rcode = CheckRcode(result.outcome, answer.get()); !rcode.empty()) return rcode;
  if (request_pkt && ldns_pkt_edns(request_pkt.get()) != ldns_pkt_edns(answer.get())) {
    return "OPT record in the answer differs from the request's";
  }

  const std::size_t request_questions = ReadU16(data + 4);
  if (result.outcome != Outcome::kNotImplemented || request_questions == 1) {
    if (ldns_pkt_qdcount(answer.get()) != 1) return "answer does not echo exactly one question";
    const std::optional<Question> asked = ReadQuestion(data, size);
    if (!asked) return "answered a request whose question ldns cannot read";
    const ldns_rr* echoed = ldns_rr_list_rr(ldns_pkt_question(answer.get()), 0);
    if (!SameBytes(ldns_rr_owner(echoed), asked->name.get())) return "question name not echoed byte for byte";
    if (ldns_rr_get_type(echoed) != asked->type || ldns_rr_get_class(echoed) != asked->klass) {
      return "question type or class not echoed";
    }
    const ldns_rr_list* answers = ldns_pkt_answer(answer.get());
    for (std::size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
      if (ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(answers, i)), asked->name.get()) != 0) {
        return "answer record not owned by the question's name";
      }
    }
  } else if (ldns_pkt_qdcount(answer.get()) != 0) {
    return "NOTIMP for a request without exactly one question echoes a question";
  }
  return "";
}

}  // namespace gv::fuzz
