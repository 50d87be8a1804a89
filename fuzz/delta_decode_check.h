// The property the delta decoder fuzz target checks, shared by the libFuzzer
// entry point (delta_decode_fuzz.cc) and the regular test that runs it over the
// seed corpus and seeded mutations (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gv::fuzz {

// Decodes `data`. If the decoder accepts it, the delta must be valid, and
// re-encoding then decoding must give the same delta and the same bytes again.
// Returns "" when the property holds, otherwise what broke. A crash, a leak
// or undefined behaviour is caught by the sanitizers.
std::string CheckDeltaDecode(const std::uint8_t* data, std::size_t size);

}  // namespace gv::fuzz
