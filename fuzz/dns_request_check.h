// The properties the DNS request fuzz target checks, shared by the libFuzzer
// entry point (dns_request_fuzz.cc) and the regular test that runs it over the
// seed corpus and seeded mutations (tests/fuzz).
//
// The whole input is one datagram given to gv::daemon::dns::Answer, with a
// fixed lookup (a few services, one with 400 instances, nodes of both address
// families, KV values from 5 bytes to 70 KB) and options chosen by the low
// byte of the request id (max_udp_bytes 512, 1232, 4096 or 65535; TTL 0 or 60).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/dns/dns_answer.h"

namespace gv::fuzz {

struct DnsRequestOutcome {
  daemon::dns::Outcome outcome = daemon::dns::Outcome::kDropped;
  std::size_t answer_bytes = 0;
  std::size_t answer_records = 0;
};

// Property (besides no crash, leak or UB, which the sanitizers catch):
//  - dropped <=> no answer bytes; a drop, NOTIMP or REFUSED carries a reason;
//  - an answer is never longer than the client's limit: 512 bytes without an
//    OPT record, else its size clamped to [512, max_udp_bytes] (the request's
//    OPT read independently with ldns_wire2pkt when ldns can parse it, else
//    the server's maximum);
//  - an answer parses back with ldns, has QR set, and echoes the request's
//    id, opcode and RD bit (read from the raw header) and its question (name
//    byte for byte, type and class, as ldns reads them from offset 12);
//  - it carries an OPT record exactly when the request had one;
//  - TC is set exactly when the outcome is kTruncated; the rcode matches the
//    outcome (NXDOMAIN, NOERROR with or without answers, REFUSED, NOTIMP or
//    BADVERS); every answer record is owned by the question's name.
// Returns "" when the properties hold, otherwise what broke.
std::string CheckDnsRequest(const std::uint8_t* data, std::size_t size, DnsRequestOutcome* outcome = nullptr);

}  // namespace gv::fuzz
