// The five event loops `myelin bench eventloop` compares, behind one small
// interface so every scenario drives them identically.
//
// All contenders run the same task type (myelin::Task) so the comparison is
// about the queue and the wake-up, not about callable storage; asio posts
// the Task as its handler (asio adds its own operation object around it).
// Each contender can run "spinning" (the loop busy-polls when idle: the
// awake case) or "blocking" (it parks in the kernel when idle).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "myelin/base/status.h"
#include "myelin/loop/event_loop.h"
#include "myelin/loop/task.h"

namespace myelin::bench {

// A counter written only by the loop thread (store, not RMW) and read by
// the producer: the cheapest honest "it ran" signal, the same for all.
struct alignas(64) RunCounter {
  std::atomic<std::uint64_t> n{0};
  void bump() noexcept {
    n.store(n.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }
  [[nodiscard]] std::uint64_t get() const noexcept { return n.load(std::memory_order_acquire); }
};

class LoopContender {
 public:
  virtual ~LoopContender() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual std::string design() const = 0;
  // How parked() is decided, for the report's method text.
  [[nodiscard]] virtual std::string park_check() const = 0;
  virtual Status start(bool spin) = 0;
  // Any thread. The benchmark only submits while the loop runs.
  virtual void submit(Task task) = 0;
  // Submits `n` tasks that each bump `ran`, back to back: the throughput
  // scenarios' inner loop, compiled inside each contender (see Bulk) so a
  // virtual call per task does not sit in every contender's figure.
  virtual void submit_bumps(RunCounter& ran, std::size_t n) = 0;
  // Stops and joins; tasks still queued may be dropped (callers wait first).
  virtual void stop() = 0;
  // The contender's own evidence that its loop thread is parked (in addition
  // to the kernel's view, see thread_is_sleeping()).
  [[nodiscard]] virtual bool parked() const = 0;
  [[nodiscard]] pid_t loop_tid() const { return tid_.load(std::memory_order_acquire); }

 protected:
  void record_tid();
  std::atomic<pid_t> tid_{0};
};

// Implements submit_bumps with the contender's own submit, called directly
// (the contender classes are final, so the call is not virtual).
template <typename Self, typename Base = LoopContender>
class Bulk : public Base {
 public:
  using Base::Base;
  void submit_bumps(RunCounter& ran, std::size_t n) final {
    Self& self = static_cast<Self&>(*this);
    for (std::size_t i = 0; i < n; ++i) self.Self::submit([&ran] { ran.bump(); });
  }
};

// 0: myelin, 1: Baseline, 2: AlternateThree, 3: libuv, 4: asio.
inline constexpr int kContenderCount = 5;
std::unique_ptr<LoopContender> make_contender(int index);
// myelin with a given batch budget (for the budget sweep) and pacing slip
// (zero: pacing off, for the ablation); also gives access to the loop
// (timers, stats).
class MyelinContender;
std::unique_ptr<MyelinContender> make_myelin(std::size_t batch_budget,
                                             Nanos chase_slip = EventLoopOptions{}.chase_slip);

class MyelinContender final : public Bulk<MyelinContender> {
 public:
  MyelinContender(std::size_t batch_budget, Nanos chase_slip)
      : budget_(batch_budget), chase_slip_(chase_slip) {}
  ~MyelinContender() override { stop(); }
  [[nodiscard]] std::string name() const override { return "myelin"; }
  [[nodiscard]] std::string design() const override;
  [[nodiscard]] std::string park_check() const override;
  Status start(bool spin) override;
  void submit(Task task) override;
  void stop() override;
  [[nodiscard]] bool parked() const override;
  EventLoop& loop() { return *loop_; }

 private:
  std::size_t budget_;
  Nanos chase_slip_;
  std::unique_ptr<EventLoop> loop_;
};

// Reads /proc/self/task/<tid>/stat: true when the kernel has the thread in
// interruptible sleep ('S'), i.e. blocked in epoll_wait/futex, not running.
bool thread_is_sleeping(pid_t tid);

}  // namespace myelin::bench
