// Transparent huge pages for the heap of a long-running, memory-heavy
// process: `grapevine sim` uses it. (The agent does not: with three agents
// on one host, snapshot catch-up got 2.5x slower with huge pages, although
// the snapshot benchmark, one process, got faster: docs/benchmarks.md.)
//
// Why: those processes are bound by cache misses scattered over hundreds of
// MiB of small allocations (a store of 1M keys is ~480 MiB in ~5 million
// blocks). On 4 KiB pages nearly every such miss also misses the TLB, and
// in a virtual machine a TLB miss walks two page tables (nested paging).
// With 2 MiB pages the TLB covers the whole heap. Measured on this project's
// 2-core VM: docs/simulation.md and docs/benchmarks.md, 2026-12-06.
//
// How: glibc's malloc advises the kernel to back its heap with huge pages
// (madvise(MADV_HUGEPAGE), which takes effect where the system's THP mode is
// "madvise", Debian's default, or "always") only when the tunable
// glibc.malloc.hugetlb=1 is set, and it reads tunables once, when the
// program starts. So the process executes its own binary again, once, with
// the tunable added to GLIBC_TUNABLES; the pid, the process name, the
// arguments, open descriptors and the parent-death signal stay as they were.
// Not for secure-execution programs (setuid, file capabilities: glibc ignores
// the tunable there) nor when started through the dynamic loader by hand.
//
// Opting out: set glibc.malloc.hugetlb=0 in GLIBC_TUNABLES (any value the
// user set is kept). Sanitizer builds have their own allocator and ignore it.
#pragma once

#include <optional>
#include <string>

namespace gv {

// The GLIBC_TUNABLES value that adds glibc.malloc.hugetlb=1 to `current`
// (the variable's value, or null if unset); nullopt if `current` already
// sets glibc.malloc.hugetlb (to anything: the user's choice stands).
std::optional<std::string> TunablesWithMallocHugePages(const char* current);

// If the environment does not set glibc.malloc.hugetlb yet, sets it and
// executes this program's binary with `argv` (null-terminated, as main's).
// Returns only if nothing was to be done (already set, already re-executed
// once, secure execution) or the exec failed (the process then goes on with
// 4 KiB pages; the environment is restored).
void ReexecWithMallocHugePages(char** argv);

// What this process's heap runs with, for logs and /v1/status: "on" (the
// tunable is 1 and the kernel's THP mode is "madvise" or "always"),
// "unavailable" (the tunable is 1 but THP is "never" or unknown), "off"
// (absent or 0), "glibc.malloc.hugetlb=N" for another value, or
// "sanitizer" in sanitizer builds (their allocator ignores the tunable).
std::string MallocHugePagesState();

}  // namespace gv
