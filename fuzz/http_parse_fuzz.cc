// libFuzzer entry point for the HTTP and address parsers (daemon/http/url.h,
// daemon/net_address.h): built by `make fuzz`, and run as a plain function by
// tests/fuzz in `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/http_parse_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckHttpParse(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "http_parse_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
