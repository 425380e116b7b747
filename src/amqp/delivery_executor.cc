#include "src/amqp/delivery_executor.h"

#include <cstdio>
#include <exception>
#include <utility>

namespace myelin::amqp::detail {

void Strand::post(std::function<void()> job, bool delivery) {
  {
    std::lock_guard lock(mu_);
    if (delivery && deliveries_closed_.load(std::memory_order_relaxed)) return;
    jobs_.push_back(Job{std::move(job), delivery, generation_.load(std::memory_order_relaxed)});
    if (scheduled_) return;
    scheduled_ = true;
  }
  state_->schedule(shared_from_this());
}

void Strand::close_deliveries() {
  std::deque<Job> dropped;  // destroyed outside the lock
  std::lock_guard lock(mu_);
  deliveries_closed_.store(true, std::memory_order_release);
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    if (it->delivery) {
      dropped.push_back(std::move(*it));
      it = jobs_.erase(it);
    } else {
      ++it;
    }
  }
}

void Strand::reopen_deliveries() {
  std::lock_guard lock(mu_);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  deliveries_closed_.store(false, std::memory_order_release);
}

void Strand::drain() {
  std::deque<Job> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(jobs_);
  }
  for (auto& job : batch) {
    // Checked before each job: the channel may close while this batch runs.
    if (job.delivery && (deliveries_closed_.load(std::memory_order_acquire) ||
                         job.generation != generation_.load(std::memory_order_acquire))) {
      continue;
    }
    // A handler that throws must not take the pool thread (and the process)
    // with it; the exception stops at this boundary.
    try {
      job.fn();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "myelin amqp: a consumer callback threw: %s\n", e.what());
    } catch (...) {
      std::fprintf(stderr, "myelin amqp: a consumer callback threw a non-exception\n");
    }
  }
  // One batch per turn: if more arrived meanwhile, queue behind the other
  // ready strands instead of keeping this pool thread (fairness).
  {
    std::lock_guard lock(mu_);
    if (jobs_.empty()) {
      scheduled_ = false;
      return;
    }
  }
  state_->schedule(shared_from_this());
}

void ExecutorState::schedule(std::shared_ptr<Strand> strand) {
  {
    std::lock_guard lock(mu);
    ready.push_back(std::move(strand));
  }
  cv.notify_one();
}

void ExecutorState::worker(std::shared_ptr<ExecutorState> self) {
  for (;;) {
    std::shared_ptr<Strand> strand;
    {
      std::unique_lock lock(self->mu);
      self->cv.wait(lock, [&] { return self->stopping || !self->ready.empty(); });
      if (self->ready.empty()) return;  // stopping, and everything posted has run
      strand = std::move(self->ready.front());
      self->ready.pop_front();
    }
    strand->drain();
  }
}

DeliveryExecutor::DeliveryExecutor(unsigned threads) : state_(std::make_shared<ExecutorState>()) {
  if (threads == 0) threads = 1;
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back(ExecutorState::worker, state_);
}

DeliveryExecutor::~DeliveryExecutor() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  state_->cv.notify_all();
  for (auto& t : threads_) {
    if (t.get_id() == std::this_thread::get_id()) {
      t.detach();
    } else {
      t.join();
    }
  }
}

}  // namespace myelin::amqp::detail
