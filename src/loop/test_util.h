// Helpers shared by the loop tests.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "myelin/loop/event_loop.h"

namespace myelin::testing {

// Polls `cond` (yielding) until it holds or `limit` passes. For conditions
// with no event to wait on (a loop state); never a substitute for ordering.
inline bool eventually(const std::function<bool()>& cond,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::yield();
  }
  return true;
}

inline std::unique_ptr<EventLoop> make_loop(EventLoopOptions options = {}) {
  auto loop = EventLoop::create(std::move(options));
  if (!loop) std::abort();
  return std::move(loop).value();
}

}  // namespace myelin::testing
