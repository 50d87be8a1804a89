// BlockWriter: the file holds exactly the appended bytes after Finish, with
// and without direct I/O, for every stream length around the alignment and
// block boundaries; write failures are sticky and never end in an ok with
// wrong content; Abort and the destructor stop the writer with blocks queued;
// and the real disk (PosixFileSystem, O_DIRECT or its fallback) reads back
// what was written.
#include "fs/block_writer.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/prng.h"
#include "fs/mem_file_system.h"
#include "fs/posix_file_system.h"

using namespace gv;
using namespace gv::fs;

namespace {

constexpr std::uint64_t kSeed = 0x626c6f636b777274ull;  // "blockwrt"
constexpr std::size_t kBlock = 8192;

std::string RandomBytes(Prng& prng, std::size_t n) {
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(prng.Uniform(256));
  return out;
}

// "" if equal, else where they first differ (keeps doctest from printing megabytes).
std::string Diff(const std::string& got, const std::string& want) {
  if (got == want) return "";
  std::size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  return "sizes " + std::to_string(got.size()) + " vs " + std::to_string(want.size()) + ", first difference at byte " +
         std::to_string(i);
}

std::string ReadAll(FileSystem& fs, const std::string& path) {
  auto content = ReadFileToString(fs, path, 64u << 20);
  REQUIRE_MESSAGE(content.ok(), content.status().ToString());
  return *content;
}

std::unique_ptr<File> Create(FileSystem& fs, const std::string& path) {
  auto f = fs.Open(path, OpenMode::kCreateNew);
  REQUIRE_MESSAGE(f.ok(), f.status().ToString());
  return std::move(*f);
}

// Appends `bytes` in random-sized pieces (some empty, some larger than a
// block); stops at the first error and returns it.
Status AppendInPieces(BlockWriter& writer, const std::string& bytes, Prng& prng) {
  std::size_t pos = 0;
  // Bounded: every round appends at least one byte, or is one of few empty appends.
  for (std::size_t rounds = 0; pos < bytes.size() && rounds < 4 * bytes.size() + 16; ++rounds) {
    std::size_t n;
    switch (prng.Uniform(5)) {
      case 0: n = 0; break;
      case 1: n = 1 + prng.Uniform(16); break;
      case 2: n = 1 + prng.Uniform(kDirectIoAlignment + 1); break;
      case 3: n = 1 + prng.Uniform(3 * kBlock); break;
      default: n = kDirectIoAlignment; break;
    }
    n = std::min(n, bytes.size() - pos);
    GV_RETURN_IF_ERROR(writer.Append(std::string_view(bytes).substr(pos, n)));
    pos += n;
  }
  REQUIRE(pos == bytes.size());
  return Status::Ok();
}

// A File that forwards to another and records what the writer does to it;
// its WriteAt can be held at a gate until the test opens it.
class ProbeFile final : public File {
 public:
  static constexpr std::chrono::seconds kGateTimeout{30};
  struct Range {
    std::uint64_t offset;
    std::uint64_t length;
  };

  explicit ProbeFile(std::unique_ptr<File> inner) : inner_(std::move(inner)) {}

  Status WriteAt(std::uint64_t offset, std::string_view data) override {
    {
      std::unique_lock lock(mu_);
      ++entered_;
      cv_.notify_all();
      // Bounded: a test that never opens the gate fails instead of hanging.
      if (!cv_.wait_for(lock, kGateTimeout, [&] { return !gate_closed_; })) {
        return Status::IOError("probe: the gate stayed closed for " + std::to_string(kGateTimeout.count()) + " s");
      }
      writes_.push_back({offset, data.size()});
      if (reinterpret_cast<std::uintptr_t>(data.data()) % kDirectIoAlignment != 0) ++unaligned_buffers_;
    }
    return inner_->WriteAt(offset, data);
  }
  Result<std::size_t> ReadAt(std::uint64_t offset, std::size_t n, char* out) override {
    return inner_->ReadAt(offset, n, out);
  }
  Status Sync() override { return inner_->Sync(); }
  Status StartWriteback(std::uint64_t offset, std::uint64_t length) override {
    {
      std::lock_guard lock(mu_);
      writebacks_.push_back({offset, length});
    }
    return inner_->StartWriteback(offset, length);
  }
  Status EnableDirectIo() override { return inner_->EnableDirectIo(); }
  Status Allocate(std::uint64_t offset, std::uint64_t length) override { return inner_->Allocate(offset, length); }
  Status Truncate(std::uint64_t size) override {
    {
      std::lock_guard lock(mu_);
      truncates_.push_back(size);
    }
    return inner_->Truncate(size);
  }
  Result<std::uint64_t> Size() override { return inner_->Size(); }
  Status Close() override { return inner_->Close(); }

