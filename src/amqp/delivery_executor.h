// DeliveryExecutor: the thread pool that runs consumer callbacks.
//
// Deliveries leave the connection's loop thread here, so a slow handler
// never stalls I/O or heartbeats. Each channel posts to its own Strand:
// a strand runs its jobs one at a time, in post order, on whichever pool
// thread is free, which keeps per-channel delivery order while different
// channels run in parallel. post() is thread-safe. The destructor lets the
// pool finish what was posted, then joins; destroyed on one of its own
// threads (a handler dropped the last reference), it detaches that thread,
// which keeps the shared state alive until it returns.
//
// When its channel closes, a strand stops starting deliveries: those still
// queued are dropped (the broker requeues them, and they could not be acked
// anyway), so no consumer handler starts after the channel's close has been
// reported. Cancel and return handlers posted with post() still run.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace myelin::amqp::detail {

struct ExecutorState;

class Strand : public std::enable_shared_from_this<Strand> {
 public:
  explicit Strand(std::shared_ptr<ExecutorState> state) : state_(std::move(state)) {}
  void post(std::function<void()> job) { post(std::move(job), false); }
  // A consumer delivery: dropped, queued or not, once close_deliveries() ran.
  void post_delivery(std::function<void()> job) { post(std::move(job), true); }
  // Any thread; a delivery already running finishes.
  void close_deliveries();
  // Starts deliveries again (a recovered connection's new epoch). Jobs run
  // one at a time in post order, so every delivery of the old epoch has
  // ended or been dropped before one of the new epoch starts.
  void reopen_deliveries();

 private:
  friend struct ExecutorState;
  struct Job {
    std::function<void()> fn;
    bool delivery = false;
    std::uint64_t generation = 0;  // deliveries: the epoch generation it belongs to
  };
  void post(std::function<void()> job, bool delivery);
  void drain();  // on a pool thread
  std::shared_ptr<ExecutorState> state_;
  std::mutex mu_;
  std::deque<Job> jobs_;
  bool scheduled_ = false;
  std::atomic<bool> deliveries_closed_{false};
  // Bumped by reopen_deliveries(): a delivery of an older generation never
  // starts, even one already taken into a running batch.
  std::atomic<std::uint64_t> generation_{0};
};

struct ExecutorState {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Strand>> ready;
  bool stopping = false;
  void schedule(std::shared_ptr<Strand> strand);
  static void worker(std::shared_ptr<ExecutorState> self);
};

class DeliveryExecutor {
 public:
  explicit DeliveryExecutor(unsigned threads);
  ~DeliveryExecutor();
  DeliveryExecutor(const DeliveryExecutor&) = delete;
  DeliveryExecutor& operator=(const DeliveryExecutor&) = delete;

  std::shared_ptr<Strand> make_strand() { return std::make_shared<Strand>(state_); }

 private:
  std::shared_ptr<ExecutorState> state_;
  std::vector<std::thread> threads_;
};

}  // namespace myelin::amqp::detail
