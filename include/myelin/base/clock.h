// Clock: where myelin code reads the monotonic time.
//
// Code that makes decisions from time (timers, timeouts, heartbeats, batching
// deadlines) takes a `const Clock&` so tests can drive it with FakeClock
// instead of sleeping. Benchmarks that only measure intervals call
// `mono_now()` directly: one vDSO clock_gettime, no virtual call.
// MonotonicClock and FakeClock are safe to read from any thread; FakeClock may
// be advanced from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace myelin {

using Nanos = std::chrono::nanoseconds;
// A point on the monotonic (CLOCK_MONOTONIC) time line, in nanoseconds.
using MonoTime = std::chrono::time_point<std::chrono::steady_clock, Nanos>;

inline MonoTime mono_now() noexcept {
  return std::chrono::time_point_cast<Nanos>(std::chrono::steady_clock::now());
}

class Clock {
 public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual MonoTime now() const noexcept = 0;
};

// The real monotonic clock.
class MonotonicClock final : public Clock {
 public:
  [[nodiscard]] MonoTime now() const noexcept override { return mono_now(); }
};

// A clock that moves only when told to. Starts at `start` (default: an
// arbitrary non-zero point so that "time zero" bugs show up).
class FakeClock final : public Clock {
 public:
  explicit FakeClock(MonoTime start = MonoTime(std::chrono::seconds(1000)))
      : ns_(start.time_since_epoch().count()) {}

  [[nodiscard]] MonoTime now() const noexcept override {
    return MonoTime(Nanos(ns_.load(std::memory_order_acquire)));
  }
  // Moves time forward; a negative step is ignored (monotonic clocks never go back).
  void advance(Nanos step) noexcept {
    if (step.count() > 0) ns_.fetch_add(step.count(), std::memory_order_acq_rel);
  }

 private:
  std::atomic<std::int64_t> ns_;
};

}  // namespace myelin
