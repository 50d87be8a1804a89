// libFuzzer entry point for WAL recovery (wal/wal.h over an in-memory
// directory): built by `make fuzz`, and run as a plain function by tests/fuzz
// in `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/wal_recovery_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckWalRecovery(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "wal_recovery_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
