#include "daemon/dns/dns_answer.h"

#include <arpa/inet.h>
#include <ldns/ldns.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <utility>

namespace gv::daemon::dns {
namespace {

constexpr std::size_t kHeaderBytes = 12;
constexpr std::size_t kMinUdpBytes = 512;      // RFC 1035 §4.2.1, RFC 6891 §6.2.5
constexpr std::size_t kMaxUdpBytes = 65535;    // the largest EDNS size a client can advertise
constexpr std::size_t kMaxTxtChunkBytes = 255;  // one character-string
constexpr std::size_t kMinRecordBytes = 11;    // root owner + type, class, ttl, rdlength
constexpr std::uint16_t kTypeOpt = 41;
constexpr std::uint16_t kTypeTkey = 249;
constexpr std::uint16_t kTypeTsig = 250;
constexpr std::uint16_t kTypeIxfr = 251;
constexpr std::uint16_t kTypeAxfr = 252;
constexpr std::uint16_t kTypeAny = 255;
constexpr std::uint16_t kClassIn = 1;
constexpr std::uint16_t kSrvPriority = 1;
constexpr std::uint16_t kSrvWeight = 1;
constexpr std::uint8_t kExtendedRcodeBadVers = 1;  // BADVERS (16) >> 4, RFC 6891 §6.1.3
// SOA timers: nothing transfers this zone, so only MINIMUM (negative caching,
// RFC 2308 §4) matters; it is the configured TTL.
constexpr std::uint32_t kSoaSerial = 1;
constexpr std::uint32_t kSoaRefreshSeconds = 3600;
constexpr std::uint32_t kSoaRetrySeconds = 600;
constexpr std::uint32_t kSoaExpireSeconds = 86400;

struct RdfFree {
  void operator()(ldns_rdf* rdf) const { ldns_rdf_deep_free(rdf); }
};
struct RrFree {
  void operator()(ldns_rr* rr) const { ldns_rr_free(rr); }
};
struct PktFree {
  void operator()(ldns_pkt* pkt) const { ldns_pkt_free(pkt); }
};
using RdfPtr = std::unique_ptr<ldns_rdf, RdfFree>;
using RrPtr = std::unique_ptr<ldns_rr, RrFree>;
using PktPtr = std::unique_ptr<ldns_pkt, PktFree>;

std::uint16_t ReadU16(std::string_view wire, std::size_t pos) {
  return static_cast<std::uint16_t>((static_cast<std::uint8_t>(wire[pos]) << 8) | static_cast<std::uint8_t>(wire[pos + 1]));
}

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

// The request, verified. Names are ldns rdfs in uncompressed wire form.
struct Request {
  std::uint16_t id = 0;
  std::uint8_t opcode = 0;
  bool rd = false;
  bool cd = false;
  std::uint16_t question_count = 0;
  RdfPtr qname;  // set when question_count == 1
  std::uint16_t qtype = 0;
  std::uint16_t qclass = 0;
  bool edns = false;
  std::uint16_t edns_udp_size = 0;
  std::uint8_t edns_version = 0;
  bool edns_do = false;
};

// Walks a possibly compressed name without decoding it. Every compression
// pointer must point strictly before the start of the labels it continues
// (where real encoders point: an earlier occurrence). The position it jumps
// to thus strictly decreases, so a crafted loop ends after at most
// size/2 jumps instead of spinning through ldns's 65535-pointer allowance.
std::string VerifyNameLinks(std::string_view wire, std::size_t start) {
  std::size_t pos = start;
  std::size_t floor = start;
  while (true) {
    if (pos >= wire.size()) return "name runs past the end of the datagram";
    const auto length = static_cast<std::uint8_t>(wire[pos]);
    if (length == 0) return "";
    if ((length & 0xC0) == 0xC0) {
      if (pos + 2 > wire.size()) return "compression pointer cut off by the end of the datagram";
      const std::size_t target = ReadU16(wire, pos) & 0x3FFF;
      if (target >= floor) return "compression pointer does not point backwards (loop or forward reference)";
      pos = floor = target;
      continue;
    }
    if (length > LDNS_MAX_LABELLEN) return "label type 0x40/0x80 (extended label) is not supported";
    pos += 1 + length;
  }
}

// Reads the name at *pos (advancing past it) with ldns.
std::string ReadName(std::string_view wire, std::size_t* pos, RdfPtr* name) {
  std::string bad_link = VerifyNameLinks(wire, *pos);
  if (!bad_link.empty()) return bad_link;
  ldns_rdf* rdf = nullptr;
  const ldns_status status =
      ldns_wire2dname(&rdf, reinterpret_cast<const std::uint8_t*>(wire.data()), wire.size(), pos);
  if (status != LDNS_STATUS_OK) return std::string("bad name: ") + ldns_get_errorstr_by_id(status);
  name->reset(rdf);
  return "";
}

// Verifies one resource record of the answer, authority or additional
// section; an OPT record's fields go to `request`. Record data other than
// OPT's is only bounds-checked, never interpreted.
std::string ReadRecord(std::string_view wire, std::size_t* pos, bool additional, Request& request) {
  RdfPtr owner;
  std::string bad = ReadName(wire, pos, &owner);
  if (!bad.empty()) return bad;
  if (*pos + 10 > wire.size()) return "record header cut off";
  const std::uint16_t type = ReadU16(wire, *pos);
  const std::uint16_t klass = ReadU16(wire, *pos + 2);
  const std::uint8_t ttl_high = static_cast<std::uint8_t>(wire[*pos + 4]);
  const std::uint8_t ttl_second = static_cast<std::uint8_t>(wire[*pos + 5]);
  const std::uint16_t ttl_low = ReadU16(wire, *pos + 6);
  const std::size_t data_length = ReadU16(wire, *pos + 8);
  *pos += 10;
  if (*pos + data_length > wire.size()) return "record data cut off";
  const std::size_t data_end = *pos + data_length;
  if (type == kTypeOpt) {
    if (!additional) return "OPT record outside the additional section";
    if (request.edns) return "more than one OPT record";
    if (ldns_rdf_size(owner.get()) != 1) return "OPT record not owned by the root name";
    // The options: code, length, data; they must tile the record data.
    std::size_t option = *pos;
    while (option < data_end) {
      if (option + 4 > data_end) return "EDNS option header cut off";
      const std::size_t option_length = ReadU16(wire, option + 2);
      option += 4 + option_length;
      if (option > data_end) return "EDNS option data cut off";
    }
    request.edns = true;
    request.edns_udp_size = klass;
    (void)ttl_high;  // extended RCODE: meaningless in a query
    request.edns_version = ttl_second;
    request.edns_do = (ttl_low & 0x8000) != 0;
  }
  *pos = data_end;
  return "";
}

std::string ParseRequest(std::string_view wire, std::size_t max_request_bytes, Request& request) {
  if (wire.empty()) return "empty datagram";
  if (wire.size() < kHeaderBytes) return "shorter than the 12-byte header";
  if (wire.size() > max_request_bytes) return "larger than " + std::to_string(max_request_bytes) + " bytes";
  const auto flags_high = static_cast<std::uint8_t>(wire[2]);
  const auto flags_low = static_cast<std::uint8_t>(wire[3]);
  if (flags_high & 0x80) return "a response (QR=1), not a query";
  request.id = ReadU16(wire, 0);
  request.opcode = (flags_high >> 3) & 0x0F;
  request.rd = (flags_high & 0x01) != 0;
  request.cd = (flags_low & 0x10) != 0;
  request.question_count = ReadU16(wire, 4);
  const std::uint16_t answer_count = ReadU16(wire, 6);
  const std::uint16_t authority_count = ReadU16(wire, 8);
  const std::uint16_t additional_count = ReadU16(wire, 10);
  // Every question takes at least 5 bytes and every record 11: counts that
  // cannot fit are refused before any allocation.
  const std::size_t least_bytes = kHeaderBytes + 5u * request.question_count +
                                  kMinRecordBytes * (std::size_t{answer_count} + authority_count + additional_count);
  if (least_bytes > wire.size()) return "section counts larger than the datagram can hold";
  std::size_t pos = kHeaderBytes;
  for (std::uint16_t i = 0; i < request.question_count; ++i) {
    RdfPtr name;
    std::string bad = ReadName(wire, &pos, &name);
    if (!bad.empty()) return "question: " + bad;
    if (pos + 4 > wire.size()) return "question type and class cut off";
    if (i == 0) {
      request.qname = std::move(name);
      request.qtype = ReadU16(wire, pos);
      request.qclass = ReadU16(wire, pos + 2);
    }
    pos += 4;
  }
  const std::size_t records = std::size_t{answer_count} + authority_count + additional_count;
  for (std::size_t i = 0; i < records; ++i) {
    const bool additional = i >= std::size_t{answer_count} + authority_count;
    std::string bad = ReadRecord(wire, &pos, additional, request);
    if (!bad.empty()) return "record " + std::to_string(i) + ": " + bad;
  }
  if (pos != wire.size()) return std::to_string(wire.size() - pos) + " bytes after the last record";
  return "";
}

std::vector<std::string> SplitLabels(const ldns_rdf* name) {
  std::vector<std::string> labels;
  const auto* data = ldns_rdf_data(name);
  const std::size_t size = ldns_rdf_size(name);
  std::size_t pos = 0;
  // An rdf from ldns_wire2dname is uncompressed and verified: length bytes
  // of at most 63, ending with the root label.
  while (pos < size && data[pos] != 0) {
    const std::size_t length = data[pos];
    labels.emplace_back(reinterpret_cast<const char*>(data + pos + 1), length);
    pos += 1 + length;
  }
  return labels;
}

std::vector<std::string> DomainLabels(std::string_view domain) {
  std::vector<std::string> labels;
  if (!domain.empty() && domain.back() == '.') domain.remove_suffix(1);
  while (!domain.empty()) {
    const std::size_t dot = domain.find('.');
    labels.push_back(Lower(domain.substr(0, dot)));
    if (dot == std::string_view::npos) break;
    domain.remove_prefix(dot + 1);
    if (domain.empty()) labels.emplace_back();  // "a..": an empty label, refused by validation
  }
  return labels;
}

// A name from its labels (each 1..63 bytes; at most 255 bytes in wire form).
RdfPtr MakeName(const std::vector<std::string>& labels) {
  std::string wire;
  for (const std::string& label : labels) {
    if (label.empty() || label.size() > LDNS_MAX_LABELLEN) return nullptr;
    wire += static_cast<char>(label.size());
    wire += label;
  }
  wire += '\0';
  if (wire.size() > LDNS_MAX_DOMAINLEN) return nullptr;
  return RdfPtr(ldns_dname_new_frm_data(static_cast<std::uint16_t>(wire.size()), wire.data()));
}

RrPtr MakeRecord(const ldns_rdf* owner, std::uint16_t type, std::uint32_t ttl) {
  RrPtr rr(ldns_rr_new());
  ldns_rr_set_owner(rr.get(), ldns_rdf_clone(owner));
  ldns_rr_set_type(rr.get(), static_cast<ldns_rr_type>(type));
  ldns_rr_set_class(rr.get(), LDNS_RR_CLASS_IN);
  ldns_rr_set_ttl(rr.get(), ttl);
  ldns_rr_set_question(rr.get(), false);
  return rr;
}

// An IP literal in wire form: 4 bytes (IPv4) or 16 (IPv6); "" if neither.
std::string ParseAddress(const std::string& text) {
  std::array<unsigned char, 16> bytes{};
  if (inet_pton(AF_INET, text.c_str(), bytes.data()) == 1) return std::string(reinterpret_cast<char*>(bytes.data()), 4);
  if (inet_pton(AF_INET6, text.c_str(), bytes.data()) == 1) return std::string(reinterpret_cast<char*>(bytes.data()), 16);
  return "";
}

RrPtr MakeAddressRecord(const ldns_rdf* owner, const std::string& address_bytes, std::uint32_t ttl) {
  const bool v4 = address_bytes.size() == 4;
  RrPtr rr = MakeRecord(owner, v4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA, ttl);
  ldns_rr_push_rdf(rr.get(), ldns_rdf_new_frm_data(v4 ? LDNS_RDF_TYPE_A : LDNS_RDF_TYPE_AAAA, address_bytes.size(),
                                                   address_bytes.data()));
  return rr;
}

// The sections of an answer before fitting it to the client's limit.
struct Draft {
  std::uint8_t rcode = LDNS_RCODE_NOERROR;
  std::uint8_t extended_rcode = 0;
  bool authoritative = true;
  bool echo_question = true;
  bool truncated = false;  // set when a record was known not to fit before encoding
  std::vector<RrPtr> answer;
  std::vector<RrPtr> authority;
  std::vector<RrPtr> additional;
  Outcome outcome_if_no_answer = Outcome::kNoData;
  std::string reason;
};

class Encoder {
 public:
  Encoder(const Request& request, const Draft& draft, std::size_t edns_size_bytes)
      : request_(request), draft_(draft), edns_size_bytes_(edns_size_bytes) {}

