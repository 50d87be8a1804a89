#include "wal/format.h"

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"

namespace gv::wal {
namespace {

void PutU32(char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void PutU64(char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
std::uint32_t GetU32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
std::uint64_t GetU64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}
bool AllZero(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

constexpr std::size_t kSegmentCrcOffset = 28;
constexpr std::size_t kSegmentFileDigits = 20;

}  // namespace

std::string EncodeSegmentHeader(Lsn first_lsn) {
  std::string out(kSegmentHeaderBytes, '\0');
  std::memcpy(out.data(), kSegmentMagic, sizeof(kSegmentMagic));
  PutU32(out.data() + 8, kFormatVersion);
  PutU32(out.data() + 12, static_cast<std::uint32_t>(kSegmentHeaderBytes));
  PutU64(out.data() + 16, first_lsn);
  PutU32(out.data() + 24, 0);
  PutU32(out.data() + kSegmentCrcOffset, crc32c::Mask(crc32c::Value(out.data(), kSegmentCrcOffset)));
  return out;
}

Result<Lsn> DecodeSegmentHeader(std::string_view bytes) {
  if (bytes.size() < kSegmentHeaderBytes) {
    return Status::Corruption("segment header is " + std::to_string(bytes.size()) + " bytes, need " +
                              std::to_string(kSegmentHeaderBytes));
  }
  if (std::memcmp(bytes.data(), kSegmentMagic, sizeof(kSegmentMagic)) != 0) {
    return Status::Corruption("bad segment magic");
  }
  const std::uint32_t stored = crc32c::Unmask(GetU32(bytes.data() + kSegmentCrcOffset));
  if (stored != crc32c::Value(bytes.data(), kSegmentCrcOffset)) return Status::Corruption("bad segment header crc");
  const std::uint32_t version = GetU32(bytes.data() + 8);
  if (version != kFormatVersion) {
    return Status::Corruption("unsupported segment format version " + std::to_string(version));
  }
  if (GetU32(bytes.data() + 12) != kSegmentHeaderBytes || GetU32(bytes.data() + 24) != 0) {
    return Status::Corruption("bad segment header size or reserved field");
  }
  const Lsn first = GetU64(bytes.data() + 16);
  if (first == 0) return Status::Corruption("segment header has first LSN 0");
  return first;
}

void AppendRecord(std::string& out, Lsn lsn, std::string_view payload) {
  const std::size_t start = out.size();
  out.resize(start + kRecordHeaderBytes);
  char* h = out.data() + start;
  PutU32(h + 4, static_cast<std::uint32_t>(payload.size()));
  h[8] = static_cast<char>(kRecordTypeFull);
  h[9] = h[10] = h[11] = 0;
  PutU64(h + 12, lsn);
  out.append(payload);
  h = out.data() + start;  // append may have reallocated
  std::uint32_t crc = crc32c::Extend(0, h + 4, kRecordHeaderBytes - 4);
  crc = crc32c::Extend(crc, payload.data(), payload.size());
  PutU32(h, crc32c::Mask(crc));
}

std::optional<std::uint32_t> PeekRecordLength(std::string_view bytes) {
  if (bytes.size() < kRecordHeaderBytes) return std::nullopt;
  return GetU32(bytes.data() + 4);
}

ParsedRecord ParseRecord(std::string_view bytes) {
  ParsedRecord r;
  if (bytes.size() < kRecordHeaderBytes) {
    if (AllZero(bytes)) {
      r.kind = ParsedRecord::Kind::kZero;
    } else {
      r.kind = ParsedRecord::Kind::kTruncated;
      r.reason = "partial record header (" + std::to_string(bytes.size()) + " bytes)";
    }
    return r;
  }
  const std::string_view header = bytes.substr(0, kRecordHeaderBytes);
  if (AllZero(header)) {
    r.kind = ParsedRecord::Kind::kZero;
    return r;
  }
  const std::uint32_t length = GetU32(header.data() + 4);
  if (length > kMaxRecordPayloadBytes) {
    r.reason = "record length " + std::to_string(length) + " exceeds the limit " +
               std::to_string(kMaxRecordPayloadBytes);
    return r;
  }
  if (bytes.size() < RecordFrameBytes(length)) {
    r.kind = ParsedRecord::Kind::kTruncated;
    r.reason = "record of " + std::to_string(length) + " payload bytes cut short at " +
               std::to_string(bytes.size() - kRecordHeaderBytes);
    return r;
  }
  const std::uint32_t stored = crc32c::Unmask(GetU32(header.data()));
  const std::uint32_t actual = crc32c::Value(bytes.data() + 4, RecordFrameBytes(length) - 4);
  if (stored != actual) {
    r.reason = "record crc mismatch";
    return r;
  }
  if (static_cast<std::uint8_t>(header[8]) != kRecordTypeFull || header[9] != 0 || header[10] != 0 ||
      header[11] != 0) {
    r.reason = "unknown record type " + std::to_string(static_cast<unsigned char>(header[8]));
    return r;
  }
  r.kind = ParsedRecord::Kind::kRecord;
  r.lsn = GetU64(header.data() + 12);
  r.payload = bytes.substr(kRecordHeaderBytes, length);
  r.frame_bytes = RecordFrameBytes(length);
  return r;
}

std::string SegmentFileName(Lsn first_lsn) {
  std::string digits = std::to_string(first_lsn);
  return std::string(kSegmentFileDigits - std::min(kSegmentFileDigits, digits.size()), '0') + digits + ".wal";
}

std::optional<Lsn> ParseSegmentFileName(std::string_view name) {
  constexpr std::string_view kSuffix = ".wal";
  if (name.size() != kSegmentFileDigits + kSuffix.size() || name.substr(kSegmentFileDigits) != kSuffix) {
    return std::nullopt;
  }
  Lsn value = 0;
  for (std::size_t i = 0; i < kSegmentFileDigits; ++i) {
    const char c = name[i];
    if (c < '0' || c > '9') return std::nullopt;
    const Lsn digit = static_cast<Lsn>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;  // would overflow
    value = value * 10 + digit;
  }
  if (value == 0) return std::nullopt;
  return value;
}

}  // namespace gv::wal
