// libFuzzer entry point for the peer-frame decoder (daemon/transport/frame.h):
// built by `make fuzz`, and run as a plain function by tests/fuzz in `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/frame_decode_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckFrameDecode(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "frame_decode_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
