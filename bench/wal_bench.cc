// wal_bench: the WAL's throughput and replay time beside this machine's raw
// disk figures, measured in the same run (`make bench-wal`).
//
//   wal_bench --dir DIR [--repeat N] [--seconds S] [--preallocation zero|fallocate|none]
//
// Every figure is the median of N repeats (the machine is shared and noisy).
// Raw figures use POSIX directly; WAL figures go through gv::wal::Wal on the
// PosixFileSystem with default options (64 MiB segments).
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "fs/posix_file_system.h"
#include "wal/wal.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  std::string dir;
  int repeat = 5;
  double seconds = 1.0;
  gv::wal::Preallocation preallocation = gv::wal::Preallocation::kZeroFill;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "wal_bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const gv::Status& s, const char* what) {
  if (!s.ok()) Die(std::string(what) + ": " + s.ToString());
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double MedianOf(int repeat, const std::function<double()>& run) {
  std::vector<double> results;
  for (int i = 0; i < repeat; ++i) results.push_back(run());
  return Median(results);
}

std::string FreshDir(const Config& c, const std::string& name) {
  const std::string path = c.dir + "/" + name;
  std::filesystem::remove_all(path);
  std::filesystem::create_directories(path);
  return path;
}

void PwriteAll(int fd, const char* p, std::size_t n, off_t offset) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, n, offset);
    if (w < 0) Die(std::string("pwrite: ") + std::strerror(errno));
    p += w;
    n -= static_cast<std::size_t>(w);
    offset += w;
  }
}

// Raw: 4 KiB pwrites with O_DSYNC into a file whose blocks are already
// written (so no allocation or size change per write).
double RawDsync4k(const Config& c) {
  const std::string dir = FreshDir(c, "raw-dsync");
  const std::string path = dir + "/file";
  constexpr std::size_t kFileBytes = 64u << 20;
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path);
  const std::string chunk(1u << 20, '\0');
  for (std::size_t off = 0; off < kFileBytes; off += chunk.size()) {
    PwriteAll(fd, chunk.data(), chunk.size(), static_cast<off_t>(off));
  }
  if (::fsync(fd) != 0) Die("fsync");
  ::close(fd);
  fd = ::open(path.c_str(), O_WRONLY | O_DSYNC | O_CLOEXEC);
  if (fd < 0) Die("open O_DSYNC " + path);
  const std::string block(4096, 'x');
  std::uint64_t writes = 0;
  const auto start = Clock::now();
  while (SecondsSince(start) < c.seconds) {
    PwriteAll(fd, block.data(), block.size(), static_cast<off_t>((writes * 4096) % kFileBytes));
    ++writes;
  }
  const double rate = static_cast<double>(writes) / SecondsSince(start);
  ::close(fd);
  std::filesystem::remove_all(dir);
  return rate;
}

// Raw: buffered sequential writes of `chunk` bytes to a new file, each
// followed by fdatasync. MB/s (1 MB = 1e6 bytes).
double RawWriteFdatasync(const Config& c, std::size_t chunk) {
  const std::string dir = FreshDir(c, "raw-fdatasync");
  const std::string path = dir + "/file";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path);
  const std::string data(chunk, 'y');
  std::uint64_t bytes = 0;
  const auto start = Clock::now();
  while (SecondsSince(start) < c.seconds) {
    PwriteAll(fd, data.data(), data.size(), static_cast<off_t>(bytes));
    if (::fdatasync(fd) != 0) Die("fdatasync");
    bytes += chunk;
  }
  const double mbps = static_cast<double>(bytes) / 1e6 / SecondsSince(start);
  ::close(fd);
  std::filesystem::remove_all(dir);
  return mbps;
}

