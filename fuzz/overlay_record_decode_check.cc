#include "fuzz/overlay_record_decode_check.h"

#include <cstring>
#include <string_view>
#include <vector>

#include "wire/overlay_record.h"

namespace gv::fuzz {

namespace {

bool HasZeroId(const std::vector<NodeId>& view) {
  for (NodeId id : view) {
    if (id.value == 0) return true;
  }
  return false;
}

}  // namespace

std::string CheckOverlayRecordDecode(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto decoded = wire::DecodeOverlayRecord(input);

  // The same bytes at an odd address (the decoder copies them to an aligned
  // buffer): the outcome must not depend on where the record sits.
  std::vector<char> shifted(size + 1);
  if (size > 0) std::memcpy(shifted.data() + 1, data, size);
  auto decoded_shifted = wire::DecodeOverlayRecord(std::string_view(shifted.data() + 1, size));
  if (decoded.ok() != decoded_shifted.ok()) return "the outcome depends on the input's alignment";

  if (!decoded.ok()) {
    if (decoded.status().message().empty()) return "refused without a message";
    if (decoded.status().message() != decoded_shifted.status().message()) {
      return "the refusal depends on the input's alignment";
    }
    return "";
  }
  if (!(*decoded == *decoded_shifted)) return "the decoded record depends on the input's alignment";
  const wire::OverlayRecord& record = *decoded;
  if (record.node.value == 0) return "accepted node id 0";
  if (HasZeroId(record.active) || HasZeroId(record.passive) || HasZeroId(record.eager) || HasZeroId(record.lazy)) {
    return "accepted node id 0 in a view";
  }
  for (const auto& [node, counter] : record.applied) {
    if (node.value == 0 || counter == 0) return "accepted a zero node or counter in the applied vector";
  }
  const std::string encoded = wire::EncodeOverlayRecord(record);
  auto again = wire::DecodeOverlayRecord(encoded);
  if (!again.ok()) return "re-encoded record does not decode: " + again.status().ToString();
  if (!(*again == record)) return "decode(encode(record)) differs from record";
  if (wire::EncodeOverlayRecord(*again) != encoded) return "encoding is not deterministic";
  return "";
}

}  // namespace gv::fuzz
