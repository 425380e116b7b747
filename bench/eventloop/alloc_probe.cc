// myelin-bench-alloc-probe: counts the heap allocations of myelin's
// EventLoop submit path in steady state, for `myelin bench eventloop`.
//
// The count needs a replaced global operator new (src/base/testing/
// counting_new.h), which would tax every allocation of every peer if the
// bench executable itself carried it; so it runs here, in its own process,
// and prints one JSON line:
//   {"tasks": N, "allocations": K, "modes": 2}
// over N tasks submitted after a warm-up, for a loop that parks and one that
// spins (K summed over both). Exit 0 on a count, 3 when counting is not
// compiled in (a sanitizer build), 1 on a failure.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "myelin/loop/event_loop.h"
#include "src/base/testing/counting_new.h"

namespace {

using myelin::EventLoop;

// Submits `n` tasks shaped like a real completion (two pointers and an int)
// in batches of 1,000 and waits for each batch to run.
bool pump(EventLoop& loop, std::atomic<std::uint64_t>& ran, std::uint64_t n) {
  const std::uint64_t base = ran.load();
  std::uint64_t sent = 0;
  std::uint64_t sink = 0;
  while (sent < n) {
    for (int i = 0; i < 1000 && sent < n; ++i, ++sent) {
      const int k = i;
      if (!loop.submit([&ran, &sink, k] {
                 sink += static_cast<std::uint64_t>(k);
                 ran.fetch_add(1, std::memory_order_release);
               })
               .ok())
        return false;
    }
    while (ran.load(std::memory_order_acquire) - base < sent) std::this_thread::yield();
  }
  return true;
}

// Allocations over `tasks` tasks after a warm-up that fills the queue's
// free stack beyond anything pump() needs; -1 on a failure.
long long count_one_mode(myelin::Nanos spin, std::uint64_t tasks) {
  myelin::EventLoopOptions o;
  o.spin_before_sleep = spin;
  auto created = EventLoop::create(o);
  if (!created) return -1;
  std::unique_ptr<EventLoop> loop = std::move(created).value();
  if (!loop->start().ok()) return -1;
  std::atomic<std::uint64_t> ran{0};
  std::atomic<bool> hold{true};
  if (!loop->submit([&hold] {
             while (hold.load(std::memory_order_acquire)) std::this_thread::yield();
           })
           .ok())
    return -1;
  std::uint64_t sink = 0;
  for (int i = 0; i < 2000; ++i) {
    if (!loop->submit([&ran, &sink, i] {
               sink += static_cast<std::uint64_t>(i);
               ran.fetch_add(1, std::memory_order_release);
             })
             .ok())
      return -1;
  }
  hold.store(false, std::memory_order_release);
  while (ran.load(std::memory_order_acquire) < 2000) std::this_thread::yield();
  if (!pump(*loop, ran, 100'000)) return -1;
  const std::uint64_t before = myelin::testing::allocation_count();
  if (!pump(*loop, ran, tasks)) return -1;
  const std::uint64_t allocations = myelin::testing::allocation_count() - before;
  if (!loop->shutdown().ok()) return -1;
  return static_cast<long long>(allocations);
}

}  // namespace

int main(int argc, char** argv) {
  if (!myelin::testing::kCountingNew) {
    std::puts("{\"error\": \"allocation counting is not compiled in under sanitizers\"}");
    return 3;
  }
  const std::uint64_t tasks = argc > 1 && std::atoll(argv[1]) > 0
                                  ? static_cast<std::uint64_t>(std::atoll(argv[1]))
                                  : 1'000'000;
  long long total = 0;
  for (const myelin::Nanos spin :
       {myelin::Nanos(0), myelin::Nanos(std::chrono::milliseconds(50))}) {
    const long long n = count_one_mode(spin, tasks);
    if (n < 0) {
      std::puts("{\"error\": \"the event loop failed to start, run or stop\"}");
      return 1;
    }
    total += n;
  }
  std::printf("{\"tasks\": %llu, \"allocations\": %lld, \"modes\": 2}\n",
              static_cast<unsigned long long>(tasks), total);
  return 0;
}
