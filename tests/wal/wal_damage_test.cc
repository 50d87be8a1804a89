// Damage to the segment files: cut the last segment at every byte offset of
// its last batches, flip every bit there, zero 512-byte and 4 KiB sectors
// anywhere. Recovery must return exactly the longest valid prefix (computed
// here from an independent model of the layout), never a damaged record;
// appending after recovery and reopening must be consistent (no stale record
// resurrected); damage inside a sealed segment must be a hard Corruption
// naming the file and the offset of the first damaged record.
#include "tests/wal/wal_test_util.h"

using namespace gv;
using namespace gv::wal;
using namespace gv::wal::testing;

namespace {

constexpr std::uint64_t kSegmentBytes = 16384;
constexpr std::size_t kRecords = 600;
constexpr std::size_t kTailRecords = 8;  // "the last few batches" (batches are 1-4 records)

WalOptions DamageOptions() {
  WalOptions o = SmallOptions();
  o.segment_bytes = kSegmentBytes;
  return o;
}

struct Placed {
  Lsn lsn;
  Lsn segment;  // first LSN of the segment holding it
  std::uint64_t offset;
  std::uint64_t frame;
};

// A log written with random batch sizes, plus where each record must be
// according to the format (computed independently of the writer).
struct Fixture {
  std::uint64_t seed;
  std::unique_ptr<fs::MemFileSystem> base;
  std::vector<std::string> payloads;  // payloads[lsn - 1]
  std::vector<Placed> placed;
  std::vector<Lsn> segments;

  explicit Fixture(std::uint64_t s) : seed(s), base(NewMemFs()) {
    Prng prng(seed);
    for (Lsn lsn = 1; lsn <= kRecords; ++lsn) payloads.push_back(Payload(seed, lsn));
    Lsn segment = 1;
    std::uint64_t offset = kSegmentHeaderBytes;
    segments.push_back(1);
    for (Lsn lsn = 1; lsn <= kRecords; ++lsn) {
      const std::uint64_t frame = RecordFrameBytes(payloads[lsn - 1].size());
      if (offset + frame > kSegmentBytes) {
        segment = lsn;
        segments.push_back(lsn);
        offset = kSegmentHeaderBytes;
      }
      placed.push_back({lsn, segment, offset, frame});
      offset += frame;
    }
    Replayed ignored;
    auto wal = OpenInto(*base, DamageOptions(), ignored);
    REQUIRE(wal.ok());
    for (std::size_t next = 0; next < kRecords;) {
      const std::size_t n = std::min<std::size_t>(1 + prng.Index(4), kRecords - next);
      std::vector<std::string_view> batch(payloads.begin() + static_cast<std::ptrdiff_t>(next),
                                          payloads.begin() + static_cast<std::ptrdiff_t>(next + n));
      REQUIRE((*wal)->AppendBatch(batch).ok());
      next += n;
    }
    REQUIRE((*wal)->Close().ok());
    base->SimulateCrash();
    REQUIRE(segments.size() >= 3);
  }

  std::string Path(Lsn segment) const { return fs::JoinPath(kWalDir, SegmentFileName(segment)); }
  std::string Content(Lsn segment) const {
    auto c = fs::ReadFileToString(*base, Path(segment), 1 << 20);
    REQUIRE(c.ok());
    return *c;
  }
  const Placed& Last() const { return placed.back(); }
};

void Overwrite(fs::FileSystem& fs, const std::string& path, const std::string& content) {
  auto f = fs.Open(path, fs::OpenMode::kReadWrite);
  REQUIRE(f.ok());
  REQUIRE((*f)->Truncate(0).ok());
  REQUIRE((*f)->WriteAt(0, content).ok());
  REQUIRE((*f)->Sync().ok());
}

std::uint64_t FirstDifference(const std::string& a, const std::string& b) {
  const std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return i;
  }
  return a.size() == b.size() ? UINT64_MAX : n;
}