  // The answer with the first `answers`, `authority` and `additional`
  // records of each section; "" if ldns failed.
  std::string Encode(std::size_t answers, std::size_t authority, std::size_t additional, bool truncated) const {
    PktPtr pkt(ldns_pkt_new());
    if (!pkt) return "";
    ldns_pkt* p = pkt.get();
    ldns_pkt_set_id(p, request_.id);
    ldns_pkt_set_qr(p, true);
    ldns_pkt_set_opcode(p, static_cast<ldns_pkt_opcode>(request_.opcode));
    ldns_pkt_set_aa(p, draft_.authoritative);
    ldns_pkt_set_tc(p, truncated);
    ldns_pkt_set_rd(p, request_.rd);
    ldns_pkt_set_cd(p, request_.cd);
    ldns_pkt_set_ra(p, false);
    ldns_pkt_set_ad(p, false);
    ldns_pkt_set_rcode(p, draft_.rcode);
    if (draft_.echo_question && request_.qname) {
      RrPtr question(ldns_rr_new());
      ldns_rr_set_owner(question.get(), ldns_rdf_clone(request_.qname.get()));
      ldns_rr_set_type(question.get(), static_cast<ldns_rr_type>(request_.qtype));
      ldns_rr_set_class(question.get(), static_cast<ldns_rr_class>(request_.qclass));
      ldns_rr_set_question(question.get(), true);
      if (!ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, question.release())) return "";
    }
    const auto push = [p](ldns_pkt_section section, const std::vector<RrPtr>& records, std::size_t count) {
      for (std::size_t i = 0; i < count && i < records.size(); ++i) {
        if (!ldns_pkt_push_rr(p, section, ldns_rr_clone(records[i].get()))) return false;
      }
      return true;
    };
    if (!push(LDNS_SECTION_ANSWER, draft_.answer, answers) || !push(LDNS_SECTION_AUTHORITY, draft_.authority, authority) ||
        !push(LDNS_SECTION_ADDITIONAL, draft_.additional, additional)) {
      return "";
    }
    if (request_.edns) {
      // Our own OPT: the size we accept, version 0, DO copied (RFC 3225 §3),
      // no options (cookies and the rest are not implemented, RFC 7873 §5.2).
      ldns_pkt_set_edns_udp_size(p, static_cast<std::uint16_t>(edns_size_bytes_));
      ldns_pkt_set_edns_version(p, 0);
      ldns_pkt_set_edns_extended_rcode(p, draft_.extended_rcode);
      ldns_pkt_set_edns_do(p, request_.edns_do);
    }
    std::uint8_t* bytes = nullptr;
    std::size_t size = 0;
    if (ldns_pkt2wire(&bytes, p, &size) != LDNS_STATUS_OK || bytes == nullptr) {
      std::free(bytes);
      return "";
    }
    std::string wire(reinterpret_cast<const char*>(bytes), size);
    std::free(bytes);
    return wire;
  }