  void CloseGate() {
    std::lock_guard lock(mu_);
    gate_closed_ = true;
  }
  void OpenGate() {
    std::lock_guard lock(mu_);
    gate_closed_ = false;
    cv_.notify_all();
  }
  // Waits until `n` WriteAt calls have begun (at most kGateTimeout).
  void WaitEntered(std::size_t n) {
    std::unique_lock lock(mu_);
    REQUIRE_MESSAGE(cv_.wait_for(lock, kGateTimeout, [&] { return entered_ >= n; }),
                    "fewer than " << n << " writes began within " << kGateTimeout.count() << " s");
  }
  std::vector<Range> writes() {
    std::lock_guard lock(mu_);
    return writes_;
  }
  std::vector<Range> writebacks() {
    std::lock_guard lock(mu_);
    return writebacks_;
  }
  std::vector<std::uint64_t> truncates() {
    std::lock_guard lock(mu_);
    return truncates_;
  }
  std::size_t unaligned_buffers() {
    std::lock_guard lock(mu_);
    return unaligned_buffers_;
  }

 private:
  std::unique_ptr<File> inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool gate_closed_ = false;
  std::size_t entered_ = 0;
  std::vector<Range> writes_;
  std::vector<Range> writebacks_;
  std::vector<std::uint64_t> truncates_;
  std::size_t unaligned_buffers_ = 0;
};

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gv-block-writer-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::uint64_t CeilDiv(std::uint64_t a, std::uint64_t b) { return (a + b - 1) / b; }

// Around the alignment (4096) and the block (8192); several blocks with odd tails.
const std::vector<std::size_t> kLengths = {0,          1,          4095,           4096,           4097,
                                           kBlock - 1, kBlock,     kBlock + 1,     kBlock + 4096,  2 * kBlock,
                                           3 * kBlock + 4097,      5 * kBlock + 1, 7 * kBlock + 123,
                                           40 * kBlock + 777};

}  // namespace

