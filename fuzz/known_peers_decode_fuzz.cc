// libFuzzer entry point for the known-peers file decoder (daemon/known_peers.h):
// built by `make fuzz`, and run as a plain function by tests/fuzz in `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/known_peers_decode_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckKnownPeersDecode(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "known_peers_decode_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
