#include "fuzz/wal_recovery_check.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <memory>
#include <utility>

#include "fs/mem_file_system.h"

namespace gv::fuzz {
namespace {

constexpr const char* kDataDir = "data";
constexpr const char* kWalDir = "data/wal";
constexpr std::uint8_t kSmallSegmentsBit = 1u << 5;
constexpr std::uint8_t kZeroFillBit = 1u << 6;
constexpr std::uint64_t kSmallSegmentBytes = 1024;
constexpr std::uint64_t kLargeSegmentBytes = 4096;
// The record the check appends after recovery.
constexpr std::string_view kAppendedPayload = "appended after recovery";

// Reads input bytes front to back; past the end it yields zeros.
class InputReader {
 public:
  explicit InputReader(std::string_view input) : input_(input) {}
  std::uint8_t Byte() { return pos_ < input_.size() ? static_cast<std::uint8_t>(input_[pos_++]) : 0; }
  std::string_view Take(std::size_t n) {
    const std::string_view out = input_.substr(std::min(pos_, input_.size()), n);
    pos_ += out.size();
    return out;
  }
  std::string_view Rest() { return Take(input_.size()); }

 private:
  std::string_view input_;
  std::size_t pos_ = 0;
};

wal::WalOptions FuzzOptions(const WalFuzzLayout& layout) {
  wal::WalOptions options;
  options.dir = kWalDir;
  options.durability = wal::Durability::kSync;
  options.segment_bytes = layout.segment_bytes;
  options.preallocation = layout.preallocation;
  options.prepare_segments_in_background = false;  // no threads: one deterministic order of operations
  options.max_record_bytes = kWalFuzzMaxRecordBytes;
  return options;
}

Status WriteDurably(fs::MemFileSystem& mfs, const std::string& path, std::string_view content) {
  auto file = mfs.Open(path, fs::OpenMode::kCreateNew);
  if (!file.ok()) return file.status();
  if (!content.empty()) GV_RETURN_IF_ERROR((*file)->WriteAt(0, content));
  GV_RETURN_IF_ERROR((*file)->Sync());
  return (*file)->Close();
}

using Records = std::vector<std::pair<wal::Lsn, std::string>>;

wal::ReplayFn Collect(Records& out) {
  return [&out](wal::Lsn lsn, std::string_view payload) {
    out.emplace_back(lsn, std::string(payload));
    return Status::Ok();
  };
}

// Wal recovery logs a warning per tail cut; a fuzzer produces them by the million.
void SilenceWalLogs() {
  static const bool silenced = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)silenced;
}

}  // namespace

WalFuzzLayout ParseWalFuzzInput(std::string_view input) {
  InputReader in(input);
  const std::uint8_t flags = in.Byte();
  WalFuzzLayout layout;
  layout.segment_bytes = (flags & kSmallSegmentsBit) ? kSmallSegmentBytes : kLargeSegmentBytes;
  layout.preallocation = (flags & kZeroFillBit) ? wal::Preallocation::kZeroFill : wal::Preallocation::kNone;
  const std::size_t count = std::min<std::size_t>(1 + (flags & 3u), kWalFuzzMaxFiles);
  layout.files.resize(count);
  wal::Lsn previous = 0;
  for (std::size_t i = 0; i < count; ++i) {
    layout.files[i].valid_header = (flags >> (2 + i)) & 1u;
    layout.files[i].first_lsn = previous + 1 + in.Byte();
    previous = layout.files[i].first_lsn;
  }
  std::vector<std::size_t> lengths;
  for (std::size_t i = 0; i + 1 < count; ++i) {
    const std::size_t low = in.Byte();
    lengths.push_back(low | (std::size_t{in.Byte()} << 8));
  }
  for (std::size_t i = 0; i + 1 < count; ++i) layout.files[i].bytes = std::string(in.Take(lengths[i]));
  layout.files.back().bytes = std::string(in.Rest());
  return layout;
}

