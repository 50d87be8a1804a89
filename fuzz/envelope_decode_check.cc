#include "fuzz/envelope_decode_check.h"

#include <cstring>
#include <string_view>
#include <vector>

#include "wire/envelope.h"

namespace gv::fuzz {

std::string CheckEnvelopeDecode(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decoded = wire::DecodeEnvelope(input);

  // The same bytes at an odd address (the decoder copies them to an aligned
  // buffer): the outcome must not depend on where the frame sits.
  std::vector<char> shifted(size + 1);
  if (size > 0) std::memcpy(shifted.data() + 1, data, size);
  auto decoded_shifted = wire::DecodeEnvelope(std::string_view(shifted.data() + 1, size));
  if (decoded.ok() != decoded_shifted.ok()) return "the outcome depends on the input's alignment";

  if (!decoded.ok()) {
    if (decoded.status().message().empty()) return "refused without a message";
    if (decoded.status().message() != decoded_shifted.status().message()) {
      return "the refusal depends on the input's alignment";
    }
    return "";
  }
  if (!(*decoded == *decoded_shifted)) return "the decoded envelope depends on the input's alignment";
  const std::string encoded = wire::EncodeEnvelope(*decoded);
  auto again = wire::DecodeEnvelope(encoded);
  if (!again.ok()) return "re-encoded envelope does not decode: " + again.status().ToString();
  if (!(*again == *decoded)) return "decode(encode(envelope)) differs from envelope";
  if (wire::EncodeEnvelope(*again) != encoded) return "encoding is not deterministic";
  return "";
}

}  // namespace gv::fuzz
