// EventLoopImpl: the state behind myelin::EventLoop (see event_loop.h for the
// contract and docs/event-loop.md for the design). The tick lives in
// event_loop_tick.cc, lifecycle and the public entry points in event_loop.cc.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "myelin/loop/event_loop.h"
#include "src/loop/poller.h"
#include "src/loop/task_queue.h"
#include "src/loop/timer_queue.h"

namespace myelin::detail {

class EventLoopImpl {
 public:
  EventLoopImpl(EventLoopOptions options, Poller poller);
  ~EventLoopImpl();

  // --- any thread -------------------------------------------------------
  // The hot path: push, then wake only a sleeping loop (see event_loop.h).
  Status push(TaskQueue& queue, Task& task) noexcept {
    if (!task) [[unlikely]]
      return empty_task_error();
    const TaskQueue::PushResult r = queue.push(task);
    if (r != TaskQueue::PushResult::kOk) [[unlikely]] {
      return push_error(r, &queue == &internal_);
    }
    if (state_.load(std::memory_order_seq_cst) == LoopState::kSleeping) [[unlikely]] {
      wake_sleeper();
    }
    return Status();
  }
  void wake_sleeper() noexcept;
  Status push_error(TaskQueue::PushResult r, bool internal) const;
  static Status empty_task_error();

  Result<TimerId> schedule(Nanos delay, Nanos period, Task fn);
  Status cancel(TimerId id);

  enum StopMode : int { kNoStop = 0, kGraceful = 1, kImmediate = 2 };
  Status stop(StopMode mode, MonoTime deadline);
  Status start_thread();
  Status run();
  Status wait();

  [[nodiscard]] bool in_loop_thread() const noexcept;
  [[nodiscard]] LoopStats stats() const noexcept;
  [[nodiscard]] bool may_touch_loop_state() const noexcept {
    return in_loop_thread() || !started_flag_.load(std::memory_order_acquire);
  }

  // --- loop thread (or before the loop first runs) -----------------------
  Status register_fd(int fd, std::uint32_t interest, EventLoop::IoCallback cb);
  Status modify_fd(int fd, std::uint32_t interest);
  Status unregister_fd(int fd);
  // Runs a Task or a TaskQueue::Queued; an exception goes to on_error.
  template <typename F>
  void run_guarded(F& task, const char* what) noexcept {
    try {
      task();
    } catch (const std::exception& e) {
      report_thrown(what, e.what());
    } catch (...) {
      report_thrown(what, nullptr);
    }
  }

  EventLoopOptions options_;
  TaskQueue external_;
  TaskQueue internal_;
  std::atomic<LoopState> state_{LoopState::kAwake};
  std::vector<Task> microtasks_;

 private:
  struct IoEntry {
    EventLoop::IoCallback callback;
    std::uint32_t interest = 0;
    std::uint32_t generation = 0;
  };

  // Relaxed counters written by the loop thread only.
  struct Counters {
    std::atomic<std::uint64_t> tasks_run{0}, tasks_dropped{0}, timers_fired{0}, timers_cancelled{0},
        ticks{0}, sleeps{0}, wakeups{0}, io_polls{0}, overloads{0};
  };
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }

  // event_loop_tick.cc
  Status loop();
  std::size_t run_lane(TaskQueue& queue, std::size_t max);
  // close() was asked for: nothing more runs (loop thread; a relaxed load).
  [[nodiscard]] bool closing() const noexcept {
    return stop_mode_.load(std::memory_order_relaxed) == kImmediate;
  }
  void drain_microtasks();
  void run_timers();
  std::optional<Status> handle_stop(StopMode mode);
  Status poll_io();
  bool spin_for_work();
  Status sleep_or_poll(std::optional<Nanos> timeout);
  void dispatch_io(std::uint64_t token, std::uint32_t epoll_events);
  std::size_t drop_all(TaskQueue& queue);
  void report_error(Status status) noexcept;
  void report_thrown(const char* what, const char* exception_text) noexcept;

  // event_loop.cc
  bool claim_start();
  Status run_claimed();
  void set_state(LoopState s) noexcept { state_.store(s, std::memory_order_seq_cst); }

  const Clock* clock_;
  MonotonicClock mono_clock_;
  Poller poller_;
  TimerQueue timers_;
  std::atomic<TimerId> next_timer_id_{1};
  std::atomic<bool> wake_pending_{false};
  std::vector<Task> microtasks_running_;
  Nanos spin_budget_;
  bool io_pending_ = false;  // last poll returned a full event buffer

  std::unordered_map<int, std::unique_ptr<IoEntry>> io_;
  std::uint32_t io_generation_ = 0;
  IoEntry* io_current_ = nullptr;
  std::unique_ptr<IoEntry> io_zombie_;  // unregistered by its own callback

  std::atomic<int> stop_mode_{kNoStop};
  std::atomic<std::int64_t> stop_deadline_ns_{INT64_MAX};
  Counters counters_;

  // Lifecycle, guarded by mu_.
  std::mutex mu_;
  std::condition_variable terminated_cv_;
  bool started_ = false;
  bool terminated_ = false;
  Status final_status_;
  std::atomic<bool> started_flag_{false};
  std::mutex join_mu_;
  std::thread thread_;
};

}  // namespace myelin::detail
