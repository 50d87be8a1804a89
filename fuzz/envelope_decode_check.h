// The property the peer envelope decoder fuzz target checks, shared by the
// libFuzzer entry point (envelope_decode_fuzz.cc) and the regular test that
// runs it over the seed corpus and seeded mutations (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gv::fuzz {

// Decodes `data` as a peer envelope (wire/envelope.h), at its own address and
// again from a copy one byte off 8-byte alignment: both must give the same
// outcome. A refusal must say why. An accepted envelope must re-encode to
// bytes that decode to the same envelope, and encode to those same bytes
// again (canonical, deterministic). Returns "" when the property holds,
// otherwise what broke. A crash, a leak or undefined behaviour is caught by
// the sanitizers.
std::string CheckEnvelopeDecode(const std::uint8_t* data, std::size_t size);

}  // namespace gv::fuzz
