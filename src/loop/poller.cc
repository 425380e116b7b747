#include "src/loop/poller.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <string>

namespace myelin::detail {

Result<Poller> Poller::create() {
  const int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) return errno_error("event loop: epoll_create1", errno);
  const int evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (evfd < 0) {
    const int err = errno;
    ::close(epfd);
    return errno_error("event loop: eventfd", err);
  }
  Poller p(epfd, evfd);
  MYELIN_RETURN_IF_ERROR(p.add(evfd, EPOLLIN, kWakeToken));
  return Result<Poller>(std::in_place, std::move(p));
}

Poller::Poller(Poller&& other) noexcept
    : epfd_(other.epfd_), evfd_(other.evfd_), have_pwait2_(other.have_pwait2_) {
  other.epfd_ = -1;
  other.evfd_ = -1;
}

Poller::~Poller() {
  if (evfd_ >= 0) ::close(evfd_);
  if (epfd_ >= 0) ::close(epfd_);
}

Status Poller::add(int fd, std::uint32_t epoll_events, std::uint64_t token) {
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.u64 = token;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    return errno_error("event loop: epoll_ctl(ADD, fd " + std::to_string(fd) + ")", errno);
  }
  return ok_status();
}

Status Poller::modify(int fd, std::uint32_t epoll_events, std::uint64_t token) {
  epoll_event ev{};
  ev.events = epoll_events;
  ev.data.u64 = token;
  if (epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) != 0) {
    return errno_error("event loop: epoll_ctl(MOD, fd " + std::to_string(fd) + ")", errno);
  }
  return ok_status();
}

Status Poller::remove(int fd) {
  if (epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) != 0) {
    return errno_error("event loop: epoll_ctl(DEL, fd " + std::to_string(fd) + ")", errno);
  }
  return ok_status();
}

Result<std::span<const epoll_event>> Poller::wait(std::optional<Nanos> timeout) {
  const int max = static_cast<int>(events_.size());
  int n;
  if (have_pwait2_) {
    timespec ts{};
    timespec* tsp = nullptr;
    if (timeout) {
      const std::int64_t ns = timeout->count() < 0 ? 0 : timeout->count();
      ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
      ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
      tsp = &ts;
    }
    n = epoll_pwait2(epfd_, events_.data(), max, tsp, nullptr);
    if (n < 0 && errno == ENOSYS) {
      have_pwait2_ = false;
      return wait(timeout);
    }
  } else {
    int ms = -1;
    if (timeout) {
      const std::int64_t ns = timeout->count() < 0 ? 0 : timeout->count();
      const std::int64_t up = (ns + 999'999) / 1'000'000;  // round up: never early
      ms = up > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(up);
    }
    n = epoll_wait(epfd_, events_.data(), max, ms);
  }
  if (n < 0) {
    if (errno == EINTR) return std::span<const epoll_event>();
    return errno_error("event loop: epoll_wait", errno);
  }
  return std::span<const epoll_event>(events_.data(), static_cast<std::size_t>(n));
}

void Poller::wake() noexcept {
  const std::uint64_t one = 1;
  // EAGAIN means the counter is saturated: the loop is already woken.
  [[maybe_unused]] const ssize_t r = ::write(evfd_, &one, sizeof(one));
}

std::uint64_t Poller::drain_wake() noexcept {
  std::uint64_t count = 0;
  if (::read(evfd_, &count, sizeof(count)) != sizeof(count)) return 0;
  return count;
}

}  // namespace myelin::detail
