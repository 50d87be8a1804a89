// The WAL's on-disk format (docs/wal_format.md is the full description).
//
// Segment file "<first LSN, 20 decimal digits>.wal":
//   [segment header, 32 bytes][record]...[record][zeros to the preallocated size]
// Segment header (little-endian):
//   0  magic "GVWALSEG" (8)   8  version u32 = 1   12 header size u32 = 32
//   16 first LSN u64          24 reserved u32 = 0  28 masked CRC32C of bytes [0, 28)
// Record (little-endian):
//   0  masked CRC32C u32 of bytes [4, 20 + length)
//   4  payload length u32     8  type u8 (1 = full)   9 reserved, 3 zero bytes
//   12 LSN u64                20 payload
// A record never spans segments. An all-zero record header marks the end of
// the written part of a segment (preallocated space is zero-filled), and since
// a stored CRC is masked, a zero header can never pass the CRC check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gv::wal {

using Lsn = std::uint64_t;  // log sequence number; the first record of a new log is 1

inline constexpr char kSegmentMagic[8] = {'G', 'V', 'W', 'A', 'L', 'S', 'E', 'G'};
inline constexpr std::uint32_t kFormatVersion = 1;
inline constexpr std::size_t kSegmentHeaderBytes = 32;
inline constexpr std::size_t kRecordHeaderBytes = 20;
inline constexpr std::uint8_t kRecordTypeFull = 1;
// Hard limit on one record's payload, whatever the options say: a decoder
// never trusts a length field beyond it.
inline constexpr std::uint32_t kMaxRecordPayloadBytes = 64u << 20;

inline constexpr std::size_t RecordFrameBytes(std::size_t payload_bytes) {
  return kRecordHeaderBytes + payload_bytes;
}

std::string EncodeSegmentHeader(Lsn first_lsn);
// Verifies magic, version, header size, reserved bits and CRC; returns the
// first LSN. `bytes` must hold at least kSegmentHeaderBytes.
Result<Lsn> DecodeSegmentHeader(std::string_view bytes);

// Appends one framed record to out.
void AppendRecord(std::string& out, Lsn lsn, std::string_view payload);

struct ParsedRecord {
  enum class Kind {
    kRecord,     // a valid record: lsn, payload, frame_bytes are set
    kZero,       // the bytes available are zeros (or none): the clean end of a segment
    kTruncated,  // a partial record at the end of the bytes available
    kBad,        // a damaged record: bad CRC, type, reserved bits or length
  };
  Kind kind = Kind::kBad;
  Lsn lsn = 0;
  std::string_view payload;
  std::size_t frame_bytes = 0;
  std::string reason;  // why it is not a record (for error messages)
};

// Parses the record at the start of `bytes` (the rest of the segment, or as
// much of it as is buffered: at least RecordFrameBytes(length) when available).
ParsedRecord ParseRecord(std::string_view bytes);
// The payload length a record header claims, if `bytes` holds a header.
std::optional<std::uint32_t> PeekRecordLength(std::string_view bytes);

// "00000000000000000001.wal"
std::string SegmentFileName(Lsn first_lsn);
// The first LSN encoded in a segment file name, or nullopt if `name` is not one.
std::optional<Lsn> ParseSegmentFileName(std::string_view name);

}  // namespace gv::wal
