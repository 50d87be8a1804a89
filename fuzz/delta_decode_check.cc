#include "fuzz/delta_decode_check.h"

#include <string_view>

#include "fuzz/codec_check.h"
#include "statestore/delta.h"
#include "wire/delta_codec.h"

namespace gv::fuzz {

std::string CheckDeltaDecode(const std::uint8_t* data, std::size_t size) {
  auto decoded = wire::DecodeDelta(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!decoded.ok()) {
    if (decoded.status().message().empty()) return "refused without a message";
    return "";
  }
  if (Status valid = statestore::ValidateDelta(*decoded); !valid.ok()) {
    return "decoder accepted an invalid delta: " + valid.ToString();
  }
  return CheckCanonicalRoundTrip(
      *decoded, [](std::string_view bytes) { return wire::DecodeDelta(bytes); },
      [](const statestore::Delta& d) { return wire::EncodeDelta(d); }, "delta");
}

}  // namespace gv::fuzz
