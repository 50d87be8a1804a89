// Pure helpers for the HTTP API: percent-decoding, query strings, durations.
// Every function validates its whole input and reports a Status that says
// what is wrong; none of them allocates without a bound set by its input.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time.h"

namespace gv::http {

// Decodes %XX escapes. '+' is kept as is (it means space only in form bodies,
// not in paths). Rejects a truncated or non-hex escape and any NUL byte, raw
// or decoded, so a decoded string always re-encodes to an equivalent input.
Result<std::string> PercentDecode(std::string_view in);

// Escapes everything but unreserved characters and '/' (for building URLs).
std::string PercentEncode(std::string_view in);

// "a=1&b&c=x%20y" -> {a:"1", b:"", c:"x y"}. A repeated name keeps the last
// value. At most max_params parameters.
using QueryParams = std::map<std::string, std::string, std::less<>>;
Result<QueryParams> ParseQuery(std::string_view query, std::size_t max_params = 32);

// "30s", "250ms", "2m", "1h", "1500us", or a bare number of seconds ("10").
// Negative, overflowing or unit-less garbage values are errors.
Result<Duration> ParseDuration(std::string_view text);

// A non-negative decimal integer that fits in uint64 (no sign, no spaces).
Result<std::uint64_t> ParseUint(std::string_view text);

}  // namespace gv::http
