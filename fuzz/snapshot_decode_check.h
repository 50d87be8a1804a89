// The property the snapshot decoder fuzz target checks, shared by the
// libFuzzer entry point (snapshot_decode_fuzz.cc) and the regular test that
// runs it over the seed corpus and seeded mutations (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace gv::fuzz {

// The input with every frame's CRC, and the trailer's checksum over the
// bodies, recomputed where the framing allows: mutations then reach the
// FlatBuffers and entry checks behind the checksums instead of stopping at
// them. Bytes after a broken length word are kept as they are.
std::string ResealSnapshotStream(std::string_view input);

// Decodes `data` as it is and resealed, each in one piece, in small pieces and
// from a misaligned copy: the outcome and any error must not depend on the
// split or the alignment, and a refusal must name a chunk. An accepted
// snapshot must install into a store, and encoding that store's view must
// decode back to the same entries, vector and counts, deterministically.
// Returns "" when the property holds, otherwise what broke. A crash, a leak or
// undefined behaviour is caught by the sanitizers.
std::string CheckSnapshotDecode(const std::uint8_t* data, std::size_t size);

}  // namespace gv::fuzz
