#include "fs/block_writer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

namespace gv::fs {
namespace {

std::size_t RoundUp(std::size_t n, std::size_t to) { return (n + to - 1) / to * to; }

char* AllocateAligned(std::size_t bytes) {
  return static_cast<char*>(std::aligned_alloc(kDirectIoAlignment, bytes));
}

}  // namespace

void BlockWriter::FreeAligned::operator()(char* p) const { std::free(p); }

BlockWriter::BlockWriter(File& file, const BlockWriterOptions& options)
    : file_(file),
      options_(options),
      block_bytes_(RoundUp(std::max<std::size_t>(options.block_bytes, 1), kDirectIoAlignment)),
      max_blocks_(std::max<std::size_t>(options.blocks, 2)) {
  // Neither Run() (noexcept) nor Submit() may allocate once blocks move:
  // both lists have room for every block that can exist.
  free_.reserve(max_blocks_);
  queue_.reserve(max_blocks_);
  current_.reset(AllocateAligned(block_bytes_));
  allocated_ = 1;
  if (current_ == nullptr) {
    error_ = Status::IOError("block writer: cannot allocate a " + std::to_string(block_bytes_) + "-byte buffer");
    return;
  }
  direct_ = options_.try_direct_io && file_.EnableDirectIo().ok();
  if (!options_.writer_thread) return;
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error&) {
    // No thread: Submit writes on the caller's thread.
  }
}

BlockWriter::~BlockWriter() { Abort(); }

void BlockWriter::Abort() {
  {
    std::lock_guard lock(mu_);
    if (!finished_) {
      // What is queued is dropped, not written.
      for (Pending& pending : queue_) free_.push_back(std::move(pending.block));
      queue_.clear();
      finished_ = true;
    }
  }
  (void)StopThread();
}

Status BlockWriter::FirstError() {
  std::lock_guard lock(mu_);
  return error_;
}

Status BlockWriter::Append(std::string_view bytes) {
  if (finished_) return Status::Aborted("block writer: Append after Finish or Abort");
  GV_RETURN_IF_ERROR(FirstError());  // current_ is set while there is no error
  while (!bytes.empty()) {
    const std::size_t n = std::min(bytes.size(), block_bytes_ - used_);
    std::memcpy(current_.get() + used_, bytes.data(), n);
    used_ += n;
    appended_ += n;
    bytes.remove_prefix(n);
    if (used_ == block_bytes_) GV_RETURN_IF_ERROR(Submit(block_bytes_, /*need_next=*/true));
  }
  return Status::Ok();
}

Status BlockWriter::Finish() {
  if (finished_) return Status::Aborted("block writer: Finish after Finish or Abort");
  if (Status error = FirstError(); !error.ok()) {
    Abort();  // the thread may be in a write still: stop it before the caller closes the file
    return error;
  }
  const std::uint64_t length = next_offset_ + used_;
  const bool padded = direct_ && used_ % kDirectIoAlignment != 0;
  Status status;
  if (used_ > 0) {
    const std::size_t size = direct_ ? RoundUp(used_, kDirectIoAlignment) : used_;
    std::memset(current_.get() + used_, 0, size - used_);
    status = Submit(size, /*need_next=*/false);
  }
  {
    std::lock_guard lock(mu_);
    finished_ = true;
  }
  const Status written = StopThread();
  if (status.ok()) status = written;
  if (status.ok() && padded) status = file_.Truncate(length);
  return status;
}

Status BlockWriter::Submit(std::size_t size, bool need_next) {
  Pending pending{std::move(current_), size, next_offset_};
  next_offset_ += size;
  used_ = 0;
  if (!thread_.joinable()) {
    // No thread (it could not be started, or options say so): write here.
    Status status;
    try {
      status = Write(pending);
    } catch (...) {
      current_ = std::move(pending.block);  // keeps current_ set for the caller's next call
      throw;
    }
    current_ = std::move(pending.block);
    std::lock_guard lock(mu_);
    if (!status.ok() && error_.ok()) error_ = status;
    return status;
  }
  std::unique_lock lock(mu_);
  queue_.push_back(std::move(pending));  // within the reserved capacity: no allocation, no throw
  cv_.notify_all();
  if (!need_next) return error_;
  // The next block to fill: a written one, a new one while fewer than
  // max_blocks_ exist, or wait for the writing thread to finish one.
  for (;;) {
    if (!error_.ok()) return error_;
    if (!free_.empty()) {
      current_ = std::move(free_.back());
      free_.pop_back();
      return Status::Ok();
    }
    if (allocated_ < max_blocks_) {
      ++allocated_;
      lock.unlock();
      current_.reset(AllocateAligned(block_bytes_));
      if (current_ != nullptr) return Status::Ok();
      lock.lock();
      if (error_.ok()) {
        error_ = Status::IOError("block writer: cannot allocate a " + std::to_string(block_bytes_) + "-byte buffer");
      }
      return error_;
    }
    cv_.wait(lock);
  }
}

Status BlockWriter::Write(const Pending& pending) {
  GV_RETURN_IF_ERROR(file_.WriteAt(pending.offset, std::string_view(pending.block.get(), pending.size)));
  const std::uint64_t end = pending.offset + pending.size;
  // With direct I/O too: nothing to do for data written directly, but a
  // file may have gone back to the page cache (PosixFile does so where a
  // disk refuses the alignment).
  if (options_.writeback_step_bytes > 0 && end - writeback_from_ >= options_.writeback_step_bytes) {
    // A hint: if it fails, the caller's Sync writes (and reports) it all.
    (void)file_.StartWriteback(writeback_from_, end - writeback_from_);
    writeback_from_ = end;
  }
  return Status::Ok();
}

void BlockWriter::Run() noexcept {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopped, and everything queued is written
    Pending pending = std::move(queue_.front());
    queue_.erase(queue_.begin());  // at most max_blocks_ entries
    const bool failed = !error_.ok();  // after an error, later blocks are dropped
    lock.unlock();
    Status status;
    if (!failed) {
      try {
        status = Write(pending);
      } catch (...) {
        // WriteAt builds strings: bad_alloc must not cross this thread.
        status = std::move(write_threw_);
      }
    }
    lock.lock();
    if (!status.ok() && error_.ok()) error_ = std::move(status);
    free_.push_back(std::move(pending.block));  // capacity reserved: no allocation
    cv_.notify_all();
  }
}

Status BlockWriter::StopThread() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  return FirstError();
}

}  // namespace gv::fs
