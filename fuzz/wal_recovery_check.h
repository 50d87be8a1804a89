// The property the WAL recovery fuzz target checks, shared by the libFuzzer
// entry point (wal_recovery_fuzz.cc) and the regular test that runs it over the
// seed corpus and seeded mutations (tests/fuzz).
//
// An input describes 1-3 segment files of one WAL directory in a
// gv::fs::MemFileSystem. Layout (missing bytes read as zero, so every input
// describes some directory):
//   byte 0        flags: bits 0-1 = file count - 1 (3 reads as 2, i.e. 3 files);
//                 bit 2+i = file i starts with a VALID segment header for its
//                 first LSN (built with wal/format.h, so mutations reach the
//                 record parser instead of dying on the header CRC);
//                 bit 5 = small segments (1024 bytes, else 4096);
//                 bit 6 = zero-filled preallocation (else segments grow as written)
//   bytes 1..n    per file, the gap to its first LSN: file 0 starts at 1 + gap,
//                 file i at first(i-1) + 1 + gap (names are distinct and sorted)
//   then          for files 0..n-2, a u16 little-endian byte count (clamped to
//                 what is left); the last file takes the rest of the input
// Each file is named by its first LSN ("<20 digits>.wal") and made durable
// (written, fsynced, directory fsynced) before the WAL opens it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/prng.h"
#include "wal/format.h"
#include "wal/wal.h"

namespace gv::fuzz {

inline constexpr std::size_t kWalFuzzMaxFiles = 3;
// Records of up to this many payload bytes; with 1024-byte segments a frame
// still fits in an empty segment (32 + 20 + 256 <= 1024).
inline constexpr std::uint32_t kWalFuzzMaxRecordBytes = 256;

struct WalFuzzFile {
  wal::Lsn first_lsn = 1;     // the LSN in the file name
  bool valid_header = false;  // a valid header for first_lsn precedes `bytes`
  std::string bytes;          // the rest of the file, taken from the input
  bool operator==(const WalFuzzFile&) const = default;
};

struct WalFuzzLayout {
  std::vector<WalFuzzFile> files;  // 1..kWalFuzzMaxFiles, first_lsn strictly increasing
  std::uint64_t segment_bytes = 4096;
  wal::Preallocation preallocation = wal::Preallocation::kNone;
  bool operator==(const WalFuzzLayout&) const = default;
};

// Decodes an input into a directory layout (total: every input gives one).
WalFuzzLayout ParseWalFuzzInput(std::string_view input);
// The input that ParseWalFuzzInput maps to `layout` (for building seeds).
// Needs 1..3 files, LSN gaps of 1..256 (first file: first_lsn in 1..256),
// segment_bytes 1024 or 4096, preallocation kNone or kZeroFill, and files
// but the last of at most 65535 bytes; returns "" if the layout breaks that.
std::string EncodeWalFuzzInput(const WalFuzzLayout& layout);

// A random valid log in the layout's terms (for seeds and mutation pools):
// 1-3 segments of 0-5 records (1-5 but in the last one) with random payloads
// of up to 64 bytes, consecutive LSNs, the header sometimes written raw
// instead of through valid_header, zero padding sometimes (preallocation);
// with `torn_tail`, the last segment ends in a partial frame.
WalFuzzLayout RandomValidWalLayout(Prng& prng, bool torn_tail);

// The file's full content as the WAL sees it (header prefix included).
std::string WalFuzzFileContent(const WalFuzzFile& file);

struct WalRecoveryOutcome {
  bool opened = false;        // Wal::Open accepted the directory
  std::uint64_t records = 0;  // records it replayed
  bool tail_cut = false;      // it cut a torn or garbage tail
};

// Writes the layout to a MemFileSystem and opens the WAL. Property: Open
// either fails with a non-empty message, or it succeeds and
//  - every replayed record is exactly the frame at the recovery cursor of its
//    segment (re-encoded with wal::AppendRecord, so its CRC is the one the
//    file claims and the payload is byte-for-byte what is on "disk");
//  - LSNs are consecutive from the first segment's first LSN, and the
//    recovery report agrees with what was replayed;
//  - appending one record gets the next LSN, and after Close and a simulated
//    crash that drops everything unsynced, reopening replays the same records
//    plus the new one, with no tail left to cut.
// Returns "" when the property holds, otherwise what broke.
std::string CheckWalRecovery(const std::uint8_t* data, std::size_t size, WalRecoveryOutcome* outcome = nullptr);

}  // namespace gv::fuzz