 private:
  const Request& request_;
  const Draft& draft_;
  std::size_t edns_size_bytes_;
};

// The largest n in [0, upper] with fits(n), given fits(0) and monotonicity.
template <typename Fits>
std::size_t LargestFitting(std::size_t upper, const Fits& fits) {
  std::size_t low = 0, high = upper;
  while (low < high) {
    const std::size_t mid = low + (high - low + 1) / 2;
    if (fits(mid)) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

AnswerResult Finish(const Request& request, const Draft& draft, std::size_t limit_bytes, std::size_t edns_size_bytes) {
  const Encoder encoder(request, draft, edns_size_bytes);
  const std::size_t answers = draft.answer.size(), authority = draft.authority.size(),
                    additional = draft.additional.size();
  AnswerResult result;
  result.reason = draft.reason;
  bool truncated = draft.truncated;
  std::size_t kept_answers = answers, kept_authority = authority;
  std::string wire = encoder.Encode(answers, authority, additional, truncated);
  if (!wire.empty() && wire.size() > limit_bytes) {
    const auto fits = [&](std::size_t a, std::size_t n, std::size_t d, bool tc) {
      const std::string attempt = encoder.Encode(a, n, d, tc);
      return !attempt.empty() && attempt.size() <= limit_bytes;
    };
    if (fits(answers, authority, 0, truncated)) {
      // Only glue is cut: the answer is complete, TC stays clear (RFC 2181 §9).
      const std::size_t kept = LargestFitting(additional, [&](std::size_t d) { return fits(answers, authority, d, truncated); });
      wire = encoder.Encode(answers, authority, kept, truncated);
    } else {
      truncated = true;
      if (fits(answers, 0, 0, true)) {
        kept_authority = LargestFitting(authority, [&](std::size_t n) { return fits(answers, n, 0, true); });
      } else {
        kept_authority = 0;
        kept_answers = LargestFitting(answers, [&](std::size_t a) { return fits(a, 0, 0, true); });
      }
      wire = encoder.Encode(kept_answers, kept_authority, 0, true);
    }
  }
  if (wire.empty() || wire.size() > limit_bytes) {
    // ldns failed to encode (out of memory), or even the bare question does
    // not fit (impossible: it is at most 12 + 259 + 11 bytes < 512).
    result.outcome = Outcome::kDropped;
    result.reason = "internal: the answer could not be encoded";
    return result;
  }
  result.wire = std::move(wire);
  if (truncated) {
    result.outcome = Outcome::kTruncated;
  } else if (draft.rcode == LDNS_RCODE_NOERROR && draft.extended_rcode == 0) {
    result.outcome = kept_answers > 0 ? Outcome::kAnswered : draft.outcome_if_no_answer;
  } else {
    result.outcome = draft.outcome_if_no_answer;
  }
  return result;
}

// What the question asks, after the domain is stripped.
struct Resolver {
  const Request& request;
  const Lookup& lookup;
  const AnswerOptions& options;
  const std::vector<std::string>& domain;  // lower-cased labels of options.domain
  std::size_t limit_bytes;
  Draft& draft;

  RdfPtr DomainName() const { return MakeName(domain); }

  void AddSoa() {
    RdfPtr apex = DomainName();
    std::vector<std::string> ns = domain, mailbox = domain;
    ns.insert(ns.begin(), "ns");
    mailbox.insert(mailbox.begin(), "hostmaster");
    RdfPtr ns_name = MakeName(ns), mailbox_name = MakeName(mailbox);
    // A domain too long for "hostmaster." in front gets no SOA (it is
    // nice-to-have; the rcode carries the answer).
    if (!apex || !ns_name || !mailbox_name) return;
    RrPtr soa = MakeRecord(apex.get(), LDNS_RR_TYPE_SOA, options.ttl_seconds);
    ldns_rr_push_rdf(soa.get(), ns_name.release());
    ldns_rr_push_rdf(soa.get(), mailbox_name.release());
    ldns_rr_push_rdf(soa.get(), ldns_native2rdf_int32(LDNS_RDF_TYPE_INT32, kSoaSerial));
    ldns_rr_push_rdf(soa.get(), ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, kSoaRefreshSeconds));
    ldns_rr_push_rdf(soa.get(), ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, kSoaRetrySeconds));
    ldns_rr_push_rdf(soa.get(), ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, kSoaExpireSeconds));
    ldns_rr_push_rdf(soa.get(), ldns_native2rdf_int32(LDNS_RDF_TYPE_PERIOD, options.ttl_seconds));
    draft.authority.push_back(std::move(soa));
  }

