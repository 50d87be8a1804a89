// The regression half of a decoder's fuzz target, shared by its tests:
// seeded mutations of valid encodings through the target's property check.
#pragma once

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tests/fuzz/mutation_runner.h"

namespace gv::fuzztest {

// Runs `mutations` seeded mutations of `pool` through `check` (the target's
// property: "" when it holds), counting the inputs `decodes` accepts. Fails
// the calling test on any broken property, and unless both the accepting and
// the refusing path were exercised — otherwise the mutations test nothing.
template <typename Decodes, typename Check>
void CheckDecoderMutations(const std::vector<std::string>& pool, std::size_t mutations, Decodes&& decodes,
                           Check&& check) {
  std::size_t accepted = 0, refused = 0;
  MutationRun run;
  run.mutations = mutations;
  const MutationReport report = RunMutations(pool, run, [&](std::string_view input) {
    (decodes(input) ? accepted : refused)++;
    return check(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
  });
  for (const auto& failure : report.first_failures) {
    FAIL_CHECK("mutation seed " << failure.seed << " (index " << failure.index << "): " << failure.failure);
  }
  CHECK(report.failed == 0);
  MESSAGE("accepted " << accepted << ", refused " << refused << " of " << mutations);
  CHECK(accepted > mutations / 100);
  CHECK(refused > mutations / 2);
}

}  // namespace gv::fuzztest