// Installs `damaged` as segment `segment` in a copy of the fixture and checks
// recovery against the model.
void Check(const Fixture& f, Lsn segment, const std::string& damaged, const std::string& what) {
  CAPTURE(f.seed);
  CAPTURE(what);
  const std::string original = f.Content(segment);
  const std::uint64_t changed = FirstDifference(original, damaged);
  const bool last = segment == f.segments.back();
  auto fs = f.base->Clone();
  Overwrite(*fs, f.Path(segment), damaged);
  Replayed replayed;
  auto wal = OpenInto(*fs, DamageOptions(), replayed);

  // Records lost: those of this segment from the first changed byte on.
  std::size_t keep = f.placed.size();
  for (const Placed& p : f.placed) {
    if (p.segment == segment && p.offset + p.frame > changed) {
      keep = p.lsn - 1;
      break;
    }
  }
  if (changed < kSegmentHeaderBytes) {
    REQUIRE_FALSE(wal.ok());
    CHECK(wal.status().IsCorruption());
    CHECK(wal.status().message().find(f.Path(segment) + " offset 0:") != std::string::npos);
    return;
  }
  if (!last && changed != UINT64_MAX) {
    // Any change to a sealed segment, even in its unused zero tail, is damage.
    std::uint64_t end = kSegmentHeaderBytes;
    for (const Placed& p : f.placed) {
      if (p.segment == segment) end = p.offset + p.frame;
    }
    const std::uint64_t at = keep < f.placed.size() && f.placed[keep].segment == segment ? f.placed[keep].offset : end;
    REQUIRE_FALSE(wal.ok());
    CHECK(wal.status().IsCorruption());
    const std::string where = f.Path(segment) + " offset " + std::to_string(at) + ":";
    CHECK_MESSAGE(wal.status().message().find(where) != std::string::npos, wal.status().message());
    return;
  }
  REQUIRE_MESSAGE(wal.ok(), wal.status().ToString());
  REQUIRE(replayed.records.size() == keep);
  for (std::size_t i = 0; i < keep; ++i) {
    REQUIRE(replayed.records[i].first == i + 1);
    REQUIRE(replayed.records[i].second == f.payloads[i]);
  }
  const RecoveryReport& report = (*wal)->recovery();
  if (report.tail_cut) {
    CHECK(report.cut_file == f.Path(segment));
    CHECK(report.cut_offset == (keep < f.placed.size() ? f.placed[keep].offset : f.Last().offset + f.Last().frame));
  }
  const std::uint64_t valid_end =
      keep < f.placed.size() && f.placed[keep].segment == segment ? f.placed[keep].offset : f.Last().offset + f.Last().frame;
  const bool garbage_after = damaged.size() > valid_end &&
                             damaged.find_first_not_of('\0', static_cast<std::size_t>(valid_end)) != std::string::npos;
  // Non-zero bytes after the valid prefix are cut (and reported) exactly when present.
  CHECK(report.tail_cut == garbage_after);

  // Append records of the same sizes as the lost ones, so that without the
  // zeroing of the cut region the next stale record would line up exactly
  // behind them with the right LSN and be resurrected.
  std::vector<std::string> fresh;
  for (std::size_t i = 0; i < 3; ++i) {
    const std::size_t size = keep + i < f.payloads.size() ? f.payloads[keep + i].size() : 10 + i;
    fresh.emplace_back(size, static_cast<char>('A' + i));
    auto lsn = (*wal)->Append(fresh.back());
    REQUIRE(lsn.ok());
    CHECK(*lsn == keep + i + 1);
  }
  REQUIRE((*wal)->Close().ok());
  wal->reset();
  fs->SimulateCrash();
  auto again = OpenInto(*fs, DamageOptions(), replayed);
  REQUIRE_MESSAGE(again.ok(), again.status().ToString());
  CHECK_FALSE((*again)->recovery().tail_cut);
  REQUIRE(replayed.records.size() == keep + fresh.size());
  for (std::size_t i = 0; i < fresh.size(); ++i) CHECK(replayed.records[keep + i].second == fresh[i]);
}

}  // namespace

