// snapshot_bench: copy-on-write snapshots of the store (issue 5), each figure
// beside a reference measured in the same run on the same machine
// (`make bench-snapshot`, results in docs/benchmarks.md).
//
//   snapshot_bench --dir DIR [--keys N] [--rounds R] [--skip-options] [--encode-only] [--encode-threads N] [--helper-nice N]
//
// Part 1 compares the snapshot options on a bare map of N keys: std::map
// (the old KeyMap; capture = deep copy), per-shard copy-on-write (256
// std::map shards behind shared_ptr; capture = copy the shard pointers; the
// first write to a shard while a snapshot holds it copies the shard), and the
// persistent B+-tree (statestore/persistent_map.h; capture = copy the root).
// Part 2 measures the Store with N keys of 16 bytes and 100-byte values:
// capture time, capture -> durable file idle and under a saturating write load
// from the store's thread, write-path latency with and without a snapshot in
// progress (and, as a diagnostic, with a snapshot held but no encoder
// running), restore (read + verify + install), and heap growth while a
// snapshot is held under writes. The load average is printed at the start
// and end of part 2: the machine is shared, read every figure beside it.
//
//   --encode-only       stop after the idle figures (to iterate on the encoder)
//   --encode-threads N  WriteSnapshotFile's helper threads (default 2; 0 = serial)
//   --helper-nice N     their nice increment (default 0)
#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/huge_pages.h"
#include "common/prng.h"
#include "fs/posix_file_system.h"
#include "snapshot/files.h"
#include "statestore/persistent_map.h"
#include "statestore/store.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace sst = gv::statestore;

struct Config {
  std::string dir;
  std::size_t keys = 1'000'000;
  int rounds = 5;
  bool skip_options = false;
  bool encode_only = false;  // stop after the idle figures (to iterate on the encoder)
  std::size_t encode_threads = gv::snapshot::ParallelEncodeOptions{}.threads;  // WriteSnapshotFile's helpers
  int helper_nice = gv::snapshot::ParallelEncodeOptions{}.helper_nice;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "snapshot_bench: %s\n", what.c_str());
  std::exit(1);
}

double ThreadCpuSeconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Times the scheduler took this thread off a core while it could run.
long InvoluntarySwitches() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_nivcsw;
}

// Minor page faults of the calling thread so far (first touches of fresh memory).
long MinorFaults() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return usage.ru_minflt;
}

double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

std::string Key(std::uint64_t i) {
  // 16 bytes, spread so that key order differs from insertion order.
  char buf[32];
  std::snprintf(buf, sizeof(buf), "k%015llu", static_cast<unsigned long long>((i * 2654435761ull) % 1000000007ull));
  return std::string(buf, 16);
}

// The machine is shared: every figure is read beside the load it ran under.
void PrintLoad(const char* when) {
  double load[3] = {0, 0, 0};
  if (::getloadavg(load, 3) == 3) std::printf("load average (%s): %.2f %.2f %.2f\n", when, load[0], load[1], load[2]);
}