// The tests below rely on the mem fs refusing misaligned direct writes.
TEST_CASE("block writer: the mem fs enforces direct I/O alignment, or refuses direct I/O") {
  MemFileSystem fs;
  auto file = Create(fs, "f");
  REQUIRE(file->EnableDirectIo().ok());
  struct FreeAligned {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char[], FreeAligned> buf(static_cast<char*>(std::aligned_alloc(kDirectIoAlignment, 3 * 4096)));
  REQUIRE(buf != nullptr);
  std::memset(buf.get(), 'a', 3 * 4096);
  CHECK(file->WriteAt(0, std::string_view(buf.get(), 8192)).ok());
  CHECK(file->WriteAt(4096, std::string_view(buf.get(), 4096)).ok());
  CHECK(file->WriteAt(1, std::string_view(buf.get(), 4096)).code() == StatusCode::kInvalidArgument);
  CHECK(file->WriteAt(0, std::string_view(buf.get(), 4095)).code() == StatusCode::kInvalidArgument);
  CHECK(file->WriteAt(0, std::string_view(buf.get() + 1, 4096)).code() == StatusCode::kInvalidArgument);
  CHECK(file->Truncate(100).ok());  // sizes are free
  CHECK(ReadAll(fs, "f") == std::string(100, 'a'));

  fs.SetDirectIoSupported(false);
  auto plain = Create(fs, "g");
  CHECK_FALSE(plain->EnableDirectIo().ok());
  CHECK(plain->WriteAt(1, std::string_view(buf.get() + 1, 10)).ok());
  CHECK(ReadAll(fs, "g") == std::string(1, '\0') + std::string(10, 'a'));
}

TEST_CASE("block writer: the file holds exactly the appended bytes (mem fs, with and without direct I/O)") {
  Prng prng(kSeed);
  INFO("seed=" << kSeed);
  int case_index = 0;
  for (bool supported : {true, false}) {
    for (bool try_direct : {true, false}) {
      for (std::size_t blocks : {2u, 3u}) {
        for (std::size_t length : kLengths) {
          for (bool thread : {true, false}) {
            CAPTURE(supported);
            CAPTURE(try_direct);
            CAPTURE(blocks);
            CAPTURE(length);
            CAPTURE(thread);
            MemFileSystem fs;
            fs.SetDirectIoSupported(supported);
            const std::string path = "snap" + std::to_string(case_index++);
            auto probe = std::make_unique<ProbeFile>(Create(fs, path));
            const std::string bytes = RandomBytes(prng, length);
            const std::uint64_t writes_before = fs.count(MemOp::kWrite);
            BlockWriterOptions options{.block_bytes = kBlock, .blocks = blocks, .writeback_step_bytes = 0,
                                       .try_direct_io = try_direct, .writer_thread = thread};
            BlockWriter writer(*probe, options);
            const bool direct = supported && try_direct;
            CHECK(writer.direct() == direct);
            Status s = AppendInPieces(writer, bytes, prng);
            REQUIRE_MESSAGE(s.ok(), s.ToString());
            CHECK(writer.bytes_appended() == length);
            s = writer.Finish();
            REQUIRE_MESSAGE(s.ok(), s.ToString());
            CHECK(writer.bytes_appended() == length);
            CHECK(writer.direct() == direct);

            CHECK(*probe->Size() == length);
            const std::string content = ReadAll(fs, path);
            CHECK(Diff(content, bytes) == "");

            // One write per block, each at its block's offset, all whole blocks
            // but the last; with direct I/O everything aligned (the mem fs
            // refuses anything else) and the padding truncated away.
            const auto writes = probe->writes();
            CHECK(writes.size() == CeilDiv(length, kBlock));
            CHECK(fs.count(MemOp::kWrite) - writes_before == CeilDiv(length, kBlock));
            CHECK(probe->unaligned_buffers() == 0);
            for (std::size_t w = 0; w < writes.size(); ++w) {
              CAPTURE(w);
              CHECK(writes[w].offset == w * kBlock);
              if (w + 1 < writes.size()) {
                CHECK(writes[w].length == kBlock);
              } else if (direct) {
                CHECK(writes[w].length == CeilDiv(length - w * kBlock, kDirectIoAlignment) * kDirectIoAlignment);
              } else {
                CHECK(writes[w].length == length - w * kBlock);
              }
            }
            const bool padded = direct && length % kDirectIoAlignment != 0;
            CHECK(probe->truncates() == (padded ? std::vector<std::uint64_t>{length} : std::vector<std::uint64_t>{}));
            CHECK(probe->writebacks().empty());  // writeback_step_bytes = 0

            // Finish is once only; the file is not touched again.
            CHECK_FALSE(writer.Finish().ok());
            CHECK_FALSE(writer.Append("more").ok());
            writer.Abort();
            CHECK(Diff(ReadAll(fs, path), bytes) == "");
          }
        }
      }
    }
  }
}

TEST_CASE("block writer: block sizes are rounded up to the alignment") {
  Prng prng(kSeed + 1);
  for (bool supported : {true, false}) {
    CAPTURE(supported);
    MemFileSystem fs;
    fs.SetDirectIoSupported(supported);
    ProbeFile probe(Create(fs, "f"));
    const std::string bytes = RandomBytes(prng, 3 * 8192 + 5);
    {
      BlockWriter writer(probe, BlockWriterOptions{.block_bytes = 5000, .blocks = 1});  // -> 8192, 2 buffers
      REQUIRE(AppendInPieces(writer, bytes, prng).ok());
      REQUIRE(writer.Finish().ok());
    }
    CHECK(Diff(ReadAll(fs, "f"), bytes) == "");
    const auto writes = probe.writes();
    REQUIRE(writes.size() == 4);
    for (std::size_t w = 0; w < 3; ++w) {
      CHECK(writes[w].offset == w * 8192);
      CHECK(writes[w].length == 8192);
    }
    CHECK(writes[3].offset == 3 * 8192);
  }
}

TEST_CASE("block writer: writeback is started in steps, with direct I/O or without") {
  Prng prng(kSeed + 2);
  for (bool supported : {true, false}) {
    CAPTURE(supported);
    MemFileSystem fs;
    fs.SetDirectIoSupported(supported);
    ProbeFile probe(Create(fs, "f"));
    const std::uint64_t step = 3 * kBlock;
    const std::string bytes = RandomBytes(prng, 20 * kBlock + 100);
    BlockWriter writer(probe, BlockWriterOptions{.block_bytes = kBlock, .blocks = 3, .writeback_step_bytes = step});
    REQUIRE(AppendInPieces(writer, bytes, prng).ok());
    REQUIRE(writer.Finish().ok());
    CHECK(Diff(ReadAll(fs, "f"), bytes) == "");
    const auto ranges = probe.writebacks();
    CHECK(writer.direct() == supported);
    // Contiguous from 0, each at least a step, within what was written. (With
    // direct I/O a no-op, unless the file went back to the page cache.)
    REQUIRE(ranges.size() == 20 * kBlock / step);
    std::uint64_t expect_offset = 0;
    for (const auto& r : ranges) {
      CHECK(r.offset == expect_offset);
      CHECK(r.length >= step);
      CHECK(r.offset + r.length <= bytes.size());
      expect_offset = r.offset + r.length;
    }
  }
}

TEST_CASE("block writer: an injected write failure is sticky and never reported as success") {
  Prng prng(kSeed + 3);
  INFO("seed=" << kSeed + 3);
  const std::size_t length = 5 * kBlock + 4097;  // 6 writes
  const std::uint64_t writes = CeilDiv(length, kBlock);
  for (bool supported : {true, false}) {
    for (std::size_t blocks : {2u, 3u}) {
      for (std::uint64_t k = 1; k <= writes + 1; ++k) {
        for (bool crash : {false, true}) {
          CAPTURE(supported);
          CAPTURE(blocks);
          CAPTURE(k);
          CAPTURE(crash);
          MemFileSystem fs;
          fs.SetDirectIoSupported(supported);
          auto file = Create(fs, "f");
          const std::string bytes = RandomBytes(prng, length);
          const std::uint64_t writes_before = fs.count(MemOp::kWrite);
          if (crash) {
            fs.CrashAtOperation(fs.operation_count() + k);  // writes are the only operations from here
          } else {
            fs.FailNth(MemOp::kWrite, k);
          }
          // CrashAtOperation counts every mutating operation: one more than
          // the writes is the truncate of the padding (direct I/O only).
          const bool truncate_fails = crash && supported && k == writes + 1;
          const bool fails = k <= writes || truncate_fails;
          Status status;
          bool failed_in_append = false;
          {
            BlockWriter writer(*file, BlockWriterOptions{.block_bytes = kBlock, .blocks = blocks});
            CHECK(writer.direct() == supported);
            status = AppendInPieces(writer, bytes, prng);
            failed_in_append = !status.ok();
            if (status.ok()) status = writer.Finish();
            if (fails) {
              REQUIRE_FALSE(status.ok());
              CHECK(status.IsIOError());
              CHECK(status.message().find("injected") != std::string::npos);
              // Sticky: every later call fails.
              CHECK_FALSE(writer.Append("x").ok());
              CHECK_FALSE(writer.Append("").ok());
              CHECK_FALSE(writer.Finish().ok());
              CHECK_FALSE(writer.Finish().ok());
            } else {
              REQUIRE_MESSAGE(status.ok(), status.ToString());
            }
          }  // the destructor joins the writing thread after the error
          INFO("failed in " << (failed_in_append ? "Append" : "Finish"));
          if (crash) {
            CHECK(fs.crashed() == fails);
            fs.ClearFaults();
          }
          if (k <= writes) {
            // Blocks are written in order and the failed one had no effect:
            // the file holds the blocks before it, nothing after.
            CHECK(fs.count(MemOp::kWrite) - writes_before == k - 1);
            CHECK(Diff(ReadAll(fs, "f"), bytes.substr(0, (k - 1) * kBlock)) == "");
            CHECK(fs.count(MemOp::kTruncate) == 0);
          } else if (truncate_fails) {
            CHECK_FALSE(failed_in_append);
            CHECK(fs.count(MemOp::kWrite) - writes_before == writes);
            std::string padded = bytes;
            padded.resize(CeilDiv(length, kDirectIoAlignment) * kDirectIoAlignment, '\0');
            CHECK(Diff(ReadAll(fs, "f"), padded) == "");
          } else {
            CHECK(fs.count(MemOp::kWrite) - writes_before == writes);
            CHECK(Diff(ReadAll(fs, "f"), bytes) == "");
          }
        }
      }
    }
  }
}

TEST_CASE("block writer: a failed truncate of the padding fails Finish") {
  Prng prng(kSeed + 4);
  MemFileSystem fs;
  auto file = Create(fs, "f");
  const std::string bytes = RandomBytes(prng, 2 * kBlock + 100);
  fs.FailNth(MemOp::kTruncate, 1);
  BlockWriter writer(*file, BlockWriterOptions{.block_bytes = kBlock, .blocks = 2});
  REQUIRE(writer.direct());
  REQUIRE(AppendInPieces(writer, bytes, prng).ok());
  const Status s = writer.Finish();
  CHECK_FALSE(s.ok());
  CHECK(s.message().find("injected") != std::string::npos);
  // Everything was written, padded with zeros to the alignment.
  std::string padded = bytes;
  padded.resize(2 * kBlock + kDirectIoAlignment, '\0');
  CHECK(Diff(ReadAll(fs, "f"), padded) == "");
}

TEST_CASE("block writer: Abort drops what is queued and later calls fail") {
  Prng prng(kSeed + 5);
  INFO("seed=" << kSeed + 5);
  constexpr int kRounds = 25;
  for (bool supported : {true, false}) {
    CAPTURE(supported);
    int dropped = 0;  // rounds in which the queued block was dropped
    for (int round = 0; round < kRounds; ++round) {
      CAPTURE(round);
      MemFileSystem fs;
      fs.SetDirectIoSupported(supported);
      ProbeFile probe(Create(fs, "f"));
      const std::string bytes = RandomBytes(prng, 2 * kBlock + 100);
      probe.CloseGate();
      BlockWriter writer(probe, BlockWriterOptions{.block_bytes = kBlock, .blocks = 3});
      // Block 0 goes to the writing thread, which is held in its WriteAt;
      // block 1 waits in the queue; 100 bytes are in the block being filled.
      const Status appended = writer.Append(bytes);
      if (!appended.ok()) probe.OpenGate();  // so that a failure here cannot hang the destructor
      REQUIRE_MESSAGE(appended.ok(), appended.ToString());
      probe.WaitEntered(1);
      // Abort waits for the write in progress, so the gate is opened from
      // another thread, as Abort starts. Whether Abort takes block 1 out of
      // the queue first or the thread takes it up first is a race; Abort
      // almost always wins it, and must win it at least once in the rounds.
      std::mutex mu;
      std::condition_variable cv;
      bool aborting = false;
      std::thread opener([&] {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return aborting; });
        probe.OpenGate();
      });
      {
        std::lock_guard lock(mu);
        aborting = true;
      }
      cv.notify_all();
      writer.Abort();
      opener.join();

      const auto writes = probe.writes();
      CAPTURE(writes.size());
      CHECK(writes.size() >= 1);
      CHECK(writes.size() <= 2);  // never the partial block
      if (writes.size() == 1) ++dropped;
      for (std::size_t w = 0; w < writes.size(); ++w) {
        CHECK(writes[w].offset == w * kBlock);
        CHECK(writes[w].length == kBlock);
      }
      CHECK(Diff(ReadAll(fs, "f"), bytes.substr(0, writes.size() * kBlock)) == "");
      CHECK(probe.truncates().empty());

      const Status finish = writer.Finish();
      CHECK_FALSE(finish.ok());
      CHECK(finish.code() == StatusCode::kAborted);
      CHECK_FALSE(writer.Append("x").ok());
      writer.Abort();  // twice is harmless
      CHECK(probe.writes().size() == writes.size());
      CHECK(Diff(ReadAll(fs, "f"), bytes.substr(0, writes.size() * kBlock)) == "");
    }
    INFO("the queued block was dropped in " << dropped << " of " << kRounds << " rounds");
    CHECK(dropped >= 1);
  }
}

