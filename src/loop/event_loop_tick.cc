// One tick of the event loop, in the phase order documented in event_loop.h.
#include <sys/epoll.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>
#include <thread>

#include "src/loop/event_loop_impl.h"

namespace myelin::detail {

Status EventLoopImpl::loop() {
  const std::size_t budget = options_.batch_budget;
  for (;;) {
    bump(counters_.ticks);
    // 1. Internal lane: what was queued before the phase (bounded, so a task
    //    that re-queues itself cannot starve the rest of the tick). Once
    //    close() was asked for, phases 1-3 run nothing: phase 4 drops it.
    if (internal_.head_ready() && !closing()) {
      run_lane(internal_, TaskQueue::kBlockCap * 4);
      drain_microtasks();
    }
    // 2. External lane, up to the budget.
    const std::size_t ran = closing() ? 0 : run_lane(external_, budget);
    if (ran > 0) drain_microtasks();
    if (ran == budget && external_.head_ready()) [[unlikely]] {
      bump(counters_.overloads);
      if (options_.on_overload) options_.on_overload(budget);
    }
    // 3. Timers (no clock read at all when there are none; none after close()).
    if (timers_.size() > 0 && !closing()) {
      run_timers();
      drain_microtasks();
    }
    // 4. Lifecycle.
    if (const int mode = stop_mode_.load(std::memory_order_acquire); mode != kNoStop) [[unlikely]] {
      if (std::optional<Status> done = handle_stop(static_cast<StopMode>(mode))) return *done;
    }
    // 5. I/O, spinning or sleeping when idle.
    MYELIN_RETURN_IF_ERROR(poll_io());
    drain_microtasks();
  }
}

std::size_t EventLoopImpl::run_lane(TaskQueue& queue, std::size_t max) {
  const std::size_t n = queue.consume(max, [this](TaskQueue::Queued& t) {
    run_guarded(t, "task");
    return !closing();  // close() stops the loop after the current task, not the batch
  });
  if (n > 0) bump(counters_.tasks_run, n);
  return n;
}

void EventLoopImpl::report_thrown(const char* what, const char* exception_text) noexcept {
  try {
    report_error(
        internal_error(exception_text != nullptr
                           ? std::string("event loop: a ") + what + " threw: " + exception_text
                           : std::string("event loop: a ") + what + " threw a non-std exception"));
  } catch (...) {  // building the message ran out of memory: say what we can
    std::fprintf(stderr, "myelin: event loop: a %s threw\n", what);
  }
}

void EventLoopImpl::report_error(Status status) noexcept {
  try {
    if (options_.on_error) {
      options_.on_error(status);
    } else {
      std::fprintf(stderr, "myelin: %s\n", status.to_string().c_str());
    }
  } catch (...) {
    std::fprintf(stderr, "myelin: event loop: on_error threw while reporting: %s\n",
                 status.to_string().c_str());
  }
}

void EventLoopImpl::drain_microtasks() {
  while (!microtasks_.empty()) {
    microtasks_running_.swap(microtasks_);
    for (Task& t : microtasks_running_) run_guarded(t, "microtask");
    microtasks_running_.clear();  // keeps the capacity: no allocation next time
  }
}

void EventLoopImpl::run_timers() {
  const std::size_t fired =
      timers_.run_due(clock_->now(), [this](Task& t) { run_guarded(t, "timer callback"); });
  if (fired > 0) bump(counters_.timers_fired, fired);
}

std::size_t EventLoopImpl::drop_all(TaskQueue& queue) {
  // The queue is closed, so the tail is frozen; a claimed record whose
  // producer is still writing becomes ready within a few instructions.
  std::size_t dropped = 0;
  while (queue.has_claimed()) {
    const std::size_t n = queue.drop(TaskQueue::kBlockCap);
    if (n == 0) std::this_thread::yield();
    dropped += n;
  }
  if (dropped > 0) bump(counters_.tasks_dropped, dropped);
  return dropped;
}

std::optional<Status> EventLoopImpl::handle_stop(StopMode mode) {
  if (state_.load(std::memory_order_relaxed) != LoopState::kTerminating) {
    set_state(LoopState::kTerminating);
    external_.close();
    bump(counters_.timers_cancelled, timers_.cancel_all());
  }
  if (mode == kImmediate) {
    internal_.close();
    const std::size_t dropped = drop_all(external_) + drop_all(internal_);
    microtasks_.clear();
    if (dropped == 0) return ok_status();
    return cancelled("event loop closed: " + std::to_string(dropped) +
                     " queued task(s) were dropped unrun");
  }
  const MonoTime deadline(Nanos(stop_deadline_ns_.load(std::memory_order_acquire)));
  if (deadline != MonoTime::max() && clock_->now() >= deadline) {
    internal_.close();
    const std::size_t dropped = drop_all(external_) + drop_all(internal_);
    microtasks_.clear();
    if (dropped == 0) return ok_status();
    return deadline_exceeded("event loop shutdown: the deadline passed with " +
                             std::to_string(dropped) + " queued task(s); they were dropped unrun");
  }
  if (external_.has_claimed() || !microtasks_.empty()) return std::nullopt;  // keep draining
  // External work is done: close the internal lane and finish what it holds.
  internal_.close();
  while (internal_.has_claimed() || !microtasks_.empty()) {
    if (run_lane(internal_, TaskQueue::kBlockCap) == 0 && microtasks_.empty()) {
      std::this_thread::yield();
    }
    drain_microtasks();
  }
  return ok_status();
}

bool EventLoopImpl::spin_for_work() {
  if (spin_budget_.count() <= 0) return false;
  MonoTime end = mono_now() + spin_budget_;
  if (timers_.size() > 0) {
    if (std::optional<MonoTime> next = timers_.next_deadline()) {
      // Timers use the loop's clock; assume it advances like the real one.
      end = std::min(end, mono_now() + (*next - clock_->now()));
    }
  }
  // Poll the head units with one pause between looks. Each look pulls the
  // head unit's line into this core, but producers claim write ownership of
  // lines a few units ahead (TaskQueue::kPrefetchAhead), so looking
  // often costs a burst little; backing off to 8 pauses between looks (about
  // 200 ns on this VM) measured no faster for bursts and added ~60 ns to the
  // awake round trip.
  for (std::uint32_t i = 1;; ++i) {
    if (external_.head_ready() || internal_.head_ready()) {
      spin_budget_ = options_.spin_before_sleep;  // work arrives while spinning: keep spinning
      return true;
    }
    if ((i & 63) == 0) {
      if (stop_mode_.load(std::memory_order_relaxed) != kNoStop || mono_now() >= end) break;
      if ((i & 1023) == 0 && !io_.empty()) return false;  // let epoll look at the fds
    }
    cpu_relax();
  }
  // Nothing came: spin half as long next time (but not below 1/8 of the max).
  spin_budget_ = std::max(spin_budget_ / 2, options_.spin_before_sleep / 8);
  return false;
}

Status EventLoopImpl::poll_io() {
  const bool have_work =
      external_.head_ready() || internal_.head_ready() || !microtasks_.empty() || io_pending_;
  const bool stopping = stop_mode_.load(std::memory_order_acquire) != kNoStop;
  if (have_work || stopping) {
    // Busy: look at the fds without blocking, and only if there are any.
    if (!io_.empty()) return sleep_or_poll(Nanos(0));
    if (stopping && !have_work) std::this_thread::yield();  // a producer mid-write
    return ok_status();
  }
  if (spin_for_work()) return ok_status();

  // Park. Publish kSleeping, then re-check (seq_cst on both sides): a
  // producer either sees kSleeping and wakes us, or we see its task here.
  set_state(LoopState::kSleeping);
  if (external_.has_claimed() || internal_.has_claimed() ||
      stop_mode_.load(std::memory_order_seq_cst) != kNoStop) {
    state_.store(LoopState::kRunning, std::memory_order_relaxed);
    return ok_status();
  }
  std::optional<Nanos> timeout;
  if (timers_.size() > 0) {
    if (std::optional<MonoTime> next = timers_.next_deadline()) {
      timeout = std::max(Nanos(0), *next - clock_->now());
    }
  }
  bump(counters_.sleeps);
  Status s = sleep_or_poll(timeout);
  state_.store(LoopState::kRunning, std::memory_order_seq_cst);
  return s;
}

Status EventLoopImpl::sleep_or_poll(std::optional<Nanos> timeout) {
  bump(counters_.io_polls);
  MYELIN_ASSIGN_OR_RETURN(std::span<const epoll_event> events, poller_.wait(timeout));
  io_pending_ = events.size() == Poller::kMaxEvents;
  for (const epoll_event& ev : events) {
    if (ev.data.u64 == Poller::kWakeToken) {
      bump(counters_.wakeups, poller_.drain_wake());
      wake_pending_.store(false, std::memory_order_release);
    } else {
      dispatch_io(ev.data.u64, ev.events);
    }
  }
  return ok_status();
}

void EventLoopImpl::dispatch_io(std::uint64_t token, std::uint32_t epoll_events) {
  const int fd = static_cast<int>(token & 0xffffffffu);
  const auto generation = static_cast<std::uint32_t>(token >> 32);
  auto it = io_.find(fd);
  // Gone or replaced by an earlier callback of this batch: the event is stale.
  if (it == io_.end() || it->second->generation != generation) return;
  std::uint32_t events = 0;
  if ((epoll_events & EPOLLIN) != 0) events |= kIoReadable;
  if ((epoll_events & EPOLLOUT) != 0) events |= kIoWritable;
  if ((epoll_events & EPOLLERR) != 0) events |= kIoError;
  if ((epoll_events & (EPOLLHUP | EPOLLRDHUP)) != 0) events |= kIoHangup;
  io_current_ = it->second.get();
  try {
    io_current_->callback(events);
  } catch (const std::exception& e) {
    report_error(internal_error("event loop: the callback for fd " + std::to_string(fd) +
                                " threw: " + e.what()));
  } catch (...) {
    report_error(internal_error("event loop: the callback for fd " + std::to_string(fd) +
                                " threw a non-std exception"));
  }
  io_current_ = nullptr;
  io_zombie_.reset();
}

}  // namespace myelin::detail
