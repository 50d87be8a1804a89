#include "daemon/http/url.h"

#include <charconv>
#include <limits>

namespace gv::http {
namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool IsUnreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

}  // namespace

Result<std::string> PercentDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '\0') return Status::InvalidArgument("a NUL byte at offset " + std::to_string(i) + " is not allowed");
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) {
      return Status::InvalidArgument("bad percent-encoding: '%' at offset " + std::to_string(i) +
                                     " is not followed by two hex digits");
    }
    int hi = HexValue(in[i + 1]);
    int lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return Status::InvalidArgument("bad percent-encoding at offset " + std::to_string(i) +
                                     ": expected two hex digits after '%'");
    }
    char decoded = static_cast<char>(hi * 16 + lo);
    if (decoded == '\0') return Status::InvalidArgument("bad percent-encoding: %00 (NUL) is not allowed");
    out.push_back(decoded);
    i += 2;
  }
  return out;
}

std::string PercentEncode(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (IsUnreserved(c) || c == '/') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<QueryParams> ParseQuery(std::string_view query, std::size_t max_params) {
  QueryParams params;
  std::size_t count = 0;
  while (!query.empty()) {
    std::size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (part.empty()) continue;
    if (++count > max_params) {
      return Status::InvalidArgument("too many query parameters (at most " + std::to_string(max_params) + ")");
    }
    std::size_t eq = part.find('=');
    auto name = PercentDecode(part.substr(0, eq));
    if (!name.ok()) return name.status();
    std::string value;
    if (eq != std::string_view::npos) {
      auto v = PercentDecode(part.substr(eq + 1));
      if (!v.ok()) return v.status();
      value = std::move(*v);
    }
    params[std::move(*name)] = std::move(value);
  }
  return params;
}

Result<std::uint64_t> ParseUint(std::string_view text) {
  std::uint64_t value = 0;
  if (text.empty()) return Status::InvalidArgument("expected a non-negative integer, got an empty string");
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return Status::InvalidArgument("integer '" + std::string(text) + "' is too large");
  }
  if (ec != std::errc() || ptr != text.data() + text.size()) {
    return Status::InvalidArgument("expected a non-negative integer, got '" + std::string(text) + "'");
  }
  return value;
}

Result<Duration> ParseDuration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) {
    return Status::InvalidArgument("bad duration '" + std::string(text) + "': use a number with a unit, e.g. 30s or 250ms");
  }
  auto number = ParseUint(text.substr(0, digits));
  if (!number.ok()) return number.status();
  std::string_view unit = text.substr(digits);
  std::uint64_t micros_per_unit = 0;
  if (unit.empty() || unit == "s") {
    micros_per_unit = 1'000'000;
  } else if (unit == "ms") {
    micros_per_unit = 1'000;
  } else if (unit == "us") {
    micros_per_unit = 1;
  } else if (unit == "m") {
    micros_per_unit = 60'000'000;
  } else if (unit == "h") {
    micros_per_unit = 3'600'000'000ULL;
  } else {
    return Status::InvalidArgument("bad duration unit in '" + std::string(text) + "': use us, ms, s, m or h");
  }
  constexpr std::uint64_t kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (*number > kMax / micros_per_unit) {
    return Status::InvalidArgument("duration '" + std::string(text) + "' is too large");
  }
  return Duration(static_cast<std::int64_t>(*number * micros_per_unit));
}

}  // namespace gv::http