TEST_CASE("block writer: Abort without a held write writes only whole blocks") {
  Prng prng(kSeed + 6);
  for (std::size_t length : {std::size_t{0}, std::size_t{100}, 5 * kBlock + 100, 9 * kBlock}) {
    CAPTURE(length);
    MemFileSystem fs;
    ProbeFile probe(Create(fs, "f"));
    const std::string bytes = RandomBytes(prng, length);
    BlockWriter writer(probe, BlockWriterOptions{.block_bytes = kBlock, .blocks = 3});
    REQUIRE(AppendInPieces(writer, bytes, prng).ok());
    writer.Abort();
    const auto writes = probe.writes();
    // Only full blocks, in order, from the start; never the partial one.
    CHECK(writes.size() <= length / kBlock);
    for (std::size_t w = 0; w < writes.size(); ++w) {
      CHECK(writes[w].offset == w * kBlock);
      CHECK(writes[w].length == kBlock);
    }
    CHECK(Diff(ReadAll(fs, "f"), bytes.substr(0, writes.size() * kBlock)) == "");
    CHECK(writer.Finish().code() == StatusCode::kAborted);
    CHECK(writer.Append("x").code() == StatusCode::kAborted);
  }
}

TEST_CASE("block writer: destroying an unfinished writer is safe, even with a write held and blocks queued") {
  Prng prng(kSeed + 7);
  for (bool hold : {false, true}) {
    CAPTURE(hold);
    MemFileSystem fs;
    ProbeFile probe(Create(fs, "f"));
    const std::string bytes = RandomBytes(prng, 2 * kBlock + 5);
    std::thread opener;
    {
      if (hold) probe.CloseGate();
      BlockWriter writer(probe, BlockWriterOptions{.block_bytes = kBlock, .blocks = 3});
      const Status s = writer.Append(bytes);
      if (!s.ok()) probe.OpenGate();  // so that a failure here cannot hang the destructor
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      CHECK(writer.bytes_appended() == bytes.size());
      if (hold) {
        probe.WaitEntered(1);
        opener = std::thread([&] { probe.OpenGate(); });
      }
    }  // ~BlockWriter: aborts and joins
    if (opener.joinable()) opener.join();
    const auto writes = probe.writes();
    if (hold) CHECK(writes.size() >= 1);
    CHECK(writes.size() <= 2);
    CHECK(Diff(ReadAll(fs, "f"), bytes.substr(0, writes.size() * kBlock)) == "");
    CHECK(probe.truncates().empty());
    // The file is the caller's again: nothing writes to it any more.
    const std::uint64_t ops = fs.operation_count();
    REQUIRE(probe.Truncate(0).ok());
    CHECK(fs.operation_count() == ops + 1);
    CHECK(ReadAll(fs, "f").empty());
  }
  // A writer that never got any bytes.
  MemFileSystem fs;
  auto file = Create(fs, "g");
  { BlockWriter writer(*file); }
  CHECK(fs.count(MemOp::kWrite) == 0);
  CHECK(ReadAll(fs, "g").empty());
}

