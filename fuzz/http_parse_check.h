// The properties the HTTP/address parsing fuzz target checks, shared by the
// libFuzzer entry point (http_parse_fuzz.cc) and the regular test that runs it
// over the seed corpus and seeded mutations (tests/fuzz).
//
// The whole input is the text given to every parser: gv::http::PercentDecode,
// PercentEncode, ParseQuery (with at most 1 + (first byte & 31) parameters),
// ParseDuration, ParseUint, and gv::net::ParseSocketAddress.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gv::fuzz {

struct HttpParseOutcome {
  bool decoded = false;   // PercentDecode accepted the text
  bool query = false;     // ParseQuery accepted it
  bool duration = false;  // ParseDuration accepted it
  bool integer = false;   // ParseUint accepted it
  bool address = false;   // ParseSocketAddress accepted it
};

// Property (besides no crash, leak or UB, which the sanitizers catch):
//  - PercentDecode(PercentEncode(x)) == x for any x without NUL, and fails
//    when x has one; the encoding uses only unreserved characters, '/', '%'
//    and upper-case hex digits;
//  - an accepted PercentDecode has no NUL but the input's raw ones (%00 is
//    refused), is no longer than its input, and re-encoding it decodes back
//    to it (or is refused, if it holds a NUL);
//  - an accepted ParseQuery has at most max_params names, and re-encoding it
//    ("name=value&..." with PercentEncode) parses to the same map, unless it
//    holds a raw NUL of the input, which no encoding can carry;
//  - an accepted ParseUint / ParseDuration reads only digits (and a unit),
//    and its value printed back parses to the same value;
//  - an accepted ParseSocketAddress has a port in 0..65535, its ToString()
//    parses again to the same host and port, and FormatSocketAddress of its
//    sockaddr parses to the same sockaddr;
//  - every refusal carries a message.
// Returns "" when the properties hold, otherwise what broke.
std::string CheckHttpParse(const std::uint8_t* data, std::size_t size, HttpParseOutcome* outcome = nullptr);

}  // namespace gv::fuzz
