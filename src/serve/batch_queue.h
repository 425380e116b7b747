// BatchQueue: the batcher's bounded FIFO and its batch-forming rule, without
// threads or clocks of its own (the caller passes the time), so the rule is
// tested with a fake clock (batch_queue_test.cc). Not thread-safe: the
// batcher holds its lock around every call.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/serve/request.h"

namespace myelin::serve::detail {

class BatchQueue {
 public:
  explicit BatchQueue(std::size_t capacity) : ring_(capacity) {}

  // Takes `request` (now null) and stamps `enqueued`; false when full (the
  // request stays with the caller).
  bool push(std::unique_ptr<InferenceRequest>& request, MonoTime now);

  // Moves the next batch into `batch`: the head and the requests behind it
  // that arrived within `max_delay` of the head, while their rows fit in
  // `max_rows` (the head always goes, even alone over the limit). Requests
  // met on the way whose deadline is before `now` go to `expired` instead
  // and take no room. Both vectors are appended to; with capacity reserved
  // nothing allocates.
  void take(MonoTime now, std::size_t max_rows, Nanos max_delay,
            std::vector<std::unique_ptr<InferenceRequest>>& batch,
            std::vector<std::unique_ptr<InferenceRequest>>& expired);

  // Removes everything (for a batcher that stops without workers).
  void drain_to(std::vector<std::unique_ptr<InferenceRequest>>& out);

  // Rows of the batch take() would form now with these limits, counting
  // requests whose deadline has passed too (an upper bound); 0 when empty.
  [[nodiscard]] std::size_t next_batch_rows(std::size_t max_rows, Nanos max_delay) const noexcept;
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return ring_.size(); }

 private:
  std::unique_ptr<InferenceRequest>& at(std::size_t i) { return ring_[(head_ + i) % ring_.size()]; }
  const std::unique_ptr<InferenceRequest>& at(std::size_t i) const {
    return ring_[(head_ + i) % ring_.size()];
  }
  void pop_front();
  std::vector<std::unique_ptr<InferenceRequest>> ring_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace myelin::serve::detail