  void NxDomain() {
    draft.rcode = LDNS_RCODE_NXDOMAIN;
    draft.outcome_if_no_answer = Outcome::kNxDomain;
    AddSoa();
  }
  void NoData() {
    draft.outcome_if_no_answer = Outcome::kNoData;
    AddSoa();
  }
  // Called after the answers are added: an empty answer is NODATA.
  void NoDataIfEmpty() {
    if (draft.answer.empty() && !draft.truncated) NoData();
  }

  bool Wants(std::uint16_t type) const { return request.qtype == type || request.qtype == kTypeAny; }

  // Answers never hold more records than could fit: each takes at least
  // kMinRecordBytes, so one more than limit/kMinRecordBytes is enough to
  // make the fitting step truncate, however many instances a service has.
  std::size_t MaxRecords() const { return limit_bytes / kMinRecordBytes + 1; }

  void Service(const std::string& service) {
    const std::vector<ServiceTarget> instances = lookup.HealthyInstances(service);
    if (instances.empty()) return NxDomain();
    const ldns_rdf* owner = request.qname.get();
    std::set<std::string> seen_addresses;
    for (const ServiceTarget& instance : instances) {
      const std::string bytes = ParseAddress(instance.address);
      if (bytes.empty() || draft.answer.size() >= MaxRecords()) continue;
      const std::uint16_t type = bytes.size() == 4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA;
      if (Wants(type) && seen_addresses.insert(bytes).second) {
        draft.answer.push_back(MakeAddressRecord(owner, bytes, options.ttl_seconds));
      }
    }
    if (Wants(LDNS_RR_TYPE_SRV)) {
      std::set<std::pair<std::string, std::uint16_t>> seen_targets;
      std::set<std::pair<std::string, std::string>> seen_glue;
      for (const ServiceTarget& instance : instances) {
        if (draft.answer.size() >= MaxRecords()) break;
        std::vector<std::string> target_labels = domain;
        target_labels.insert(target_labels.begin(), {Lower(instance.node_name), "node"});
        RdfPtr target = MakeName(target_labels);  // null: the node name is no DNS label
        if (!target || !seen_targets.emplace(target_labels.front(), instance.port).second) continue;
        RrPtr srv = MakeRecord(owner, LDNS_RR_TYPE_SRV, options.ttl_seconds);
        ldns_rr_push_rdf(srv.get(), ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, kSrvPriority));
        ldns_rr_push_rdf(srv.get(), ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, kSrvWeight));
        ldns_rr_push_rdf(srv.get(), ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, instance.port));
        const std::string bytes = ParseAddress(instance.address);
        if (!bytes.empty() && seen_glue.emplace(target_labels.front(), bytes).second &&
            draft.additional.size() < MaxRecords()) {
          draft.additional.push_back(MakeAddressRecord(target.get(), bytes, options.ttl_seconds));
        }
        ldns_rr_push_rdf(srv.get(), target.release());
        draft.answer.push_back(std::move(srv));
      }
    }
    NoDataIfEmpty();
  }

  void Node(const std::string& node) {
    const std::optional<std::string> address = lookup.NodeAddress(node);
    if (!address) return NxDomain();
    const std::string bytes = ParseAddress(*address);
    if (!bytes.empty() && Wants(bytes.size() == 4 ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_AAAA)) {
      draft.answer.push_back(MakeAddressRecord(request.qname.get(), bytes, options.ttl_seconds));
    }
    NoDataIfEmpty();
  }

  void Kv(const std::string& key) {
    const std::optional<std::string> value = lookup.KvValue(key);
    if (!value) return NxDomain();
    if (Wants(LDNS_RR_TYPE_TXT)) {
      // One character-string per 255 bytes: 256/255 of the value plus the
      // record's fixed part. A value that cannot fit is not built at all.
      const std::size_t data_bytes = value->size() + value->size() / kMaxTxtChunkBytes + 1;
      if (data_bytes > limit_bytes) {
        draft.truncated = true;
      } else {
        RrPtr txt = MakeRecord(request.qname.get(), LDNS_RR_TYPE_TXT, options.ttl_seconds);
        std::size_t offset = 0;
        do {  // an empty value is one empty character-string (RFC 1035 §3.3.14)
          const std::size_t chunk = std::min(kMaxTxtChunkBytes, value->size() - offset);
          std::string data(1, static_cast<char>(chunk));
          data.append(*value, offset, chunk);
          ldns_rr_push_rdf(txt.get(), ldns_rdf_new_frm_data(LDNS_RDF_TYPE_STR, data.size(), data.data()));
          offset += chunk;
        } while (offset < value->size());
        draft.answer.push_back(std::move(txt));
      }
    }
    NoDataIfEmpty();
  }

  void Apex() {
    if (Wants(LDNS_RR_TYPE_SOA)) {
      AddSoa();
      if (!draft.authority.empty()) {
        draft.answer.push_back(std::move(draft.authority.back()));
        draft.authority.pop_back();
      }
    }
    NoDataIfEmpty();
  }

  void Resolve() {
    const std::vector<std::string> labels = SplitLabels(request.qname.get());
    std::vector<std::string> lowered;
    for (const std::string& label : labels) lowered.push_back(Lower(label));
    const bool in_zone = lowered.size() >= domain.size() &&
                         std::equal(domain.begin(), domain.end(), lowered.end() - static_cast<std::ptrdiff_t>(domain.size()));
    if (!in_zone) {
      // Not our zone: no SOA to show, and not authoritative. NXDOMAIN (not
      // REFUSED) because the contract answers every unknown name so.
      draft.authoritative = false;
      draft.rcode = LDNS_RCODE_NXDOMAIN;
      draft.outcome_if_no_answer = Outcome::kNxDomain;
      return;
    }
    const std::size_t relative = lowered.size() - domain.size();
    if (relative == 0) return Apex();
    const std::string& kind = lowered[relative - 1];
    if (relative == 1) {
      // service. node. kv. exist as empty non-terminals: NODATA, not NXDOMAIN.
      if (kind == "service" || kind == "node" || kind == "kv") return NoData();
      return NxDomain();
    }
    if (kind == "service" && relative == 2) return Service(lowered[0]);
    if (kind == "service" && relative == 3 && lowered[0].size() > 1 && lowered[0][0] == '_' &&
        (lowered[1] == "_tcp" || lowered[1] == "_udp")) {
      return Service(lowered[0].substr(1));
    }
    if (kind == "node" && relative == 2) return Node(lowered[0]);
    if (kind == "kv") {
      std::string key;
      for (std::size_t i = 0; i + 1 < relative; ++i) key += (i ? "/" : "") + labels[i];
      return Kv(key);
    }
    NxDomain();
  }
};

