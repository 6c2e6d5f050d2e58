#pragma once
// The worker threads: one io_context per thread, so a session's handlers always run on the
// thread that owns it and its I/O never needs another thread woken up.
//
// A session lives on the context it was accepted onto. Servers are shared by all threads; a
// server leased by a session on another thread has its socket moved to that session's context
// first (see server_pool::acquire), which costs two epoll_ctl calls instead of a cross-thread
// wake-up per message.
#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/asio.hpp"

namespace sluice::proxy {

// `workers: 0` means half the CPU cores, at least one. A pooler usually shares its machine
// with PostgreSQL or with the application, and a worker thread that often runs out of work
// pays a sleep and a wake-up each time. Measured on 2 cores shared with PostgreSQL and
// pgbench (-S, 50 clients): 1 worker spent 25-27 ms of CPU per 1000 transactions, 2 workers
// 30-31, for the same throughput. A machine that runs only sluice should set `workers` to
// its core count.
inline unsigned worker_count(unsigned configured) {
  if (configured > 0) return configured;
  return std::max(1u, std::thread::hardware_concurrency() / 2);
}

class worker_set {
  // io_context's shutdown() is protected; the set needs it to tear down in two phases.
  struct context : asio::io_context {
    using asio::execution_context::shutdown;
    using asio::io_context::io_context;
  };

 public:
  explicit worker_set(unsigned count) {
    for (unsigned i = 0; i < count; ++i) {
      contexts_.push_back(std::make_unique<context>(1));
      // A context with nothing to do yet must keep running: work is posted to it later.
      guards_.push_back(asio::make_work_guard(*contexts_.back()));
    }
  }

  // Where the next session or server goes: round robin.
  asio::any_io_executor next() {
    const auto i = next_.fetch_add(1, std::memory_order_relaxed) % contexts_.size();
    return contexts_[i]->get_executor();
  }
  asio::io_context& first() { return *contexts_.front(); }
  std::size_t size() const { return contexts_.size(); }

  // Runs every context, one per thread (the calling thread runs the first), until stop().
  void run() {
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i)
      threads.emplace_back([&context = *contexts_[i]] { context.run(); });
    contexts_.front()->run();
    for (auto& thread : threads) thread.join();
  }
  void stop() {
    guards_.clear();
    for (auto& context : contexts_) context->stop();
  }

  // Two phases: first every context drops its pending handlers (coroutine frames included),
  // while all contexts still exist, because a frame on one may own a timer or socket of
  // another; only then are the contexts destroyed.
  ~worker_set() {
    guards_.clear();
    for (auto& context : contexts_) context->shutdown();
  }
  worker_set(const worker_set&) = delete;
  worker_set& operator=(const worker_set&) = delete;

 private:
  std::vector<std::unique_ptr<context>> contexts_;
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
  std::atomic<std::size_t> next_{0};
};

}  // namespace sluice::proxy
