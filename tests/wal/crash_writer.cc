// wal_crash_writer DIR THREADS SEED: appends to the WAL in DIR (sync
// durability) from THREADS threads until killed. After each Append returns,
// prints "LSN CRC32C-OF-PAYLOAD\n" to stdout in one write(2), so every line
// the parent reads names a record that was acknowledged as durable.
// The payload of a record is a pure function of (SEED, thread, counter), and
// its digest is printed, so the parent can verify content after a SIGKILL.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "common/crc32c.h"
#include "fs/posix_file_system.h"
#include "wal/wal.h"

namespace {

bool WriteAll(const std::string& line) {
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(STDOUT_FILENO, p, left);
    if (n < 0) return false;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s DIR THREADS SEED\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  const int threads = std::atoi(argv[2]);
  const std::string seed = argv[3];
  gv::fs::PosixFileSystem fs;
  gv::wal::WalOptions options;
  options.dir = dir;
  options.durability = gv::wal::Durability::kSync;
  options.segment_bytes = 256 << 10;  // rotate often
  options.max_record_bytes = 4096;
  auto wal = gv::wal::Wal::Open(fs, options, [](gv::wal::Lsn, std::string_view) { return gv::Status::Ok(); });
  if (!wal.ok()) {
    std::fprintf(stderr, "crash_writer: open: %s\n", wal.status().ToString().c_str());
    return 1;
  }
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (std::uint64_t i = 0;; ++i) {
        std::string payload = seed + "/" + std::to_string(t) + "/" + std::to_string(i) + "/";
        payload.append((i * 37 + static_cast<std::uint64_t>(t) * 11) % 600, static_cast<char>('a' + (i % 26)));
        auto lsn = (*wal)->Append(payload);
        if (!lsn.ok()) {
          std::fprintf(stderr, "crash_writer: append: %s\n", lsn.status().ToString().c_str());
          std::_Exit(1);
        }
        const std::string line =
            std::to_string(*lsn) + " " + std::to_string(gv::crc32c::Value(payload)) + "\n";
        if (!WriteAll(line)) std::_Exit(1);
      }
    });
  }
  for (auto& w : workers) w.join();
  return 0;
}