std::size_t ClampUdp(std::size_t bytes) { return std::clamp(bytes, kMinUdpBytes, kMaxUdpBytes); }

}  // namespace

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kAnswered: return "answered";
    case Outcome::kNxDomain: return "nxdomain";
    case Outcome::kNoData: return "nodata";
    case Outcome::kNotImplemented: return "notimp";
    case Outcome::kRefused: return "refused";
    case Outcome::kTruncated: return "truncated";
    case Outcome::kDropped: return "dropped";
  }
  return "unknown";
}

Status ValidateAnswerOptions(const AnswerOptions& options) {
  if (options.domain.empty() || options.domain == ".") return Status::Ok();  // the root: every name
  const std::vector<std::string> labels = DomainLabels(options.domain);
  std::size_t wire_bytes = 1;
  for (const std::string& label : labels) {
    if (label.empty() || label.size() > LDNS_MAX_LABELLEN) {
      return Status::InvalidArgument("DNS domain '" + options.domain + "': labels must be 1..63 bytes");
    }
    if (label.find('\\') != std::string::npos) {
      return Status::InvalidArgument("DNS domain '" + options.domain + "': escapes are not supported");
    }
    wire_bytes += 1 + label.size();
  }
  // Room for "hostmaster." in front (the SOA mailbox) and a service label.
  if (wire_bytes + 11 + 64 > LDNS_MAX_DOMAINLEN) {
    return Status::InvalidArgument("DNS domain '" + options.domain + "' is too long (at most 180 bytes)");
  }
  if (options.max_udp_bytes < kMinUdpBytes || options.max_udp_bytes > kMaxUdpBytes) {
    return Status::InvalidArgument("DNS max_udp_bytes must be in 512..65535");
  }
  return Status::Ok();
}

