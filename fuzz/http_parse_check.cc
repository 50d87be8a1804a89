#include "fuzz/http_parse_check.h"

#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include "daemon/http/url.h"
#include "daemon/net_address.h"

namespace gv::fuzz {
namespace {

bool IsEncodedChar(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~' || c == '/' || c == '%';
}

bool AllDigits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Family, port and address bytes: what a socket call would use.
bool SameSockaddr(const sockaddr_storage& a, const sockaddr_storage& b) {
  if (a.ss_family != b.ss_family) return false;
  if (a.ss_family == AF_INET6) {
    const auto& x = reinterpret_cast<const sockaddr_in6&>(a);
    const auto& y = reinterpret_cast<const sockaddr_in6&>(b);
    return x.sin6_port == y.sin6_port && std::memcmp(&x.sin6_addr, &y.sin6_addr, sizeof(x.sin6_addr)) == 0;
  }
  const auto& x = reinterpret_cast<const sockaddr_in&>(a);
  const auto& y = reinterpret_cast<const sockaddr_in&>(b);
  return x.sin_port == y.sin_port && x.sin_addr.s_addr == y.sin_addr.s_addr;
}

std::string CheckEncodeRoundTrip(std::string_view text) {
  const std::string encoded = http::PercentEncode(text);
  if (!std::all_of(encoded.begin(), encoded.end(), IsEncodedChar)) return "PercentEncode left a reserved byte";
  for (std::size_t i = encoded.find('%'); i != std::string::npos; i = encoded.find('%', i + 1)) {
    if (i + 2 >= encoded.size() || !std::isxdigit(static_cast<unsigned char>(encoded[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(encoded[i + 2])) || std::islower(static_cast<unsigned char>(encoded[i + 1])) ||
        std::islower(static_cast<unsigned char>(encoded[i + 2]))) {
      return "PercentEncode wrote a '%' not followed by two upper-case hex digits";
    }
  }
  auto decoded = http::PercentDecode(encoded);
  if (text.find('\0') != std::string_view::npos) {
    if (decoded.ok()) return "PercentDecode accepted an encoded NUL";
    return "";
  }
  if (!decoded.ok()) return "PercentDecode(PercentEncode(x)) failed: " + decoded.status().ToString();
  if (*decoded != text) return "PercentDecode(PercentEncode(x)) != x";
  return "";
}

std::string CheckPercentDecode(std::string_view text, HttpParseOutcome& outcome) {
  auto decoded = http::PercentDecode(text);
  if (!decoded.ok()) return decoded.status().message().empty() ? "PercentDecode refused without a message" : "";
  outcome.decoded = true;
  // Every NUL, raw or %00, is refused: a decoded string never holds one.
  if (decoded->find('\0') != std::string::npos) return "PercentDecode returned a NUL byte";
  if (decoded->size() > text.size()) return "PercentDecode grew its input";
  if (text.find('%') == std::string_view::npos && *decoded != text) return "PercentDecode changed text without '%'";
  return CheckEncodeRoundTrip(*decoded);
}

std::string CheckQuery(std::string_view text, std::size_t max_params, HttpParseOutcome& outcome) {
  auto params = http::ParseQuery(text, max_params);
  if (!params.ok()) return params.status().message().empty() ? "ParseQuery refused without a message" : "";
  outcome.query = true;
  if (params->size() > max_params) return "ParseQuery returned more than max_params names";
  std::string rebuilt;
  bool has_nul = false;
  for (const auto& [name, value] : *params) {
    has_nul = has_nul || name.find('\0') != std::string::npos || value.find('\0') != std::string::npos;
    if (!rebuilt.empty()) rebuilt += '&';
    rebuilt += http::PercentEncode(name) + "=" + http::PercentEncode(value);
  }
  if (has_nul) return "ParseQuery returned a NUL byte";
  auto again = http::ParseQuery(rebuilt, max_params);
  if (!again.ok()) return "re-encoded query does not parse: " + again.status().ToString();
  if (*again != *params) return "re-encoded query parses to a different map";
  return "";
}

std::string CheckNumbers(std::string_view text, HttpParseOutcome& outcome) {
  if (auto value = http::ParseUint(text); value.ok()) {
    outcome.integer = true;
    if (text.empty() || !AllDigits(text)) return "ParseUint accepted a non-digit";
    auto again = http::ParseUint(std::to_string(*value));
    if (!again.ok() || *again != *value) return "ParseUint(to_string(v)) != v";
  } else if (value.status().message().empty()) {
    return "ParseUint refused without a message";
  }
  if (auto duration = http::ParseDuration(text); duration.ok()) {
    outcome.duration = true;
    if (text.empty() || !std::isdigit(static_cast<unsigned char>(text[0]))) return "ParseDuration accepted a non-number";
    if (duration->count() < 0) return "ParseDuration returned a negative duration";
    auto again = http::ParseDuration(std::to_string(duration->count()) + "us");
    if (!again.ok() || *again != *duration) return "ParseDuration of the value in microseconds differs";
  } else if (duration.status().message().empty()) {
    return "ParseDuration refused without a message";
  }
  return "";
}

std::string CheckAddress(std::string_view text, HttpParseOutcome& outcome) {
  auto address = net::ParseSocketAddress(text);
  if (!address.ok()) return address.status().message().empty() ? "ParseSocketAddress refused without a message" : "";
  if (address->host.find('\0') != std::string::npos) return "ParseSocketAddress accepted a host with a NUL byte";
  outcome.address = true;
  if (address->port < 0 || address->port > 65535) return "port out of range";
  if (net::PortOf(address->storage) != address->port) return "sockaddr port differs from the parsed port";
  const std::string printed = address->ToString();
  auto again = net::ParseSocketAddress(printed);
  if (!again.ok()) return "ToString() '" + printed + "' does not parse: " + again.status().ToString();
  if (again->host != address->host || again->port != address->port) return "ToString() parses to another host or port";
  const std::string canonical = net::FormatSocketAddress(address->storage);
  auto from_canonical = net::ParseSocketAddress(canonical);
  if (!from_canonical.ok()) return "FormatSocketAddress '" + canonical + "' does not parse";
  if (!SameSockaddr(from_canonical->storage, address->storage)) return "FormatSocketAddress parses to another sockaddr";
  return "";
}

}  // namespace

std::string CheckHttpParse(const std::uint8_t* data, std::size_t size, HttpParseOutcome* outcome) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  HttpParseOutcome local;
  HttpParseOutcome& result = outcome ? *outcome : local;
  result = HttpParseOutcome{};
  const std::size_t max_params = 1 + (size > 0 ? (data[0] & 31u) : 0);
  for (std::string failure : {CheckEncodeRoundTrip(text), CheckPercentDecode(text, result),
                              CheckQuery(text, max_params, result), CheckNumbers(text, result),
                              CheckAddress(text, result)}) {
    if (!failure.empty()) return failure;
  }
  return "";
}

}  // namespace gv::fuzz