TEST_CASE("damage: cut the last segment at every byte offset of its last batches") {
  QuietLogs();
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    Fixture f(seed);
    const Lsn last = f.segments.back();
    const std::string content = f.Content(last);
    const Placed& from = f.placed[f.placed.size() - kTailRecords];
    REQUIRE(from.segment == last);
    const std::uint64_t end = f.Last().offset + f.Last().frame + 32;
    for (std::uint64_t cut = from.offset; cut <= end; ++cut) {
      // The file ends at the cut (no preallocation, or truncated)...
      Check(f, last, content.substr(0, cut), "truncate at " + std::to_string(cut));
      // ...or everything from the cut on reads as zeros (preallocated, unwritten).
      std::string zeroed = content;
      std::fill(zeroed.begin() + static_cast<std::ptrdiff_t>(cut), zeroed.end(), '\0');
      Check(f, last, zeroed, "zero from " + std::to_string(cut));
    }
  }
}

TEST_CASE("damage: flip every bit of the last batches and of the zero tail after them") {
  QuietLogs();
  for (std::uint64_t seed = 11; seed <= 12; ++seed) {
    Fixture f(seed);
    const Lsn last = f.segments.back();
    const std::string content = f.Content(last);
    const Placed& from = f.placed[f.placed.size() - kTailRecords];
    const std::uint64_t end = f.Last().offset + f.Last().frame + 16;
    for (std::uint64_t pos = from.offset; pos < end; ++pos) {
      for (int bit = 0; bit < 8; ++bit) {
        std::string flipped = content;
        flipped[pos] = static_cast<char>(flipped[pos] ^ (1 << bit));
        Check(f, last, flipped, "flip byte " + std::to_string(pos) + " bit " + std::to_string(bit));
      }
    }
  }
}

TEST_CASE("damage: zero 512-byte and 4 KiB sectors of every segment") {
  QuietLogs();
  for (std::uint64_t seed = 21; seed <= 23; ++seed) {
    Fixture f(seed);
    for (Lsn segment : f.segments) {
      const std::string content = f.Content(segment);
      for (std::uint64_t sector : {512u, 4096u}) {
        for (std::uint64_t start = 0; start < content.size(); start += sector) {
          std::string zeroed = content;
          std::fill_n(zeroed.begin() + static_cast<std::ptrdiff_t>(start), std::min(sector, content.size() - start),
                      '\0');
          Check(f, segment, zeroed,
                "zero " + std::to_string(sector) + " bytes at " + std::to_string(start) + " of " + f.Path(segment));
        }
      }
    }
  }
}

TEST_CASE("damage: random bit flips in sealed segments are hard errors naming file and offset") {
  QuietLogs();
  Fixture f(31);
  Prng prng(31);
  for (int i = 0; i < 300; ++i) {
    const Lsn segment = f.segments[prng.Index(f.segments.size() - 1)];
    std::string content = f.Content(segment);
    const std::uint64_t pos = prng.Index(content.size());
    content[pos] = static_cast<char>(content[pos] ^ (1 << prng.Index(8)));
    Check(f, segment, content, "flip at " + std::to_string(pos) + " of " + f.Path(segment));
  }
}

TEST_CASE("damage: a missing middle segment or a misnamed segment is a hard error") {
  QuietLogs();
  Fixture f(41);
  {
    auto fs = f.base->Clone();
    REQUIRE(fs->Remove(f.Path(f.segments[1])).ok());
    Replayed replayed;
    auto wal = OpenInto(*fs, DamageOptions(), replayed);
    REQUIRE_FALSE(wal.ok());
    CHECK(wal.status().IsCorruption());
    CHECK(wal.status().message().find(f.Path(f.segments[0])) != std::string::npos);
    CHECK(wal.status().message().find("starts at LSN " + std::to_string(f.segments[2])) != std::string::npos);
  }
  {
    auto fs = f.base->Clone();
    REQUIRE(fs->Rename(f.Path(f.segments[1]), f.Path(f.segments[1] + 1)).ok());
    Replayed replayed;
    auto wal = OpenInto(*fs, DamageOptions(), replayed);
    REQUIRE_FALSE(wal.ok());
    CHECK(wal.status().IsCorruption());
    CHECK(wal.status().message().find(f.Path(f.segments[1] + 1) + " offset 0") != std::string::npos);
  }
}
