// The property the known-peers file decoder fuzz target checks, shared by the
// libFuzzer entry point (known_peers_decode_fuzz.cc) and the regular test that
// runs it over the seed corpus and seeded mutations (tests/fuzz).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace gv::fuzz {

// Decodes `data` as the text of DATA/peers (daemon/known_peers.h). A refusal
// must be a Corruption that says why. An accepted text must obey the
// decoder's rules (at most kMaxKnownPeers addresses, each IPv4 or IPv6 with a
// port in 1..65535, no address twice), and since the format is canonical,
// EncodeKnownPeers of the result must give back the input byte for byte and
// decode to the same addresses. Returns "" when the property holds, otherwise
// what broke. A crash, a leak or undefined behaviour is caught by the
// sanitizers.
std::string CheckKnownPeersDecode(const std::uint8_t* data, std::size_t size);

}  // namespace gv::fuzz