std::size_t AnswerLimitBytes(std::optional<std::uint16_t> edns_udp_size, const AnswerOptions& options) {
  if (!edns_udp_size) return kMinUdpBytes;
  return std::min<std::size_t>(std::max<std::size_t>(*edns_udp_size, kMinUdpBytes), ClampUdp(options.max_udp_bytes));
}

AnswerResult Answer(std::string_view request_wire, const Lookup& lookup, const AnswerOptions& options) {
  AnswerResult dropped;
  dropped.outcome = Outcome::kDropped;
  if (Status valid = ValidateAnswerOptions(options); !valid.ok()) {
    dropped.reason = "misconfigured: " + valid.message();
    return dropped;
  }
  const std::size_t max_udp_bytes = ClampUdp(options.max_udp_bytes);
  Request request;
  dropped.reason = ParseRequest(request_wire, max_udp_bytes, request);
  if (!dropped.reason.empty()) return dropped;

  const std::size_t limit_bytes =
      AnswerLimitBytes(request.edns ? std::optional<std::uint16_t>(request.edns_udp_size) : std::nullopt, options);
  Draft draft;
  if (request.opcode != LDNS_PACKET_QUERY) {
    draft.rcode = LDNS_RCODE_NOTIMPL;
    draft.authoritative = false;
    draft.echo_question = request.question_count == 1;
    draft.outcome_if_no_answer = Outcome::kNotImplemented;
    draft.reason = "opcode " + std::to_string(request.opcode);
    return Finish(request, draft, limit_bytes, max_udp_bytes);
  }
  if (request.question_count != 1) {
    dropped.reason = std::to_string(request.question_count) + " questions (exactly one is answered)";
    return dropped;
  }
  if (request.qclass != kClassIn) {
    dropped.reason = "class " + std::to_string(request.qclass) + " (only IN is served)";
    return dropped;
  }
  if (request.qtype == 0 || request.qtype == kTypeOpt || request.qtype == kTypeTsig || request.qtype == kTypeTkey) {
    dropped.reason = "meta type " + std::to_string(request.qtype) + " in the question";
    return dropped;
  }
  if (request.edns && request.edns_version > 0) {
    // RFC 6891 §6.1.3: BADVERS, naming the version we do speak (0).
    draft.rcode = 0;
    draft.extended_rcode = kExtendedRcodeBadVers;
    draft.authoritative = false;
    draft.outcome_if_no_answer = Outcome::kNotImplemented;
    draft.reason = "EDNS version " + std::to_string(request.edns_version);
    return Finish(request, draft, limit_bytes, max_udp_bytes);
  }
  if (request.qtype == kTypeAxfr || request.qtype == kTypeIxfr) {
    draft.rcode = LDNS_RCODE_REFUSED;
    draft.outcome_if_no_answer = Outcome::kRefused;
    draft.reason = "zone transfer";
    return Finish(request, draft, limit_bytes, max_udp_bytes);
  }
  const std::vector<std::string> domain =
      (options.domain.empty() || options.domain == ".") ? std::vector<std::string>{} : DomainLabels(options.domain);
  Resolver resolver{request, lookup, options, domain, limit_bytes, draft};
  resolver.Resolve();
  return Finish(request, draft, limit_bytes, max_udp_bytes);
}

}  // namespace gv::daemon::dns
