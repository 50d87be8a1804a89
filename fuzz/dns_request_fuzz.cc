// libFuzzer entry point for the DNS request path (daemon/dns/dns_answer.h):
// built by `make fuzz`, and run as a plain function by tests/fuzz in
// `make test`.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz/dns_request_check.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string failure = gv::fuzz::CheckDnsRequest(data, size);
  if (!failure.empty()) {
    std::fprintf(stderr, "dns_request_fuzz: %s\n", failure.c_str());
    std::abort();
  }
  return 0;
}
