#include "src/loop/timer_queue.h"

#include <algorithm>

namespace myelin::detail {
namespace {

// std::*_heap build a max-heap; "later" ordering makes the earliest on top.
struct Later {
  template <typename E>
  bool operator()(const E& a, const E& b) const noexcept {
    if (a.deadline != b.deadline) return a.deadline > b.deadline;
    return a.seq > b.seq;
  }
};

}  // namespace

void TimerQueue::add(std::uint64_t id, MonoTime deadline, Nanos period, Task fn) {
  const std::uint64_t seq = next_seq_++;
  records_[id] = Record{std::move(fn), period, seq};
  push({deadline, seq, id});
}

bool TimerQueue::cancel(std::uint64_t id) {
  if (records_.erase(id) == 0) return false;
  if (heap_.size() > 64 && heap_.size() > 2 * records_.size()) compact();
  return true;
}

std::size_t TimerQueue::cancel_all() {
  const std::size_t n = records_.size();
  // Move out first: a callable's destructor might call back into the queue.
  auto doomed = std::move(records_);
  records_.clear();
  heap_.clear();
  doomed.clear();
  return n;
}

std::optional<MonoTime> TimerQueue::next_deadline() {
  while (!heap_.empty()) {
    const Entry& top = heap_.front();
    auto it = records_.find(top.id);
    if (it != records_.end() && it->second.seq == top.seq) return top.deadline;
    pop();
  }
  return std::nullopt;
}

void TimerQueue::push(const Entry& e) {
  heap_.push_back(e);
  std::push_heap(heap_.begin(), heap_.end(), Later{});
}

TimerQueue::Entry TimerQueue::pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  const Entry e = heap_.back();
  heap_.pop_back();
  return e;
}

void TimerQueue::compact() {
  std::erase_if(heap_, [this](const Entry& e) {
    auto it = records_.find(e.id);
    return it == records_.end() || it->second.seq != e.seq;
  });
  std::make_heap(heap_.begin(), heap_.end(), Later{});
}

}  // namespace myelin::detail
