// Poller: the loop's epoll instance and its wake-up eventfd.
//
// Sleeps with epoll_pwait2 (nanosecond timeouts, so timers are not rounded to
// milliseconds) and falls back to epoll_wait with the timeout rounded *up*
// when the kernel lacks it: the loop may wake late by under a millisecond,
// never early (TimerQueue checks deadlines anyway). Loop thread only, except
// wake(), which any thread may call.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/base/status.h"

namespace myelin::detail {

class Poller {
 public:
  static constexpr std::size_t kMaxEvents = 128;
  // epoll data value reserved for the eventfd.
  static constexpr std::uint64_t kWakeToken = ~std::uint64_t{0};

  static Result<Poller> create();
  Poller(Poller&& other) noexcept;
  Poller& operator=(Poller&&) = delete;
  Poller(const Poller&) = delete;
  ~Poller();

  Status add(int fd, std::uint32_t epoll_events, std::uint64_t token);
  Status modify(int fd, std::uint32_t epoll_events, std::uint64_t token);
  Status remove(int fd);

  // Waits up to `timeout` (nullopt: forever; zero: poll). Returns the ready
  // events (a view into an internal buffer, valid until the next wait) or an
  // io_error; EINTR yields an empty span.
  Result<std::span<const epoll_event>> wait(std::optional<Nanos> timeout);

  // Any thread: makes the eventfd readable (one 8-byte write).
  void wake() noexcept;
  // Loop thread: resets the eventfd; returns the number of wake() calls it
  // absorbed.
  std::uint64_t drain_wake() noexcept;

 private:
  Poller(int epfd, int evfd) noexcept : epfd_(epfd), evfd_(evfd) {}

  int epfd_ = -1;
  int evfd_ = -1;
  bool have_pwait2_ = true;
  std::array<epoll_event, kMaxEvents> events_{};
};

}  // namespace myelin::detail
