// libFuzzer entry point for the snapshot stream decoder (snapshot/codec.h):
// built by `make fuzz`, and run as a plain function by tests/fuzz in `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/snapshot_decode_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckSnapshotDecode(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "snapshot_decode_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
