#include "fuzz/envelope_decode_check.h"

#include <string_view>

#include "fuzz/codec_check.h"
#include "wire/envelope.h"

namespace gv::fuzz {

std::string CheckEnvelopeDecode(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decode = [](std::string_view bytes) { return wire::DecodeEnvelope(bytes); };
  const auto decoded = decode(input);
  if (std::string failure = CheckAlignmentIndependent(input, decoded, decode, "envelope"); !failure.empty()) {
    return failure;
  }
  if (!decoded.ok()) return "";
  return CheckCanonicalRoundTrip(*decoded, decode, [](const wire::Envelope& e) { return wire::EncodeEnvelope(e); },
                                 "envelope");
}

}  // namespace gv::fuzz
