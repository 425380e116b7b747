#include "src/serve/batch_queue.h"

namespace myelin::serve::detail {

bool BatchQueue::push(std::unique_ptr<InferenceRequest>& request, MonoTime now) {
  if (size_ == ring_.size()) return false;
  request->enqueued = now;
  at(size_) = std::move(request);
  ++size_;
  return true;
}

void BatchQueue::pop_front() {
  head_ = (head_ + 1) % ring_.size();
  --size_;
}

void BatchQueue::take(MonoTime now, std::size_t max_rows, Nanos max_delay,
                      std::vector<std::unique_ptr<InferenceRequest>>& batch,
                      std::vector<std::unique_ptr<InferenceRequest>>& expired) {
  std::size_t rows = 0;
  MonoTime head_arrival{};
  bool have_head = false;
  while (size_ > 0) {
    std::unique_ptr<InferenceRequest>& r = at(0);
    if (r->deadline < now) {
      expired.push_back(std::move(r));
      pop_front();
      continue;
    }
    if (have_head) {
      if (r->enqueued - head_arrival > max_delay || rows + r->rows > max_rows) break;
    } else {
      have_head = true;
      head_arrival = r->enqueued;
    }
    rows += r->rows;
    batch.push_back(std::move(r));
    pop_front();
  }
}

std::size_t BatchQueue::next_batch_rows(std::size_t max_rows, Nanos max_delay) const noexcept {
  if (size_ == 0) return 0;
  const MonoTime head_arrival = at(0)->enqueued;
  std::size_t rows = at(0)->rows;
  for (std::size_t i = 1; i < size_; ++i) {
    const InferenceRequest& r = *at(i);
    if (r.enqueued - head_arrival > max_delay || rows + r.rows > max_rows) break;
    rows += r.rows;
  }
  return rows;
}

void BatchQueue::drain_to(std::vector<std::unique_ptr<InferenceRequest>>& out) {
  while (size_ > 0) {
    out.push_back(std::move(at(0)));
    pop_front();
  }
}

}  // namespace myelin::serve::detail
