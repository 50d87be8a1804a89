// The DNS endpoint's answerer (DESIGN.md §6): request bytes in, answer bytes
// out. Pure: no socket, no clock, no randomness; the agent's data is reached
// only through Lookup. The wire format is read and written with ldns.
//
// Names served under options.domain (default "grapevine."):
//   <service>.service.<domain>          A / AAAA / SRV of the healthy instances
//   _<service>._tcp.service.<domain>    the same (RFC 2782 form; also _udp)
//   <node>.node.<domain>                A or AAAA of the node
//   <l1>.<l2>...<ln>.kv.<domain>        TXT with the value of key "l1/l2/.../ln"
//   <domain>                            SOA
// Anything else is NXDOMAIN. See docs/dns.md for the full behaviour.
//
// What the answerer guarantees for every input (the fuzz target checks it):
//  - a malformed datagram, a response (QR=1), two OPT records, or a QUERY
//    with a question count other than one, a class other than IN or a meta
//    type (OPT, TSIG, TKEY) in the question is dropped: outcome kDropped,
//    empty wire, a reason for the logs;
//  - anything else gets an answer that echoes the id, opcode, RD, CD and the
//    question as asked (case preserved), carries an OPT record exactly when
//    the query had one, and is no longer than the client's limit: 512 bytes
//    without EDNS, else the advertised size clamped to
//    [512, options.max_udp_bytes]. What does not fit is cut: additional
//    records first (no TC, RFC 2181 §9), then authority, then answers from
//    the end, and TC is set.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gv::daemon::dns {

// One healthy instance of a service. `address` is where the service listens
// (the service's own address, or its node's when it registered none): an
// IPv4 or IPv6 literal; an instance whose address is neither is left out of
// A/AAAA answers and its SRV record carries no glue.
struct ServiceTarget {
  std::string node_name{};
  std::string address{};
  std::uint16_t port = 0;
};

// What the answerer asks of the agent. Called on the loop thread only; every
// call must be cheap (it runs once per query). Service and node names are
// passed lower-cased (DNS names are case-insensitive): the implementation
// must match them case-insensitively. KV keys are passed as asked (keys are
// case-sensitive; a resolver that randomises case, RFC draft "0x20", will
// miss keys with upper-case letters).
class Lookup {
 public:
  virtual ~Lookup() = default;
  // Healthy instances of `service`; empty when the service is unknown or has
  // no healthy instance (both answer NXDOMAIN).
  virtual std::vector<ServiceTarget> HealthyInstances(std::string_view service) const = 0;
  // The node's address (IP literal), or nullopt for an unknown node.
  virtual std::optional<std::string> NodeAddress(std::string_view node) const = 0;
  // The live value of `key`, or nullopt when absent or deleted.
  virtual std::optional<std::string> KvValue(std::string_view key) const = 0;
};

struct AnswerOptions {
  std::uint32_t ttl_seconds = 0;     // TTL of every record, and the SOA minimum (negative caching)
  std::string domain = "grapevine.";  // the zone served; a trailing dot is optional
  std::size_t max_udp_bytes = 4096;  // the largest answer sent and request read (512..65535)
};

// Checks the domain (labels of 1..63 bytes, at most 253 bytes in all, no
// empty label) and the sizes. Answer() drops every query when this fails.
Status ValidateAnswerOptions(const AnswerOptions& options);

enum class Outcome {
  kAnswered,        // NOERROR with at least one answer record
  kNxDomain,        // NXDOMAIN
  kNoData,          // NOERROR, no answer record (the name exists, not the type)
  kNotImplemented,  // NOTIMP (opcode other than QUERY) or BADVERS (EDNS version > 0)
  kRefused,         // REFUSED (zone transfer over UDP)
  kTruncated,       // TC set: part of the answer did not fit the client's limit
  kDropped,         // malformed or not a query: no answer is sent
};

const char* OutcomeName(Outcome outcome);  // "answered", "nxdomain", ... (metric label values)

struct AnswerResult {
  Outcome outcome = Outcome::kDropped;
  std::string wire;    // the answer datagram; empty when dropped
  std::string reason;  // why it was dropped, refused or not implemented ("" otherwise)
};

AnswerResult Answer(std::string_view request, const Lookup& lookup, const AnswerOptions& options);

// The answer size limit for a request whose OPT record advertised
// `edns_udp_size` (nullopt: no OPT): 512 without EDNS, else the advertised
// size clamped to [512, options.max_udp_bytes].
std::size_t AnswerLimitBytes(std::optional<std::uint16_t> edns_udp_size, const AnswerOptions& options);

}  // namespace gv::daemon::dns
