#include "fuzz/overlay_record_decode_check.h"

#include <string_view>
#include <vector>

#include "fuzz/codec_check.h"
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
  auto decode = [](std::string_view bytes) { return wire::DecodeOverlayRecord(bytes); };
  const auto decoded = decode(input);
  if (std::string failure = CheckAlignmentIndependent(input, decoded, decode, "record"); !failure.empty()) {
    return failure;
  }
  if (!decoded.ok()) return "";
  const wire::OverlayRecord& record = *decoded;
  if (record.node.value == 0) return "accepted node id 0";
  if (HasZeroId(record.active) || HasZeroId(record.passive) || HasZeroId(record.eager) || HasZeroId(record.lazy)) {
    return "accepted node id 0 in a view";
  }
  for (const auto& [node, counter] : record.applied) {
    if (node.value == 0 || counter == 0) return "accepted a zero node or counter in the applied vector";
  }
  return CheckCanonicalRoundTrip(record, decode,
                                 [](const wire::OverlayRecord& r) { return wire::EncodeOverlayRecord(r); }, "record");
}

}  // namespace gv::fuzz
