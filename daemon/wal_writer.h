// WalWriter: moves WAL appends off the libuv loop.
//
// The loop must never wait on fdatasync. Submit() queues a record and returns
// at once; a writer thread appends everything queued since its last round
// with one AppendBatch (one write, one fdatasync in sync mode: group commit
// across HTTP requests), then hands the results back to the loop through a
// uv_async_t, where each record's callback runs — on the loop thread, in
// submission order.
//
// Ownership: the WalWriter owns its thread and its uv_async_t; Close() stops
// the thread after the queue drains and closes the handle; on_closed runs from
// the handle's close callback, after which the WalWriter may be destroyed.
#pragma once

#include <uv.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "wal/wal.h"

namespace gv::daemon {

class WalWriter {
 public:
  using Done = std::function<void(Result<wal::Lsn>)>;

  WalWriter(uv_loop_t* loop, wal::Wal& wal);
  ~WalWriter();
  WalWriter(const WalWriter&) = delete;
  WalWriter& operator=(const WalWriter&) = delete;

  // Loop thread only. `done` runs on the loop thread once the record is
  // durable per the WAL's durability mode, or failed.
  void Submit(std::string payload, Done done);
  void Close(std::function<void()> on_closed);

  std::uint64_t rounds() const { return rounds_; }  // AppendBatch calls (loop thread view)

 private:
  struct Item {
    std::string payload;
    Done done;
    Result<wal::Lsn> result = Status::Aborted("not written");
  };

  void ThreadMain();
  void DeliverCompleted();  // loop thread

  uv_loop_t* loop_;
  wal::Wal& wal_;
  uv_async_t async_{};
  std::thread thread_;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queued_;     // submitted, not yet taken by the thread
  std::deque<Item> completed_;  // written, callbacks not yet run
  bool stopping_ = false;
  std::uint64_t rounds_ = 0;

  bool closing_ = false;
  std::function<void()> on_closed_;
};

}  // namespace gv::daemon