std::unique_ptr<gv::wal::Wal> OpenWal(const Config& c, gv::fs::FileSystem& fs, const std::string& dir,
                                      gv::wal::Durability durability) {
  gv::wal::WalOptions o;
  o.dir = dir + "/wal";
  o.durability = durability;
  o.preallocation = c.preallocation;
  auto wal = gv::wal::Wal::Open(fs, o, [](gv::wal::Lsn, std::string_view) { return gv::Status::Ok(); });
  if (!wal.ok()) Die("open wal: " + wal.status().ToString());
  // Start measuring once the background preparation of the next segment,
  // which happens once per segment in steady state, has finished.
  const auto deadline = Clock::now() + std::chrono::seconds(30);
  while (c.preallocation != gv::wal::Preallocation::kNone && !(*wal)->next_segment_prepared() &&
         Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::move(*wal);
}

struct Appends {
  double per_second = 0;
  double syncs_per_append = 0;
};

// Durable (sync mode) appends of `payload_bytes` from `threads` writers.
Appends WalAppends(const Config& c, int threads, std::size_t payload_bytes) {
  gv::fs::PosixFileSystem fs;
  const std::string dir = FreshDir(c, "wal-appends");
  auto wal = OpenWal(c, fs, dir, gv::wal::Durability::kSync);
  const std::string payload(payload_bytes, 'w');
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> done{0};
  std::vector<std::thread> workers;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        Check(wal->Append(payload).status().ok() ? gv::Status::Ok() : wal->health(), "append");
        done.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(c.seconds));
  stop = true;
  for (auto& w : workers) w.join();
  Appends out;
  out.per_second = static_cast<double>(done.load()) / SecondsSince(start);
  const gv::wal::WalStats stats = wal->stats();
  out.syncs_per_append = static_cast<double>(stats.syncs) / static_cast<double>(std::max<std::uint64_t>(1, stats.appends));
  Check(wal->Close(), "close");
  wal.reset();
  std::filesystem::remove_all(dir);
  return out;
}

// Durable batches of `batch_bytes` made of 4 KiB records, one writer. MB/s of payload.
double WalBatches(const Config& c, std::size_t batch_bytes) {
  gv::fs::PosixFileSystem fs;
  const std::string dir = FreshDir(c, "wal-batches");
  auto wal = OpenWal(c, fs, dir, gv::wal::Durability::kSync);
  const std::string record(4096, 'b');
  const std::vector<std::string_view> batch(batch_bytes / record.size(), record);
  std::uint64_t bytes = 0;
  const auto start = Clock::now();
  while (SecondsSince(start) < c.seconds) {
    auto lsn = wal->AppendBatch(batch);
    if (!lsn.ok()) Die("append batch: " + lsn.status().ToString());
    bytes += batch_bytes;
  }
  const double mbps = static_cast<double>(bytes) / 1e6 / SecondsSince(start);
  Check(wal->Close(), "close");
  wal.reset();
  std::filesystem::remove_all(dir);
  return mbps;
}

// Writes `records` records of `value_bytes` once, then times Open (recovery
// plus replay into a callback that touches every payload). Seconds.
double WalReplay(const Config& c, std::size_t records, std::size_t value_bytes) {
  gv::fs::PosixFileSystem fs;
  const std::string dir = c.dir + "/wal-replay";
  if (!std::filesystem::exists(dir + "/wal")) {
    FreshDir(c, "wal-replay");
    auto wal = OpenWal(c, fs, dir, gv::wal::Durability::kNone);
    const std::string value(value_bytes, 'r');
    const std::vector<std::string_view> batch(1000, value);
    for (std::size_t i = 0; i < records; i += batch.size()) {
      auto lsn = wal->AppendBatch(batch);
      if (!lsn.ok()) Die("append: " + lsn.status().ToString());
    }
    Check(wal->Close(), "close");
  }
  gv::wal::WalOptions o;
  o.dir = dir + "/wal";
  o.prepare_segments_in_background = false;
  std::uint64_t seen = 0, bytes = 0;
  const auto start = Clock::now();
  auto wal = gv::wal::Wal::Open(fs, o, [&](gv::wal::Lsn, std::string_view payload) {
    ++seen;
    bytes += payload.size();
    return gv::Status::Ok();
  });
  const double seconds = SecondsSince(start);
  if (!wal.ok()) Die("replay: " + wal.status().ToString());
  if (seen != records || bytes != records * value_bytes) Die("replay saw the wrong records");
  Check((*wal)->Close(), "close");
  return seconds;
}

