#include "common/huge_pages.h"

#include <doctest/doctest.h>

using namespace gv;

TEST_CASE("huge pages: the tunable is added to what GLIBC_TUNABLES already holds") {
  CHECK(TunablesWithMallocHugePages(nullptr) == "glibc.malloc.hugetlb=1");
  CHECK(TunablesWithMallocHugePages("") == "glibc.malloc.hugetlb=1");
  CHECK(TunablesWithMallocHugePages("glibc.malloc.arena_max=2") == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1");
  // A name that only starts like it is another tunable.
  CHECK(TunablesWithMallocHugePages("glibc.malloc.hugetlbx=1") == "glibc.malloc.hugetlbx=1:glibc.malloc.hugetlb=1");
}

TEST_CASE("huge pages: a value the user set stands, so nothing is re-executed") {
  CHECK_FALSE(TunablesWithMallocHugePages("glibc.malloc.hugetlb=0").has_value());
  CHECK_FALSE(TunablesWithMallocHugePages("glibc.malloc.hugetlb=1").has_value());
  CHECK_FALSE(TunablesWithMallocHugePages("glibc.malloc.arena_max=2:glibc.malloc.hugetlb=2").has_value());
}
