// TimerQueue: the loop's timers, a binary min-heap keyed by (deadline, seq).
//
// `seq` grows with every insertion, so timers with equal deadlines fire in
// the order they were scheduled. Cancel is O(1): the record is erased and its
// heap entry becomes stale, skipped when it reaches the top (the heap is
// rebuilt when stale entries outnumber live ones). A callback runs moved out
// of its record, so it may cancel itself or any other timer, or schedule new
// ones, while it runs. Loop thread only; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/loop/task.h"

namespace myelin::detail {

class TimerQueue {
 public:
  // period > 0 makes a repeating timer.
  void add(std::uint64_t id, MonoTime deadline, Nanos period, Task fn);
  // False when no such timer is pending (fired, cancelled, or unknown).
  bool cancel(std::uint64_t id);
  // Destroys every pending timer without running it; returns how many.
  std::size_t cancel_all();

  [[nodiscard]] std::optional<MonoTime> next_deadline();
  [[nodiscard]] std::size_t size() const noexcept { return records_.size(); }

  // Fires every timer due at `now` (deadline <= now) that was scheduled
  // before this call, in (deadline, seq) order, through `invoke(Task&)`,
  // which must not throw. Timers scheduled by the callbacks wait for the next
  // call, so a zero-delay timer cannot starve the loop. A repeating timer is
  // re-armed at deadline + period, or now + period if it fell behind (missed
  // periods are skipped, not bunched). Returns how many fired.
  template <typename Invoke>
  std::size_t run_due(MonoTime now, Invoke&& invoke) {
    const std::uint64_t seq_limit = next_seq_;
    std::size_t fired = 0;
    while (!heap_.empty() && heap_.front().deadline <= now) {
      const Entry e = pop();
      auto it = records_.find(e.id);
      if (it == records_.end() || it->second.seq != e.seq) continue;  // stale
      if (e.seq >= seq_limit) {
        deferred_.push_back(e);
        continue;
      }
      Task fn = std::move(it->second.fn);
      invoke(fn);
      ++fired;
      it = records_.find(e.id);            // the callback may have changed the map
      if (it == records_.end()) continue;  // cancelled from inside
      if (it->second.period.count() > 0) {
        it->second.fn = std::move(fn);
        MonoTime next = e.deadline + it->second.period;
        if (next <= now) next = now + it->second.period;
        it->second.seq = next_seq_++;
        push({next, it->second.seq, e.id});
      } else {
        records_.erase(it);
      }
    }
    for (const Entry& e : deferred_) push(e);
    deferred_.clear();
    return fired;
  }

 private:
  struct Entry {
    MonoTime deadline;
    std::uint64_t seq;
    std::uint64_t id;
  };
  struct Record {
    Task fn;
    Nanos period{0};
    std::uint64_t seq = 0;
  };

  void push(const Entry& e);
  Entry pop();
  void compact();

  std::vector<Entry> heap_;
  std::vector<Entry> deferred_;
  std::unordered_map<std::uint64_t, Record> records_;
  std::uint64_t next_seq_ = 0;
};

}  // namespace myelin::detail
