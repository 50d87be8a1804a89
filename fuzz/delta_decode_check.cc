#include "fuzz/delta_decode_check.h"

#include <string_view>

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
  const std::string encoded = wire::EncodeDelta(*decoded);
  auto again = wire::DecodeDelta(encoded);
  if (!again.ok()) return "re-encoded delta does not decode: " + again.status().ToString();
  if (!(*again == *decoded)) return "decode(encode(delta)) differs from delta";
  if (wire::EncodeDelta(*again) != encoded) return "encoding is not deterministic";
  return "";
}

}  // namespace gv::fuzz