double RssMiB() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  if (std::fscanf(f, "%llu %llu", &size, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

// Bytes the program holds from malloc. RSS alone misleads here: memory freed
// by an earlier phase stays resident in malloc's free lists and is reused.
double HeapMiB() {
  const struct mallinfo2 info = ::mallinfo2();
  return static_cast<double>(info.uordblks + info.hblkhd) / (1024.0 * 1024.0);
}

// ---- Part 1: the options on a bare map ------------------------------------

sst::KeyEntry Entry(const std::string& value, std::uint64_t i) {
  sst::KeyEntry e;
  e.value = value;
  e.hlc = sst::Hlc{1'700'000'000'000 + i, 0};
  e.origin = gv::NodeId(1);
  e.vv[gv::NodeId(1)] = i + 1;
  e.create_index = e.modify_index = i + 1;
  return e;
}

class ShardedCow {
 public:
  static constexpr std::size_t kShards = 256;
  using Shard = std::map<std::string, sst::KeyEntry, std::less<>>;
  ShardedCow() : shards_(kShards) {
    for (auto& s : shards_) s = std::make_shared<Shard>();
  }
  std::vector<std::shared_ptr<Shard>> Capture() const { return shards_; }
  sst::KeyEntry& Write(const std::string& key) {
    auto& shard = shards_[std::hash<std::string>()(key) % kShards];
    if (shard.use_count() != 1) shard = std::make_shared<Shard>(*shard);  // copy the whole shard
    return (*shard)[key];
  }

 private:
  std::vector<std::shared_ptr<Shard>> shards_;
};

void CompareOptions(const Config& c) {
  const std::string value(100, 'v');
  std::vector<std::string> keys;
  keys.reserve(c.keys);
  for (std::size_t i = 0; i < c.keys; ++i) keys.push_back(Key(i));
  gv::Prng prng(1);
  std::vector<std::size_t> updates(200'000);
  for (auto& u : updates) u = prng.Index(c.keys);

  std::printf("\n== Part 1: snapshot options on a bare map (%zu keys, 16-byte keys, 100-byte values) ==\n", c.keys);
  std::printf("%-22s %12s %12s %14s %16s %16s\n", "option", "insert ns", "update ns", "capture", "update ns(held)",
              "update p99.9(held)");

  // std::map: capture = deep copy.
  {
    std::map<std::string, sst::KeyEntry, std::less<>> map;
    auto start = Clock::now();
    for (std::size_t i = 0; i < c.keys; ++i) map.emplace(keys[i], Entry(value, i));
    const double insert_ns = Since(start) * 1e9 / static_cast<double>(c.keys);
    start = Clock::now();
    for (std::size_t u : updates) map.find(keys[u])->second.modify_index++;
    const double update_ns = Since(start) * 1e9 / static_cast<double>(updates.size());
    start = Clock::now();
    auto copy = map;
    const double capture_s = Since(start);
    std::printf("%-22s %12.0f %12.0f %11.1f ms %16s %16s\n", "std::map (deep copy)", insert_ns, update_ns,
                capture_s * 1e3, "=", "=");
  }
  // Per-shard copy-on-write.
  {
    ShardedCow map;
    auto start = Clock::now();
    for (std::size_t i = 0; i < c.keys; ++i) map.Write(keys[i]) = Entry(value, i);
    const double insert_ns = Since(start) * 1e9 / static_cast<double>(c.keys);
    start = Clock::now();
    for (std::size_t u : updates) map.Write(keys[u]).modify_index++;
    const double update_ns = Since(start) * 1e9 / static_cast<double>(updates.size());
    std::vector<double> captures;
    for (int i = 0; i < 1000; ++i) {
      start = Clock::now();
      auto view = map.Capture();
      captures.push_back(Since(start));
    }
    auto held = map.Capture();
    std::vector<double> lat;
    start = Clock::now();
    for (std::size_t u : updates) {
      const auto t = Clock::now();
      map.Write(keys[u]).modify_index++;
      lat.push_back(Since(t) * 1e9);
    }
    const double held_ns = Since(start) * 1e9 / static_cast<double>(updates.size());
    std::printf("%-22s %12.0f %12.0f %11.2f us %16.0f %13.0f us\n", "per-shard COW (256)", insert_ns, update_ns,
                Median(captures) * 1e6, held_ns, Percentile(lat, 0.999) / 1e3);
  }
  // Persistent B+-tree.
  {
    sst::PersistentMap<sst::KeyEntry> map;
    auto start = Clock::now();
    for (std::size_t i = 0; i < c.keys; ++i) map.Insert(keys[i], Entry(value, i));
    const double insert_ns = Since(start) * 1e9 / static_cast<double>(c.keys);
    start = Clock::now();
    for (std::size_t u : updates) map.FindMutable(keys[u])->modify_index++;
    const double update_ns = Since(start) * 1e9 / static_cast<double>(updates.size());
    std::vector<double> captures;
    for (int i = 0; i < 1000; ++i) {
      start = Clock::now();
      auto view = map;
      captures.push_back(Since(start));
    }
    auto held = map;
    std::vector<double> lat;
    start = Clock::now();
    for (std::size_t u : updates) {
      const auto t = Clock::now();
      map.FindMutable(keys[u])->modify_index++;
      lat.push_back(Since(t) * 1e9);
    }
    const double held_ns = Since(start) * 1e9 / static_cast<double>(updates.size());
    std::printf("%-22s %12.0f %12.0f %11.2f us %16.0f %13.0f us\n", "persistent B+-tree", insert_ns, update_ns,
                Median(captures) * 1e6, held_ns, Percentile(lat, 0.999) / 1e3);
  }
  std::printf("(pre-image logging is not measured: a reader on another thread would have to consult the live map,\n"
              " which the loop thread mutates, so it needs a lock that blocks writers; see docs/benchmarks.md)\n");
}

// ---- Part 2: the store --------------------------------------------------------

struct Writer {
  sst::Store& store;
  gv::Prng prng{7};
  std::size_t keys;
  std::string value = std::string(100, 'w');
  std::uint64_t wall_ms = 1'700'000'000'000;

  // One local write (MakeLocalDelta + Apply) of a random existing key; its latency in ns.
  double WriteOne() {
    const auto start = Clock::now();
    auto delta = store.MakeLocalDelta({sst::LocalOp{sst::OpKind::kPut, Key(prng.Index(keys)), value, 0, std::nullopt}},
                                      wall_ms);
    if (!delta.ok()) Die("MakeLocalDelta: " + delta.status().ToString());
    if (store.Apply(*delta, wall_ms).status != sst::ApplyStatus::kApplied) Die("Apply failed");
    return std::chrono::duration<double, std::nano>(Clock::now() - start).count();
  }
};

// Reference: the same number of bytes written sequentially (1 MiB pwrites)
// into a new file, fdatasync'd. Seconds.
double RawWriteFdatasync(const std::string& dir, std::uint64_t bytes) {
  const std::string path = dir + "/raw.bin";
  std::filesystem::remove(path);
  const auto start = Clock::now();
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) Die("open " + path);
  std::string block(1u << 20, 'r');
  for (std::uint64_t off = 0; off < bytes;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block.size(), bytes - off));
    if (::pwrite(fd, block.data(), n, static_cast<off_t>(off)) != static_cast<ssize_t>(n)) Die("pwrite");
    off += n;
  }
  if (::fdatasync(fd) != 0) Die("fdatasync");
  ::close(fd);
  const double s = Since(start);
  std::filesystem::remove(path);
  return s;
}

