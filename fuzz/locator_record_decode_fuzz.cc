// libFuzzer entry point for the service locator's decoders (member records,
// service records, locator tables): built by `make fuzz`, and run as a plain
// function by tests/fuzz in `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/locator_record_decode_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckLocatorRecordDecode(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "locator_record_decode_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