const char* Verdict(bool ok) { return ok ? "met" : "MISSED"; }

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + arg);
      return argv[++i];
    };
    if (arg == "--dir") {
      c.dir = value();
    } else if (arg == "--repeat") {
      c.repeat = std::max(1, std::atoi(value().c_str()));
    } else if (arg == "--seconds") {
      c.seconds = std::max(0.05, std::atof(value().c_str()));
    } else if (arg == "--preallocation") {
      const std::string v = value();
      if (v == "zero") {
        c.preallocation = gv::wal::Preallocation::kZeroFill;
      } else if (v == "fallocate") {
        c.preallocation = gv::wal::Preallocation::kFallocate;
      } else if (v == "none") {
        c.preallocation = gv::wal::Preallocation::kNone;
      } else {
        Die("--preallocation must be zero, fallocate or none");
      }
    } else {
      Die("usage: wal_bench --dir DIR [--repeat N] [--seconds S] [--preallocation zero|fallocate|none]");
    }
  }
  if (c.dir.empty()) Die("--dir is required");
  std::filesystem::create_directories(c.dir);
  spdlog::set_level(spdlog::level::warn);

  std::printf("wal_bench: dir %s, %d rounds of %.1f s per figure; each WAL figure is measured right after\n"
              "its raw counterpart in the same round, and the ratio is the median of the per-round ratios\n",
              c.dir.c_str(), c.repeat, c.seconds);
  std::fflush(stdout);
  // Interleaved rounds: the machine is shared, so a raw figure and the WAL
  // figure compared with it are taken back to back, and medians are printed.
  std::vector<double> raw_dsync, raw_64k, raw_1m, wal_one, wal_many, many_syncs, wal_64k, wal_1m;
  std::vector<double> ratio_one, ratio_64k, ratio_1m;
  for (int round = 0; round < c.repeat; ++round) {
    raw_dsync.push_back(RawDsync4k(c));
    wal_one.push_back(WalAppends(c, 1, 4096).per_second);
    ratio_one.push_back(wal_one.back() / raw_dsync.back());
    const Appends many = WalAppends(c, 64, 4096);
    wal_many.push_back(many.per_second);
    many_syncs.push_back(many.syncs_per_append);
    raw_64k.push_back(RawWriteFdatasync(c, 64u << 10));
    wal_64k.push_back(WalBatches(c, 64u << 10));
    ratio_64k.push_back(wal_64k.back() / raw_64k.back());
    raw_1m.push_back(RawWriteFdatasync(c, 1u << 20));
    wal_1m.push_back(WalBatches(c, 1u << 20));
    ratio_1m.push_back(wal_1m.back() / raw_1m.back());
    std::printf("  round %d: raw %.0f/s wal-1 %.0f/s wal-64 %.0f/s | raw64K %.1f wal64K %.1f | raw1M %.1f wal1M %.1f MB/s\n",
                round + 1, raw_dsync.back(), wal_one.back(), wal_many.back(), raw_64k.back(), wal_64k.back(),
                raw_1m.back(), wal_1m.back());
    std::fflush(stdout);
  }
  std::printf("raw  4 KiB O_DSYNC pwrite (pre-written file)   %10.0f writes/s\n", Median(raw_dsync));
  std::printf("raw  write + fdatasync, 64 KiB chunks          %10.1f MB/s\n", Median(raw_64k));
  std::printf("raw  write + fdatasync, 1 MiB chunks           %10.1f MB/s\n", Median(raw_1m));
  std::printf("wal  durable 4 KiB appends, 1 writer           %10.0f /s    %.2fx raw  (target >= 0.9x: %s)\n",
              Median(wal_one), Median(ratio_one), Verdict(Median(ratio_one) >= 0.9));
  std::printf("wal  durable 4 KiB appends, 64 writers         %10.0f /s    %.3f fdatasyncs per append  "
              "(target >= 50000/s: %s)\n",
              Median(wal_many), Median(many_syncs), Verdict(Median(wal_many) >= 50000));
  std::printf("wal  durable 64 KiB batches (16 x 4 KiB)       %10.1f MB/s  %.2fx raw\n", Median(wal_64k),
              Median(ratio_64k));
  std::printf("wal  durable 1 MiB batches (256 x 4 KiB)       %10.1f MB/s  %.2fx raw  (target >= 0.8x: %s)\n",
              Median(wal_1m), Median(ratio_1m), Verdict(Median(ratio_1m) >= 0.8));
  std::fflush(stdout);
  constexpr std::size_t kReplayRecords = 1000000;
  const double replay = MedianOf(c.repeat, [&] { return WalReplay(c, kReplayRecords, 100); });
  std::printf("wal  replay 1M records of 100-byte values      %10.3f s     %.0f records/s  (target <= 1 s: %s)\n", replay,
              kReplayRecords / replay, Verdict(replay <= 1.0));
  std::filesystem::remove_all(c.dir + "/wal-replay");
  return 0;
}