TEST_CASE("block writer: real disk (PosixFileSystem), multi-block stream with an odd tail") {
  TempDir tmp;
  PosixFileSystem fs;
  Prng prng(kSeed + 8);
  INFO("seed=" << kSeed + 8 << " dir=" << tmp.path);
  struct Case {
    std::size_t block_bytes;
    std::size_t length;
    bool try_direct;
  };
  const std::vector<Case> cases = {
      {kBlock, 9 * kBlock + 4097 + 13, true},
      {64 * 1024, 10 * 64 * 1024 + 12345, true},
      {64 * 1024, 3 * 64 * 1024 + 8192, true},  // tail a multiple of the alignment: no padding
      {kBlock, 2 * kBlock + 1, false},
      {kBlock, 4095, true},
  };
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    CAPTURE(i);
    CAPTURE(c.block_bytes);
    CAPTURE(c.length);
    CAPTURE(c.try_direct);
    const std::string path = JoinPath(tmp.path, "snap" + std::to_string(i));
    const std::string bytes = RandomBytes(prng, c.length);
    auto file = Create(fs, path);
    bool direct = false;
    {
      BlockWriter writer(*file, BlockWriterOptions{.block_bytes = c.block_bytes, .blocks = 3,
                                                   .writeback_step_bytes = 2 * c.block_bytes,
                                                   .try_direct_io = c.try_direct});
      direct = writer.direct();
      if (!c.try_direct) CHECK_FALSE(direct);
      Status s = AppendInPieces(writer, bytes, prng);
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      s = writer.Finish();
      REQUIRE_MESSAGE(s.ok(), s.ToString());
      CHECK(writer.bytes_appended() == c.length);
    }
    MESSAGE("case " << i << ": direct I/O " << std::string(direct ? "on" : "off (refused, or not tried)"));
    REQUIRE(file->Sync().ok());
    auto size = file->Size();
    REQUIRE(size.ok());
    CHECK(*size == c.length);
    REQUIRE(file->Close().ok());

    // A new handle, through the page cache.
    auto reader = fs.Open(path, OpenMode::kReadOnly);
    REQUIRE_MESSAGE(reader.ok(), reader.status().ToString());
    std::string back(c.length + 100, '\0');
    auto n = (*reader)->ReadAt(0, back.size(), back.data());
    REQUIRE(n.ok());
    CHECK(*n == c.length);
    back.resize(*n);
    CHECK(Diff(back, bytes) == "");
    CHECK(Diff(ReadAll(fs, path), bytes) == "");
  }
}
