// The property the overlay record decoder fuzz target checks, shared by the
// libFuzzer entry point (overlay_record_decode_fuzz.cc) and the regular test
// that runs it over the seed corpus and seeded mutations (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gv::fuzz {

// Decodes `data` as an overlay record (wire/overlay_record.h), at its own
// address and again from a copy one byte off 8-byte alignment: both must give
// the same outcome. A refusal must say why. An accepted record must obey the
// decoder's rules (non-zero ids), re-encode to bytes that decode to the same
// record, and encode to those same bytes again (deterministic). Returns ""
// when the property holds, otherwise what broke. A crash, a leak or undefined
// behaviour is caught by the sanitizers.
std::string CheckOverlayRecordDecode(const std::uint8_t* data, std::size_t size);

}  // namespace gv::fuzz
