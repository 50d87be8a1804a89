#include "wal/format.h"

#include <doctest/doctest.h>

#include "common/crc32c.h"

using namespace gv;
using namespace gv::wal;

TEST_CASE("segment header round-trips and rejects any single-bit change") {
  const std::string header = EncodeSegmentHeader(12345);
  REQUIRE(header.size() == kSegmentHeaderBytes);
  auto first = DecodeSegmentHeader(header);
  REQUIRE(first.ok());
  CHECK(*first == 12345);
  for (std::size_t bit = 0; bit < header.size() * 8; ++bit) {
    std::string bad = header;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    CAPTURE(bit);
    CHECK(DecodeSegmentHeader(bad).status().IsCorruption());
  }
  CHECK(DecodeSegmentHeader(std::string(kSegmentHeaderBytes, '\0')).status().IsCorruption());
  CHECK(DecodeSegmentHeader(header.substr(0, 31)).status().IsCorruption());
}

TEST_CASE("record frames round-trip; every single-bit flip and every truncation is detected") {
  std::string frames;
  AppendRecord(frames, 7, "hello");
  AppendRecord(frames, 8, "");
  AppendRecord(frames, 9, std::string(300, 'x'));
  REQUIRE(frames.size() == RecordFrameBytes(5) + RecordFrameBytes(0) + RecordFrameBytes(300));

  ParsedRecord r = ParseRecord(frames);
  REQUIRE(r.kind == ParsedRecord::Kind::kRecord);
  CHECK(r.lsn == 7);
  CHECK(r.payload == "hello");
  r = ParseRecord(std::string_view(frames).substr(RecordFrameBytes(5)));
  REQUIRE(r.kind == ParsedRecord::Kind::kRecord);
  CHECK(r.lsn == 8);
  CHECK(r.payload.empty());

  const std::string one = frames.substr(0, RecordFrameBytes(5));
  for (std::size_t bit = 0; bit < one.size() * 8; ++bit) {
    std::string bad = one;
    bad[bit / 8] = static_cast<char>(bad[bit / 8] ^ (1 << (bit % 8)));
    CAPTURE(bit);
    CHECK(ParseRecord(bad).kind != ParsedRecord::Kind::kRecord);
  }
  for (std::size_t cut = 1; cut < one.size(); ++cut) {
    CAPTURE(cut);
    CHECK(ParseRecord(std::string_view(one).substr(0, cut)).kind == ParsedRecord::Kind::kTruncated);
  }
  // Zeros (preallocated space) are the clean end, never a record: a zero
  // CRC field can never match, because the stored CRC is masked.
  CHECK(crc32c::Mask(crc32c::Value(std::string(kRecordHeaderBytes - 4, '\0'))) != 0);
  CHECK(ParseRecord(std::string(64, '\0')).kind == ParsedRecord::Kind::kZero);
  CHECK(ParseRecord(std::string(5, '\0')).kind == ParsedRecord::Kind::kZero);
  CHECK(ParseRecord("").kind == ParsedRecord::Kind::kZero);
  // A length beyond the hard limit is rejected without reading on.
  std::string huge = one;
  huge[7] = static_cast<char>(0x7f);
  CHECK(ParseRecord(huge).kind == ParsedRecord::Kind::kBad);
}

TEST_CASE("a frame with a valid CRC but an unknown type is rejected") {
  std::string frame;
  AppendRecord(frame, 1, "abc");
  frame[8] = 2;  // type
  const std::uint32_t crc = crc32c::Mask(crc32c::Value(frame.data() + 4, frame.size() - 4));
  for (int i = 0; i < 4; ++i) frame[static_cast<std::size_t>(i)] = static_cast<char>((crc >> (8 * i)) & 0xff);
  const ParsedRecord r = ParseRecord(frame);
  CHECK(r.kind == ParsedRecord::Kind::kBad);
  CHECK(r.reason.find("type") != std::string::npos);
}

TEST_CASE("segment file names") {
  CHECK(SegmentFileName(1) == "00000000000000000001.wal");
  CHECK(SegmentFileName(18446744073709551615ull) == "18446744073709551615.wal");
  CHECK(ParseSegmentFileName("00000000000000000042.wal") == std::optional<Lsn>(42));
  CHECK(ParseSegmentFileName(SegmentFileName(987654321)) == std::optional<Lsn>(987654321));
  CHECK_FALSE(ParseSegmentFileName("00000000000000000000.wal"));
  CHECK_FALSE(ParseSegmentFileName("0000000000000000042.wal"));
  CHECK_FALSE(ParseSegmentFileName("00000000000000000042.wal.tmp"));
  CHECK_FALSE(ParseSegmentFileName("0000000000000000004x.wal"));
  CHECK_FALSE(ParseSegmentFileName("99999999999999999999.wal"));  // overflows u64
}
