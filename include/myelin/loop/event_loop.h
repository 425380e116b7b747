// EventLoop: the reactor under every other part of myelin (network I/O, the
// AMQP connection thread, the inference server).
//
// One loop is one thread that runs tasks submitted from any thread, timers,
// and callbacks for file descriptors that became readable or writable
// (epoll). Objects owned by a loop are used on the loop thread only; other
// threads enter through submit().
//
// One tick, in this order (run() follows it exactly):
//   1. internal lane: every task submit_internal() queued before the phase;
//   2. external lane: up to `batch_budget` tasks from submit(); if the budget
//      ran out with tasks left, `on_overload` is called (both lanes drain
//      paced: see `chase_slip`);
//   3. timers: every timer due at the phase's start, in (deadline, seq) order;
//   4. lifecycle: a requested shutdown()/close() is acted on;
//   5. I/O: epoll. When no task is ready the loop first spins for up to
//      `spin_before_sleep` (adaptive), then sleeps in epoll until the next
//      timer deadline, an fd event, or a wake-up. With work pending it polls
//      without blocking, and only if an fd is registered (no syscall per tick
//      otherwise).
// Microtasks (queue_microtask) are drained after each of phases 1, 2, 3 and 5.
//
// Wake-up: a producer pushes first, then reads the loop state; only if the
// loop is `kSleeping` does it write the eventfd, and a pending flag lets one
// write serve a whole burst. The loop publishes `kSleeping` and then re-checks
// the queue (both seq_cst), so a task is either seen or the wake is sent.
//
// Ownership: the loop owns its tasks, timers and fd callbacks, not the file
// descriptors. An EventLoop is created by create() and is not movable; its
// destructor closes it (like close()) and joins a thread started by start().
//
// Thread-safety, method by method:
//   any thread:  submit, submit_internal, dispatch, schedule, schedule_every,
//                cancel, shutdown, close, state, in_loop_thread, stats, wait
//   loop thread: queue_microtask; register_fd, modify_fd, unregister_fd (also
//                allowed before the loop first runs)
//   once:        run or start (a second call, or run() from inside a loop
//                thread, returns failed_precondition)
// No exception crosses this API: calls report through Status/Result. A task
// that throws does not stop the loop; the exception goes to `on_error`.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/loop/task.h"

namespace myelin {

namespace detail {
class EventLoopImpl;
}  // namespace detail

// Lifecycle; changed in one place (the loop thread, plus run()'s entry/exit).
//   kAwake -> kRunning <-> kSleeping -> kTerminating -> kTerminated
// kAwake: created, not running yet. kRunning: processing a tick.
// kSleeping: parked in epoll (a producer must wake it). kTerminating:
// shutdown/close in progress, external submits fail. kTerminated: final.
enum class LoopState : std::uint8_t { kAwake, kRunning, kSleeping, kTerminating, kTerminated };

std::string_view to_string(LoopState state) noexcept;

// Readiness bits for register_fd / modify_fd and the callback's argument.
enum IoEvents : std::uint32_t {
  kIoReadable = 1u << 0,
  kIoWritable = 1u << 1,
  kIoError = 1u << 2,   // reported, never requested
  kIoHangup = 1u << 3,  // reported, never requested
};

using TimerId = std::uint64_t;  // 0 is never a valid id

struct EventLoopOptions {
  // External tasks one tick runs before timers and I/O get their turn.
  std::size_t batch_budget = 1024;
  // Longest spin (checking the queues, no syscalls) before parking in epoll.
  // Adaptive: halves after a spin that found nothing, doubles back toward
  // this value after one that did. Zero parks at once.
  Nanos spin_before_sleep = std::chrono::microseconds(20);
  // Pacing: when the loop finds itself draining right behind producers that
  // are still submitting, it waits up to this long (spinning, touching no
  // shared memory) for them to pull ahead, so that the two sides stop
  // trading the cache lines both are touching (docs/event-loop.md). A lone
  // task, and the first task after the queue was found empty, never waits; a
  // batch whose producer has stopped waits a quarter of this (the look that
  // tells the two cases apart); no task waits more than one slip. Zero turns
  // pacing off.
  Nanos chase_slip = std::chrono::microseconds(1);
  // The clock timers read; null means the monotonic clock. Must outlive the
  // loop. With a FakeClock, advance it and then submit any task to wake the
  // loop so it re-reads the time.
  const Clock* clock = nullptr;
  // A task, timer or fd callback threw; the argument says which and what.
  // Runs on the loop thread. Default: print to stderr.
  std::function<void(const Status&)> on_error;
  // The external batch budget ran out with tasks still queued; the argument
  // is the budget that was used. Runs on the loop thread.
  std::function<void(std::size_t)> on_overload;
};

// Counters for tests and benchmarks; each read is atomic, the set is not a
// snapshot.
struct LoopStats {
  std::uint64_t tasks_run = 0;      // external + internal
  std::uint64_t tasks_dropped = 0;  // destroyed unrun by shutdown/close
  std::uint64_t timers_fired = 0;
  std::uint64_t timers_cancelled_at_stop = 0;
  std::uint64_t ticks = 0;
  std::uint64_t sleeps = 0;       // times the loop parked in epoll
  std::uint64_t wakeups = 0;      // eventfd writes the loop consumed
  std::uint64_t io_polls = 0;     // epoll calls (blocking or not)
  std::uint64_t overloads = 0;    // ticks that left external work behind
  std::uint64_t chase_slips = 0;  // pacing waits for producers to pull ahead
};

class EventLoop {
 public:
  using IoCallback = std::function<void(std::uint32_t events)>;

