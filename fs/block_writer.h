// BlockWriter: writes a byte stream into a new file, in large aligned blocks,
// on a thread of its own, with direct I/O where the file system allows it.
//
// For one large file written once (a snapshot): the caller appends as it
// produces, and the disk writes meanwhile.
//  - Direct I/O (File::EnableDirectIo) skips the copy into the page cache
//    and the writeback work after it: CPU that, on a small machine, the
//    producer wants. A direct write waits for its disk I/O, so the writes
//    run on the writer's own thread, while the caller fills the next block.
//  - Where direct I/O is refused (tmpfs), writes go through the page cache,
//    and writeback of what is written is started every writeback_step_bytes
//    (File::StartWriteback), so that the final Sync waits only for the tail
//    and a mass of dirty pages does not queue ahead of other files' syncs.
//    (It is started with direct I/O too, where it finds nothing to do unless
//    the file went back to the page cache.)
//  - The file stays in direct I/O mode after Finish: sync, close, rename or
//    remove it; further writes to it must be aligned.
//
// Invariants: every write but the last is a whole block at a multiple of the
// block size; with direct I/O the last is padded with zeros to
// kDirectIoAlignment and Finish then truncates the file to the stream's
// length. Nothing here syncs: the caller Syncs after Finish, so padding is
// never durable in a file it publishes. At most `blocks` blocks are held.
// Errors are sticky: after the first failed write every call returns it.
// The thread is joined by Finish, Abort or the destructor: until then the
// file must not be closed.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "fs/file_system.h"

namespace gv::fs {

struct BlockWriterOptions {
  std::size_t block_bytes = 4u << 20;                // rounded up to kDirectIoAlignment
  std::size_t blocks = 3;                            // buffers: one filling, the rest queued or writing (>= 2)
  std::uint64_t writeback_step_bytes = 8u << 20;     // without direct I/O only; 0 = never
  bool try_direct_io = true;
  bool writer_thread = true;  // false: every write on the caller's thread (what happens if none can start)
};

class BlockWriter {
 public:
  // Writes from offset 0 of `file`, which must outlive the writer. If no
  // thread can be started, writes happen on the caller's thread instead.
  explicit BlockWriter(File& file, const BlockWriterOptions& options = {});
  ~BlockWriter();
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;

  // Copies bytes into the current block; a full block goes to the writing
  // thread (waiting for a free buffer if all are taken). Returns the first
  // write error, if any.
  Status Append(std::string_view bytes);
  // Writes the rest, waits for every write, and (direct I/O) truncates the
  // padding: the file then holds exactly the bytes appended. Once only.
  Status Finish();

  // Drops what is not written yet and stops the thread: the file is then
  // the caller's again (to close or remove). Idempotent, and harmless after
  // Finish; the destructor calls it.
  void Abort();

  bool direct() const { return direct_; }
  std::uint64_t bytes_appended() const { return appended_; }

 private:
  struct FreeAligned {
    void operator()(char* p) const;
  };
  using Block = std::unique_ptr<char[], FreeAligned>;
  struct Pending {
    Block block;
    std::size_t size = 0;
    std::uint64_t offset = 0;
  };

  // Hands current_ (its first `size` bytes) to the writing thread and, if
  // need_next, takes a buffer for the next block.
  Status Submit(std::size_t size, bool need_next);
  Status Write(const Pending& pending);  // on the writing thread (or the caller's if none)
  void Run() noexcept;                   // the writing thread
  Status StopThread();                   // waits for the queue to drain, joins; the first error
  Status FirstError();

  File& file_;
  const BlockWriterOptions options_;
  const std::size_t block_bytes_;
  const std::size_t max_blocks_;
  bool direct_ = false;
  bool finished_ = false;
  std::uint64_t appended_ = 0;
  Block current_;               // being filled by Append (nullptr after an allocation failure)
  std::size_t used_ = 0;        // bytes in current_
  std::uint64_t next_offset_ = 0;  // file offset of current_[0]
  std::uint64_t writeback_from_ = 0;  // writing thread only

  std::mutex mu_;
  std::condition_variable cv_;
  // Guarded by mu_.
  std::vector<Pending> queue_;  // full blocks waiting for the writing thread, in order
  std::vector<Block> free_;     // written blocks, for reuse
  std::size_t allocated_ = 0;   // blocks that exist (current_, queued, writing, free)
  bool stop_ = false;
  Status error_;
  std::thread thread_;
  // Made up front: what Run() reports if a write throws (it cannot build a
  // Status then, which allocates).
  Status write_threw_ = Status::IOError("block writer: a write failed with an exception (out of memory?)");
};

}  // namespace gv::fs
