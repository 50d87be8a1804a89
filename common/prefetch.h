// Hints to fetch memory before it is used: for drivers that run many state
// machines whose state is far larger than the caches (the simulator), so
// that the next event's memory arrives while the current one runs. They
// change no state and no output.
//
// Why not bare __builtin_prefetch: GCC treats it as free of side effects, so
// it finds a function that does nothing but prefetch "const" and deletes
// every call to it. (The simulator's prefetching was dead code for that
// reason until this header.) The empty volatile asm is a side effect the
// optimiser must keep, and costs no instruction.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gv {

inline void PrefetchLine(const void* address) {
  __builtin_prefetch(address);
  asm volatile("");
}

// Every 64-byte line of [start, start + bytes).
inline void PrefetchBytes(const void* start, std::size_t bytes) {
  if (bytes == 0) return;
  const auto first = reinterpret_cast<std::uintptr_t>(start) & ~std::uintptr_t{63};
  const auto end = reinterpret_cast<std::uintptr_t>(start) + bytes;
  for (std::uintptr_t line = first; line < end; line += 64) __builtin_prefetch(reinterpret_cast<const void*>(line));
  asm volatile("");
}

// The same for memory about to be written: the lines arrive owned, so the
// stores that follow do not each wait for a read-for-ownership.
inline void PrefetchBytesForWrite(void* start, std::size_t bytes) {
  if (bytes == 0) return;
  const auto first = reinterpret_cast<std::uintptr_t>(start) & ~std::uintptr_t{63};
  const auto end = reinterpret_cast<std::uintptr_t>(start) + bytes;
  for (std::uintptr_t line = first; line < end; line += 64) __builtin_prefetch(reinterpret_cast<void*>(line), 1);
  asm volatile("");
}

}  // namespace gv
