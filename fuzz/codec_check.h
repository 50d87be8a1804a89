// Properties every codec fuzz target checks, shared by the *_check.cc files:
// the outcome of a decode must not depend on where the bytes sit, and an
// accepted value must round-trip to canonical, deterministic bytes. Each
// returns "" when the property holds, otherwise what broke.
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gv::fuzz {

// Decodes `input` again from a copy one byte off 8-byte alignment (decoders
// copy misaligned input to an aligned buffer) and compares with `decoded`.
// A refusal must also say why.
template <typename T, typename Decode>
std::string CheckAlignmentIndependent(std::string_view input, const Result<T>& decoded, Decode&& decode,
                                      std::string_view what) {
  std::vector<char> shifted(input.size() + 1);
  if (!input.empty()) std::memcpy(shifted.data() + 1, input.data(), input.size());
  const Result<T> decoded_shifted = decode(std::string_view(shifted.data() + 1, input.size()));
  if (decoded.ok() != decoded_shifted.ok()) return "the outcome depends on the input's alignment";
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) return "refused without a message";
    if (decoded.status().message() != decoded_shifted.status().message()) {
      return "the refusal depends on the input's alignment";
    }
    return "";
  }
  if (!(*decoded == *decoded_shifted)) return "the decoded " + std::string(what) + " depends on the input's alignment";
  return "";
}

// encode(value) decodes back to value, and encodes to the same bytes again.
template <typename T, typename Decode, typename Encode>
std::string CheckCanonicalRoundTrip(const T& value, Decode&& decode, Encode&& encode, std::string_view what) {
  const std::string encoded = encode(value);
  const Result<T> again = decode(std::string_view(encoded));
  if (!again.ok()) return "re-encoded " + std::string(what) + " does not decode: " + again.status().ToString();
  if (!(*again == value)) return "decode(encode(" + std::string(what) + ")) differs from the " + std::string(what);
  if (encode(*again) != encoded) return "encoding is not deterministic";
  return "";
}

}  // namespace gv::fuzz