  // Creates the epoll instance and the wake-up eventfd.
  static Result<std::unique_ptr<EventLoop>> create(EventLoopOptions options = {});

  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs the loop on the calling thread until shutdown() or close().
  // Returns the outcome of the stop (see shutdown), or failed_precondition
  // when the loop already runs, ran, or this thread runs a loop.
  Status run();
  // Runs the loop on a thread the EventLoop owns (joined by shutdown/close
  // or the destructor).
  Status start();

  // Queues `task` to run on the loop thread. Lock-free; allocates nothing
  // for inline-sized tasks once the queue has warmed up. Tasks from one
  // thread run in submission order. Fails with `closed` once shutdown or
  // close began; then the task is destroyed without running.
  Status submit(Task task);
  // The loop's own priority lane (runs before external tasks each tick, is
  // not subject to the batch budget, and stays open while terminating).
  Status submit_internal(Task task);
  // Runs `task` inline when called on the loop thread, else submit().
  Status dispatch(Task task);
  // Loop thread only: runs `task` after the current phase's batch.
  Status queue_microtask(Task task);

  // Runs `fn` once, `delay` from now on the loop's clock, never earlier.
  Result<TimerId> schedule(Nanos delay, Task fn);
  // Runs `fn` every `period` (> 0), first after one period.
  Result<TimerId> schedule_every(Nanos period, Task fn);
  // On the loop thread: not_found if the timer already fired or never
  // existed. From another thread the cancel is queued on the internal lane
  // (ok means queued).
  Status cancel(TimerId id);

  // fd readiness (level-triggered). `interest` is kIoReadable|kIoWritable.
  // The callback runs on the loop thread; it may unregister its own or any
  // other fd. The loop does not close fds.
  Status register_fd(int fd, std::uint32_t interest, IoCallback callback);
  Status modify_fd(int fd, std::uint32_t interest);
  Status unregister_fd(int fd);

  // Graceful stop: external submits fail from now on; tasks already queued
  // run until `deadline` (on the loop's clock); then what is left is dropped
  // and the result is deadline_exceeded naming how many. Pending timers are
  // cancelled (destroyed without running). From another thread this waits
  // for the loop to finish and returns the outcome (running the drain itself
  // if the loop never ran); from the loop thread it only requests the stop
  // and returns ok, and run() returns the outcome.
  Status shutdown(MonoTime deadline = MonoTime::max());
  // Immediate stop: the loop stops after the current task, drops queued
  // tasks and cancels timers. Same waiting rules as shutdown.
  Status close();

  // Blocks until the loop is terminated (not from the loop thread).
  Status wait();

  [[nodiscard]] LoopState state() const noexcept;
  [[nodiscard]] bool in_loop_thread() const noexcept;
  [[nodiscard]] LoopStats stats() const noexcept;
  [[nodiscard]] const EventLoopOptions& options() const noexcept;

 private:
  explicit EventLoop(std::unique_ptr<detail::EventLoopImpl> impl);
  std::unique_ptr<detail::EventLoopImpl> impl_;
};

}  // namespace myelin
