#include "daemon/wal_writer.h"

namespace gv::daemon {

WalWriter::WalWriter(uv_loop_t* loop, wal::Wal& wal) : loop_(loop), wal_(wal) {
  uv_async_init(loop_, &async_, [](uv_async_t* handle) { static_cast<WalWriter*>(handle->data)->DeliverCompleted(); });
  async_.data = this;
  thread_ = std::thread([this] { ThreadMain(); });
}

WalWriter::~WalWriter() {
  if (thread_.joinable()) {
    // Close() was not called: a bug in the owner; stop the thread anyway so
    // the process does not terminate on a joinable std::thread.
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
}

void WalWriter::Submit(std::string payload, Done done) {
  if (closing_) {
    done(Status::Unavailable("the agent is shutting down; write not accepted"));
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_.push_back(Item{std::move(payload), std::move(done)});
  }
  cv_.notify_one();
}

void WalWriter::ThreadMain() {
  std::vector<Item> batch;
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queued_.empty(); });
      if (queued_.empty() && stopping_) return;
      batch.assign(std::make_move_iterator(queued_.begin()), std::make_move_iterator(queued_.end()));
      queued_.clear();
    }
    std::vector<std::string_view> payloads;
    payloads.reserve(batch.size());
    for (const Item& item : batch) payloads.emplace_back(item.payload);
    Result<wal::Lsn> first = wal_.AppendBatch(payloads);
    for (std::size_t i = 0; i < batch.size(); ++i) {
      batch[i].result = first.ok() ? Result<wal::Lsn>(*first + i) : Result<wal::Lsn>(first.status());
      batch[i].payload.clear();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++rounds_;
      for (Item& item : batch) completed_.push_back(std::move(item));
    }
    batch.clear();
    uv_async_send(&async_);
  }
}

void WalWriter::DeliverCompleted() {
  std::deque<Item> done;
  {
    std::lock_guard<std::mutex> lock(mu_);
    done.swap(completed_);
  }
  for (Item& item : done) item.done(std::move(item.result));
  if (closing_ && !thread_.joinable() && !uv_is_closing(reinterpret_cast<uv_handle_t*>(&async_))) {
    uv_close(reinterpret_cast<uv_handle_t*>(&async_), [](uv_handle_t* h) {
      auto* self = static_cast<WalWriter*>(h->data);
      if (self->on_closed_) {
        auto cb = std::move(self->on_closed_);
        cb();
      }
    });
  }
}

void WalWriter::Close(std::function<void()> on_closed) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(on_closed);
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  // The thread finishes the records already queued, then exits; joining here
  // blocks the loop for at most one batch, once, at shutdown.
  thread_.join();
  DeliverCompleted();  // runs the last callbacks and closes the handle
}

}  // namespace gv::daemon