std::string EncodeWalFuzzInput(const WalFuzzLayout& layout) {
  const std::size_t count = layout.files.size();
  if (count == 0 || count > kWalFuzzMaxFiles) return "";
  if (layout.segment_bytes != kSmallSegmentBytes && layout.segment_bytes != kLargeSegmentBytes) return "";
  if (layout.preallocation != wal::Preallocation::kNone && layout.preallocation != wal::Preallocation::kZeroFill) {
    return "";
  }
  std::uint8_t flags = static_cast<std::uint8_t>(count - 1);
  if (layout.segment_bytes == kSmallSegmentBytes) flags |= kSmallSegmentsBit;
  if (layout.preallocation == wal::Preallocation::kZeroFill) flags |= kZeroFillBit;
  std::string out(1, '\0');
  wal::Lsn previous = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const WalFuzzFile& file = layout.files[i];
    if (file.valid_header) flags |= static_cast<std::uint8_t>(1u << (2 + i));
    if (file.first_lsn <= previous || file.first_lsn - previous - 1 > 255) return "";
    out.push_back(static_cast<char>(file.first_lsn - previous - 1));
    previous = file.first_lsn;
  }
  out[0] = static_cast<char>(flags);
  for (std::size_t i = 0; i + 1 < count; ++i) {
    const std::size_t n = layout.files[i].bytes.size();
    if (n > 0xffff) return "";
    out.push_back(static_cast<char>(n & 0xff));
    out.push_back(static_cast<char>(n >> 8));
  }
  for (const WalFuzzFile& file : layout.files) out += file.bytes;
  return out;
}

WalFuzzLayout RandomValidWalLayout(Prng& prng, bool torn_tail) {
  WalFuzzLayout layout;
  layout.segment_bytes = prng.Chance(0.5) ? kSmallSegmentBytes : kLargeSegmentBytes;
  layout.preallocation = prng.Chance(0.5) ? wal::Preallocation::kZeroFill : wal::Preallocation::kNone;
  const std::size_t count = 1 + prng.Index(kWalFuzzMaxFiles);
  wal::Lsn next = 1 + prng.Uniform(4);
  for (std::size_t i = 0; i < count; ++i) {
    const bool last = i + 1 == count;
    WalFuzzFile file;
    file.first_lsn = next;
    file.valid_header = prng.Chance(0.75);
    if (!file.valid_header) file.bytes = wal::EncodeSegmentHeader(file.first_lsn);
    // Non-last segments need a record, so the next one's first LSN moves on.
    const std::size_t records = last ? prng.Index(6) : 1 + prng.Index(5);
    for (std::size_t r = 0; r < records; ++r) {
      std::string payload(prng.Index(65), '\0');
      for (char& c : payload) c = static_cast<char>(prng.Uniform(256));
      wal::AppendRecord(file.bytes, next++, payload);
    }
    if (last && torn_tail) {
      std::string frame;
      wal::AppendRecord(frame, next, "a record torn by a crash");
      // At least the CRC and length, so the torn part has a non-zero byte.
      file.bytes += frame.substr(0, 8 + prng.Index(frame.size() - 8));
    }
    // Zeros after the records, as preallocation leaves them (within the segment size).
    const std::size_t used = WalFuzzFileContent(file).size();
    if (prng.Chance(0.5) && used < layout.segment_bytes) file.bytes.append(prng.Index(layout.segment_bytes - used), '\0');
    layout.files.push_back(std::move(file));
  }
  return layout;
}

std::string WalFuzzFileContent(const WalFuzzFile& file) {
  return file.valid_header ? wal::EncodeSegmentHeader(file.first_lsn) + file.bytes : file.bytes;
}

