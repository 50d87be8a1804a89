// Shared helpers for the WAL tests: a deterministic payload model, options
// for small segments, and a replay collector.
#pragma once

#include <doctest/doctest.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/prng.h"
#include "fs/mem_file_system.h"
#include "wal/wal.h"

namespace gv::wal::testing {

inline constexpr const char* kDataDir = "data";
inline constexpr const char* kWalDir = "data/wal";

// Recovery warnings (tail cuts) and failure errors are expected by the
// thousands in these tests.
inline void QuietLogs() { spdlog::set_level(spdlog::level::off); }

// Small segments so that a few dozen records rotate several times; no
// background thread so file-system operations happen in a fixed order.
inline WalOptions SmallOptions() {
  WalOptions o;
  o.dir = kWalDir;
  o.durability = Durability::kSync;
  o.segment_bytes = 1024;
  o.max_record_bytes = 200;
  o.preallocation = Preallocation::kZeroFill;
  o.prepare_segments_in_background = false;
  return o;
}

// A MemFileSystem whose data directory exists durably.
inline std::unique_ptr<fs::MemFileSystem> NewMemFs() {
  auto fs = std::make_unique<fs::MemFileSystem>();
  REQUIRE(fs->CreateDir(kDataDir).ok());
  REQUIRE(fs->SyncDir(".").ok());
  return fs;
}

// The payload of the record with a given LSN in a given test stream: its
// length varies (1..max_len bytes) and its bytes depend on seed and LSN.
inline std::string Payload(std::uint64_t seed, Lsn lsn, std::size_t max_len = 120) {
  Prng prng(seed * 1000003 + lsn);
  const std::size_t len = 1 + prng.Index(max_len);
  std::string out(len, '\0');
  for (auto& c : out) c = static_cast<char>(prng.NextU64() & 0xff);
  return out;
}

struct Replayed {
  std::vector<std::pair<Lsn, std::string>> records;
  ReplayFn Fn() {
    return [this](Lsn lsn, std::string_view payload) {
      records.emplace_back(lsn, std::string(payload));
      return Status::Ok();
    };
  }
};

inline Result<std::unique_ptr<Wal>> OpenInto(fs::FileSystem& fs, const WalOptions& options, Replayed& out) {
  out.records.clear();
  return Wal::Open(fs, options, out.Fn());
}

}  // namespace gv::wal::testing