double RawRead(const std::string& path) {
  const auto start = Clock::now();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) Die("open " + path);
  std::string block(1u << 20, '\0');
  std::uint64_t sum = 0;
  for (off_t off = 0;;) {
    const ssize_t n = ::pread(fd, block.data(), block.size(), off);
    if (n < 0) Die("pread");
    if (n == 0) break;
    sum += static_cast<unsigned char>(block[0]);
    off += n;
  }
  ::close(fd);
  if (sum == 1) std::printf(" ");  // keeps the loop observable
  return Since(start);
}

void BenchStore(const Config& c) {
  std::printf("\n== Part 2: the store (%zu keys, 16-byte keys, 100-byte values), medians of %d rounds ==\n", c.keys,
              c.rounds);
  PrintLoad("start of part 2");
  std::printf("heap on transparent huge pages: %s (GLIBC_TUNABLES=glibc.malloc.hugetlb=1 for on; the agent runs off)\n",
              gv::MallocHugePagesState().c_str());
  const std::string data_dir = c.dir + "/snapshots";
  std::filesystem::remove_all(c.dir);
  std::filesystem::create_directories(data_dir);
  gv::fs::PosixFileSystem fs;

  const double heap_empty = HeapMiB();
  sst::Store store(gv::NodeId(1), sst::StoreLimits{});
  Writer writer{store, gv::Prng(7), c.keys};
  const std::string value(100, 'v');
  auto start = Clock::now();
  for (std::size_t i = 0; i < c.keys; ++i) {
    auto delta = store.MakeLocalDelta({sst::LocalOp{sst::OpKind::kPut, Key(i), value, 0, std::nullopt}}, writer.wall_ms);
    store.Apply(*delta, writer.wall_ms);
  }
  const double load_s = Since(start);
  const double heap_store = HeapMiB() - heap_empty;
  std::printf("load: %.0f ns per insert (MakeLocalDelta+Apply, one op); store heap %.0f MiB (process RSS %.0f MiB)\n",
              load_s * 1e9 / static_cast<double>(c.keys), heap_store, RssMiB());

  // Capture.
  std::vector<double> captures;
  for (int i = 0; i < 10000; ++i) {
    start = Clock::now();
    sst::StoreView view = store.Capture();
    captures.push_back(Since(start) * 1e6);
  }
  std::printf("capture: median %.2f us, p99 %.2f us (target <= 10 us)\n", Median(captures),
              Percentile(captures, 0.99));

  // Capture -> durable file, idle.
  std::vector<double> idle_s, raw_s;
  std::uint64_t file_bytes = 0;
  std::string last_path;
  for (int r = 0; r < c.rounds; ++r) {
    start = Clock::now();
    auto info = gv::snapshot::WriteSnapshotFile(fs, data_dir, store.Capture(), 1, 0, c.encode_threads, c.helper_nice);
    if (!info.ok()) Die(info.status().ToString());
    idle_s.push_back(Since(start));
    file_bytes = info->bytes;
    last_path = info->path;
    raw_s.push_back(RawWriteFdatasync(c.dir, file_bytes));
    (void)gv::snapshot::PruneSnapshots(fs, data_dir, 1);
  }
  const double raw_bytes_ratio = static_cast<double>(file_bytes) / (static_cast<double>(c.keys) * (16 + 100));
  std::printf("file: %.1f MB (%.2fx the raw key+value bytes)\n", static_cast<double>(file_bytes) / 1e6,
              raw_bytes_ratio);
  // Encoding alone, serial (SnapshotEncoder::NextChunk, as peer streaming
  // uses it) and on helper threads (as WriteSnapshotFile does); the serial
  // one also in CPU time, which the machine's other load does not inflate.
  std::vector<double> encode_s, encode_cpu_s, parallel_s;
  for (int r = 0; r < c.rounds; ++r) {
    start = Clock::now();
    const double cpu_start = ThreadCpuSeconds();
    gv::snapshot::SnapshotEncoder encoder(store.Capture(), 1, 0);
    std::string chunk;
    while (encoder.NextChunk(&chunk)) chunk.clear();
    encode_cpu_s.push_back(ThreadCpuSeconds() - cpu_start);
    encode_s.push_back(Since(start));
    start = Clock::now();
    gv::snapshot::ParallelEncodeOptions options;
    options.threads = std::max<std::size_t>(c.encode_threads, 1);
    auto encoded = gv::snapshot::EncodeSnapshotParallel(
        store.Capture(), 1, 0, [](std::string_view) { return gv::Status::Ok(); }, options);
    if (!encoded.ok()) Die(encoded.status().ToString());
    parallel_s.push_back(Since(start));
  }
  std::printf("encode only (no I/O): serial %.0f ms (%.0f MB/s; CPU %.0f ms), on %zu helper threads %.0f ms\n",
              Median(encode_s) * 1e3, static_cast<double>(file_bytes) / 1e6 / Median(encode_s),
              Median(encode_cpu_s) * 1e3, std::max<std::size_t>(c.encode_threads, 1), Median(parallel_s) * 1e3);
  std::printf("to disk, idle: %.0f ms (target <= 150 ms); raw write+fdatasync of the same bytes %.0f ms; ratio %.2f\n",
              Median(idle_s) * 1e3, Median(raw_s) * 1e3, Median(idle_s) / Median(raw_s));
  if (c.encode_only) {
    PrintLoad("end of part 2");
    return;
  }

  // Capture -> durable file on a worker thread while this thread writes flat
  // out. Each round first measures the same writer with no snapshot for as
  // many writes as the previous busy phase made (the first round: 20,000),
  // right before, so both sides of the p99 ratio see the same machine load
  // (the machine is shared); the figures are medians over rounds.
  // Between the two, the same writes with a snapshot held but no encoder
  // running: what path copying costs on its own, apart from the encoder's
  // use of the other core (a diagnostic, not a target).
  std::vector<double> busy_s, idle_p50, idle_p99, busy_p50, busy_p99, round_ratio, held_p99, busy_p90, busy_p999,
      preempted_share, release_s, idle_faults, held_faults;
  std::size_t writes_during = 0, idle_writes = 20'000;
  for (int r = 0; r < c.rounds; ++r) {
    std::vector<double> idle_lat, held_lat, busy_lat;
    // Reserved and touched first, so that their own pages are not counted
    // as faults of the writes.
    idle_lat.assign(idle_writes, 0.0);
    idle_lat.clear();
    held_lat.assign(idle_writes, 0.0);
    held_lat.clear();
    const long idle_faults_before = MinorFaults();
    for (std::size_t i = 0; i < idle_writes; ++i) idle_lat.push_back(writer.WriteOne());
    idle_faults.push_back(static_cast<double>(MinorFaults() - idle_faults_before) / static_cast<double>(idle_writes));
    {
      const sst::StoreView held = store.Capture();
      const long faults_before = MinorFaults();
      for (std::size_t i = 0; i < idle_writes; ++i) held_lat.push_back(writer.WriteOne());
      held_faults.push_back(static_cast<double>(MinorFaults() - faults_before) / static_cast<double>(idle_writes));
    }
    held_p99.push_back(Percentile(held_lat, 0.99));
    std::atomic<bool> done{false};
    double took = 0;
    start = Clock::now();
    // As in the agent (SnapshotService): the writing thread drops the view
    // once the file is durable, so the nodes copied away while it was held
    // are freed after the fdatasync, not before it, and not on the store
    // thread. The store thread's writes are measured until the view is gone.
    std::thread worker([&, view = store.Capture()]() mutable {
      auto info = gv::snapshot::WriteSnapshotFile(fs, data_dir, view, 1, 0, c.encode_threads, c.helper_nice);
      if (!info.ok()) Die(info.status().ToString());
      took = Since(start);
      const auto release_start = Clock::now();
      view = sst::StoreView();
      release_s.push_back(Since(release_start));
      done = true;
    });
    const long switches_before = InvoluntarySwitches();
    while (!done) busy_lat.push_back(writer.WriteOne());
    preempted_share.push_back(static_cast<double>(InvoluntarySwitches() - switches_before) /
                              static_cast<double>(std::max<std::size_t>(busy_lat.size(), 1)));
    worker.join();
    busy_s.push_back(took);
    writes_during += busy_lat.size();
    idle_writes = std::max<std::size_t>(busy_lat.size(), 1000);
    idle_p50.push_back(Percentile(idle_lat, 0.5));
    idle_p99.push_back(Percentile(idle_lat, 0.99));
    busy_p50.push_back(Percentile(busy_lat, 0.5));
    busy_p99.push_back(Percentile(busy_lat, 0.99));
    busy_p90.push_back(Percentile(busy_lat, 0.90));
    busy_p999.push_back(Percentile(busy_lat, 0.999));
    round_ratio.push_back(busy_p99.back() / idle_p99.back());
    (void)gv::snapshot::PruneSnapshots(fs, data_dir, 1);
  }
  double busy_total_s = 0;
  for (double s : busy_s) busy_total_s += s;
  std::printf("to disk, under writes: %.0f ms (target <= 300 ms); %.0f writes/s from the store thread meanwhile; "
              "ratio to idle %.2f\n",
              Median(busy_s) * 1e3, static_cast<double>(writes_during) / busy_total_s, Median(busy_s) / Median(idle_s));
  std::printf("write path (MakeLocalDelta+Apply), medians of per-round figures: p50 %.0f ns, p99 %.0f ns idle; "
              "p50 %.0f ns, p99 %.0f ns with a snapshot in progress; p99 ratio %.2f (target <= 2; per round:",
              Median(idle_p50), Median(idle_p99), Median(busy_p50), Median(busy_p99),
              Median(busy_p99) / Median(idle_p99));
  for (double ratio : round_ratio) std::printf(" %.2f", ratio);
  std::printf(")\n");
  std::printf("  diagnostic: p99 %.0f ns with a snapshot held but no encoder running (path copying alone); "
              "ratio to idle %.2f\n",
              Median(held_p99), Median(held_p99) / Median(idle_p99));
  std::printf("  diagnostic: minor page faults of the store thread per 100 writes: %.2f idle, %.2f with a snapshot held\n",
              Median(idle_faults) * 100, Median(held_faults) * 100);
  std::printf("  diagnostic: with a snapshot in progress p90 %.0f ns, p99.9 %.0f ns; the store thread was preempted "
              "(involuntary context switches) in %.3f%% of its writes\n",
              Median(busy_p90), Median(busy_p999), Median(preempted_share) * 100);
  std::printf("  diagnostic: dropping the view after the file is durable, on the writing thread while writes go on "
              "(as the agent does): %.1f ms median, %.1f ms max\n",
              Median(release_s) * 1e3, *std::max_element(release_s.begin(), release_s.end()) * 1e3);

  // Restore: read + verify every chunk + install, into a fresh store.
  auto final_info = gv::snapshot::WriteSnapshotFile(fs, data_dir, store.Capture(), 1, 0, c.encode_threads, c.helper_nice);
  if (!final_info.ok()) Die(final_info.status().ToString());
  std::vector<double> restore_s, read_s;
  for (int r = 0; r < c.rounds; ++r) {
    read_s.push_back(RawRead(final_info->path));
    start = Clock::now();
    auto loaded = gv::snapshot::ReadSnapshotFile(fs, final_info->path);
    if (!loaded.ok()) Die(loaded.status().ToString());
    sst::Store fresh(gv::NodeId(1), sst::StoreLimits{});
    gv::Status installed = fresh.Install(std::move(*loaded), true);
    if (!installed.ok()) Die(installed.ToString());
    restore_s.push_back(Since(start));
    if (fresh.KeyCount() != store.KeyCount()) Die("restored store differs");
  }
  std::printf("restore (read + verify + install): %.0f ms (target <= 1 s); raw read of the file %.0f ms; ratio %.1f\n",
              Median(restore_s) * 1e3, Median(read_s) * 1e3, Median(restore_s) / Median(read_s));

  // Memory while a snapshot is held under writes.
  for (std::size_t n : {c.keys / 10, c.keys}) {
    for (bool hold : {false, true}) {
      const double before = HeapMiB();
      sst::StoreView held = hold ? store.Capture() : sst::StoreView();
      for (std::size_t i = 0; i < n; ++i) writer.WriteOne();
      const double grown = HeapMiB() - before;
      std::printf("memory: %zu random overwrites %s a snapshot held: heap %+.0f MiB (%.0f bytes/write; the store "
                  "itself %.0f MiB, ratio %.2f)\n",
                  n, hold ? "with" : "without", grown, grown * 1024 * 1024 / static_cast<double>(n), heap_store,
                  grown / heap_store);
    }
  }
  // The map keeps the nodes and items it copied away from views as free
  // blocks for the next view (persistent_map.h, Domain): its heap does not
  // shrink back when a view goes, and the copies in the figures above are
  // partly served from blocks that earlier views freed, which the heap had
  // already counted. The process RSS beside it is the allocator-neutral
  // figure.
  std::printf("memory: heap after every view is gone: %.0f MiB over the store as loaded (the map's free blocks and "
              "spare retired-list chunks, kept for the next snapshot); process RSS %.0f MiB\n",
              HeapMiB() - heap_empty - heap_store, RssMiB());
  PrintLoad("end of part 2");
  std::filesystem::remove_all(c.dir);
}

}  // namespace

int main(int argc, char** argv) {
  Config c;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) Die("missing value for " + arg);
      return argv[++i];
    };
    if (arg == "--dir") {
      c.dir = next();
    } else if (arg == "--keys") {
      c.keys = std::strtoull(next().c_str(), nullptr, 10);
    } else if (arg == "--rounds") {
      c.rounds = std::atoi(next().c_str());
    } else if (arg == "--skip-options") {
      c.skip_options = true;
    } else if (arg == "--encode-threads") {
      c.encode_threads = std::strtoull(next().c_str(), nullptr, 10);
    } else if (arg == "--helper-nice") {
      c.helper_nice = std::atoi(next().c_str());
    } else if (arg == "--encode-only") {
      c.encode_only = true;
    } else {
      Die("usage: snapshot_bench --dir DIR [--keys N] [--rounds R] [--skip-options] [--encode-only] [--encode-threads N] [--helper-nice N]");
    }
  }
  if (c.dir.empty()) Die("--dir is required");
  if (c.keys == 0 || c.rounds <= 0) Die("--keys and --rounds must be positive");
  if (!c.skip_options) CompareOptions(c);
  BenchStore(c);
  return 0;
}