std::string CheckWalRecovery(const std::uint8_t* data, std::size_t size, WalRecoveryOutcome* outcome) {
  SilenceWalLogs();
  WalRecoveryOutcome local;
  WalRecoveryOutcome& result = outcome ? *outcome : local;
  result = WalRecoveryOutcome{};

  const WalFuzzLayout layout = ParseWalFuzzInput(std::string_view(reinterpret_cast<const char*>(data), size));
  fs::MemFileSystem mfs;
  // What each segment holds, by first LSN, and where recovery must be reading it.
  struct Segment {
    std::string content;
    std::size_t cursor = wal::kSegmentHeaderBytes;
  };
  std::map<wal::Lsn, Segment> segments;
  {
    Status setup = mfs.CreateDir(kDataDir);
    if (setup.ok()) setup = mfs.SyncDir(".");
    if (setup.ok()) setup = mfs.CreateDir(kWalDir);
    if (setup.ok()) setup = mfs.SyncDir(kDataDir);
    for (const WalFuzzFile& file : layout.files) {
      Segment& segment = segments[file.first_lsn];
      segment.content = WalFuzzFileContent(file);
      if (setup.ok()) {
        setup = WriteDurably(mfs, fs::JoinPath(kWalDir, wal::SegmentFileName(file.first_lsn)), segment.content);
      }
    }
    if (setup.ok()) setup = mfs.SyncDir(kWalDir);
    if (!setup.ok()) return "setting up the in-memory directory failed: " + setup.ToString();
  }

  const wal::WalOptions options = FuzzOptions(layout);
  Records replayed;
  auto opened = wal::Wal::Open(mfs, options, Collect(replayed));
  if (!opened.ok()) {
    if (opened.status().message().empty()) return "Open refused the log without a message";
    return "";
  }
  result.opened = true;
  result.records = replayed.size();
  wal::Wal& log = **opened;
  result.tail_cut = log.recovery().tail_cut;

  // Each record must be the very frame recovery was positioned at.
  const wal::Lsn first_lsn = segments.begin()->first;
  for (std::size_t i = 0; i < replayed.size(); ++i) {
    const auto& [lsn, payload] = replayed[i];
    if (lsn != first_lsn + i) {
      return "replayed LSN " + std::to_string(lsn) + " at position " + std::to_string(i) + ", expected " +
             std::to_string(first_lsn + i);
    }
    if (payload.size() > kWalFuzzMaxRecordBytes) {
      return "replayed a payload of " + std::to_string(payload.size()) + " bytes, above max_record_bytes";
    }
    Segment& segment = std::prev(segments.upper_bound(lsn))->second;
    std::string frame;
    wal::AppendRecord(frame, lsn, payload);
    if (segment.content.compare(segment.cursor, frame.size(), frame) != 0) {
      return "replayed record LSN " + std::to_string(lsn) + " is not the frame at offset " +
             std::to_string(segment.cursor) + " of its segment (CRC or bytes differ)";
    }
    segment.cursor += frame.size();
  }
  const wal::RecoveryReport& report = log.recovery();
  const wal::Lsn expected_last = replayed.empty() ? 0 : replayed.back().first;
  if (report.records != replayed.size() || report.replayed != replayed.size() || report.last_lsn != expected_last ||
      report.segments != segments.size()) {
    return "recovery report (" + std::to_string(report.records) + " records, " + std::to_string(report.replayed) +
           " replayed, last LSN " + std::to_string(report.last_lsn) + ", " + std::to_string(report.segments) +
           " segments) disagrees with the replay (" + std::to_string(replayed.size()) + " records, last LSN " +
           std::to_string(expected_last) + ", " + std::to_string(segments.size()) + " segments)";
  }

  // The next LSN continues the last segment: after its records, or its first
  // LSN when it holds none.
  const wal::Lsn last_first_lsn = segments.rbegin()->first;
  const wal::Lsn records_before_last = static_cast<wal::Lsn>(
      std::count_if(replayed.begin(), replayed.end(), [&](const auto& r) { return r.first < last_first_lsn; }));
  const wal::Lsn next_lsn = last_first_lsn + (replayed.size() - records_before_last);
  auto appended = log.Append(kAppendedPayload);
  if (!appended.ok()) return "Append after recovery failed: " + appended.status().ToString();
  if (*appended != next_lsn) {
    return "Append after recovery got LSN " + std::to_string(*appended) + ", expected " + std::to_string(next_lsn);
  }
  if (Status closed = log.Close(); !closed.ok()) return "Close failed: " + closed.ToString();
  opened->reset();

  // Everything acknowledged in sync mode must survive losing the unsynced state.
  mfs.SimulateCrash(fs::CrashMode::kDropUnsynced);
  Records again;
  auto reopened = wal::Wal::Open(mfs, options, Collect(again));
  if (!reopened.ok()) return "reopening after the append failed: " + reopened.status().ToString();
  Records expected = replayed;
  expected.emplace_back(next_lsn, std::string(kAppendedPayload));
  if (again != expected) {
    return "reopening replayed " + std::to_string(again.size()) + " records, expected the " +
           std::to_string(replayed.size()) + " recovered plus the appended one";
  }
  if ((*reopened)->recovery().tail_cut) {
    return "reopening cut a tail again: " + (*reopened)->recovery().cut_reason + " in " +
           (*reopened)->recovery().cut_file;
  }
  if (Status closed = (*reopened)->Close(); !closed.ok()) return "Close after reopening failed: " + closed.ToString();
  return "";
}

}  // namespace gv::fuzz
