// EventLoop: lifecycle, public entry points and fd registration. The tick
// itself is in event_loop_tick.cc.
#include "myelin/loop/event_loop.h"

#include <sys/epoll.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <system_error>

#include "src/loop/event_loop_impl.h"

namespace myelin {

std::string_view to_string(LoopState state) noexcept {
  switch (state) {
    case LoopState::kAwake:
      return "awake";
    case LoopState::kRunning:
      return "running";
    case LoopState::kSleeping:
      return "sleeping";
    case LoopState::kTerminating:
      return "terminating";
    case LoopState::kTerminated:
      return "terminated";
  }
  return "unknown";
}

namespace detail {
namespace {

// The loop this thread is running, if any: in_loop_thread() is one TLS load.
thread_local const EventLoopImpl* t_current_loop = nullptr;

std::uint32_t to_epoll(std::uint32_t interest) {
  std::uint32_t ev = 0;
  if ((interest & kIoReadable) != 0) ev |= EPOLLIN | EPOLLRDHUP;
  if ((interest & kIoWritable) != 0) ev |= EPOLLOUT;
  return ev;
}

}  // namespace

EventLoopImpl::EventLoopImpl(EventLoopOptions options, Poller poller)
    : options_(std::move(options)),
      external_(options_.chase_slip),
      internal_(options_.chase_slip),
      clock_(options_.clock != nullptr ? options_.clock : &mono_clock_),
      poller_(std::move(poller)),
      spin_budget_(options_.spin_before_sleep) {
  microtasks_.reserve(64);
  microtasks_running_.reserve(64);
}

EventLoopImpl::~EventLoopImpl() {
  if (in_loop_thread()) {
    std::fprintf(stderr, "myelin: event loop destroyed from inside its own callback\n");
    std::abort();
  }
  (void)stop(kImmediate, MonoTime::max());
}

bool EventLoopImpl::in_loop_thread() const noexcept { return t_current_loop == this; }

void EventLoopImpl::wake_sleeper() noexcept {
  // One eventfd write per sleep, however many producers see kSleeping.
  if (!wake_pending_.exchange(true, std::memory_order_acq_rel)) poller_.wake();
}

Status EventLoopImpl::push_error(TaskQueue::PushResult r, bool internal) const {
  if (r == TaskQueue::PushResult::kNoMemory) {
    return resource_exhausted("event loop: out of memory for a queue block");
  }
  return closed(std::string("event loop: ") + (internal ? "internal lane" : "submit") +
                " refused, the loop is " +
                std::string(to_string(state_.load(std::memory_order_relaxed))) +
                " (shutdown or close was requested)");
}

Status EventLoopImpl::empty_task_error() {
  return invalid_argument(
      "event loop: submit: empty task (a default-constructed or moved-from Task)");
}

Result<TimerId> EventLoopImpl::schedule(Nanos delay, Nanos period, Task fn) {
  if (!fn) return invalid_argument("event loop: schedule: empty callback");
  if (stop_mode_.load(std::memory_order_acquire) != kNoStop) {
    return closed("event loop: schedule refused, shutdown or close was requested");
  }
  const TimerId id = next_timer_id_.fetch_add(1, std::memory_order_relaxed);
  const MonoTime deadline = clock_->now() + std::max(delay, Nanos(0));
  if (in_loop_thread()) {
    timers_.add(id, deadline, period, std::move(fn));
    return id;
  }
  Task add = [this, id, deadline, period, fn = std::move(fn)]() mutable {
    timers_.add(id, deadline, period, std::move(fn));
  };
  MYELIN_RETURN_IF_ERROR(push(internal_, add));
  return id;
}

Status EventLoopImpl::cancel(TimerId id) {
  if (in_loop_thread()) {
    if (timers_.cancel(id)) return ok_status();
    return not_found("event loop: timer " + std::to_string(id) +
                     " is not pending (it fired, was cancelled, or never existed)");
  }
  Task task = [this, id] { (void)timers_.cancel(id); };
  return push(internal_, task);
}

Status EventLoopImpl::register_fd(int fd, std::uint32_t interest, EventLoop::IoCallback cb) {
  if (!may_touch_loop_state()) {
    return failed_precondition("event loop: register_fd(" + std::to_string(fd) +
                               ") must be called on the loop thread");
  }
  if (fd < 0) return invalid_argument("event loop: register_fd: negative fd");
  if ((interest & ~(kIoReadable | kIoWritable)) != 0) {
    return invalid_argument("event loop: register_fd(" + std::to_string(fd) +
                            "): interest may only hold kIoReadable and kIoWritable");
  }
  if (!cb) return invalid_argument("event loop: register_fd: empty callback");
  if (io_.contains(fd)) {
    return Status(ErrorCode::kAlreadyExists,
                  "event loop: fd " + std::to_string(fd) + " is already registered");
  }
  auto entry = std::make_unique<IoEntry>();
  entry->callback = std::move(cb);
  entry->interest = interest;
  entry->generation = ++io_generation_;
  const std::uint64_t token =
      (std::uint64_t{entry->generation} << 32) | static_cast<std::uint32_t>(fd);
  MYELIN_RETURN_IF_ERROR(poller_.add(fd, to_epoll(interest), token));
  io_.emplace(fd, std::move(entry));
  return ok_status();
}

Status EventLoopImpl::modify_fd(int fd, std::uint32_t interest) {
  if (!may_touch_loop_state()) {
    return failed_precondition("event loop: modify_fd(" + std::to_string(fd) +
                               ") must be called on the loop thread");
  }
  if ((interest & ~(kIoReadable | kIoWritable)) != 0) {
    return invalid_argument("event loop: modify_fd(" + std::to_string(fd) +
                            "): interest may only hold kIoReadable and kIoWritable");
  }
  auto it = io_.find(fd);
  if (it == io_.end()) {
    return not_found("event loop: modify_fd: fd " + std::to_string(fd) + " is not registered");
  }
  const std::uint64_t token =
      (std::uint64_t{it->second->generation} << 32) | static_cast<std::uint32_t>(fd);
  MYELIN_RETURN_IF_ERROR(poller_.modify(fd, to_epoll(interest), token));
  it->second->interest = interest;
  return ok_status();
}

Status EventLoopImpl::unregister_fd(int fd) {
  if (!may_touch_loop_state()) {
    return failed_precondition("event loop: unregister_fd(" + std::to_string(fd) +
                               ") must be called on the loop thread");
  }
  auto it = io_.find(fd);
  if (it == io_.end()) {
    return not_found("event loop: unregister_fd: fd " + std::to_string(fd) + " is not registered");
  }
  // The fd may already be closed by its owner (epoll then dropped it): the
  // registration goes away either way.
  Status s = poller_.remove(fd);
  if (it->second.get() == io_current_) io_zombie_ = std::move(it->second);  // still running
  io_.erase(it);
  if (!s.ok() && s.message().find("Bad file descriptor") != std::string_view::npos) {
    return ok_status();
  }
  return s;
}

LoopStats EventLoopImpl::stats() const noexcept {
  const auto r = [](const std::atomic<std::uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
  };
  return LoopStats{r(counters_.tasks_run),    r(counters_.tasks_dropped),
                   r(counters_.timers_fired), r(counters_.timers_cancelled),
                   r(counters_.ticks),        r(counters_.sleeps),
                   r(counters_.wakeups),      r(counters_.io_polls),
                   r(counters_.overloads),    external_.slips() + internal_.slips()};
}

// --- lifecycle -------------------------------------------------------------

bool EventLoopImpl::claim_start() {
  std::lock_guard lock(mu_);
  if (started_) return false;
  started_ = true;
  started_flag_.store(true, std::memory_order_release);
  return true;
}

Status EventLoopImpl::run() {
  if (t_current_loop != nullptr) {
    return failed_precondition(
        "event loop: run() called on a thread that is already running an event loop");
  }
  if (!claim_start()) {
    return failed_precondition("event loop: run() called on a loop that is already " +
                               std::string(to_string(state_.load())));
  }
  return run_claimed();
}

Status EventLoopImpl::run_claimed() {
  const EventLoopImpl* previous = t_current_loop;  // non-null only for a drain from stop()
  t_current_loop = this;
  set_state(LoopState::kRunning);
  Status status = loop();
  // Whatever way the loop ended, nothing is accepted or kept any more.
  if (state_.load(std::memory_order_relaxed) != LoopState::kTerminating) {
    set_state(LoopState::kTerminating);
  }
  external_.close();
  internal_.close();
  drop_all(external_);
  drop_all(internal_);
  microtasks_.clear();
  bump(counters_.timers_cancelled, timers_.cancel_all());
  io_.clear();
  set_state(LoopState::kTerminated);
  t_current_loop = previous;
  {
    std::lock_guard lock(mu_);
    terminated_ = true;
    final_status_ = status;
  }
  terminated_cv_.notify_all();
  return status;
}

Status EventLoopImpl::start_thread() {
  if (t_current_loop != nullptr) {
    return failed_precondition("event loop: start() called from an event loop thread");
  }
  if (!claim_start()) {
    return failed_precondition("event loop: start() called on a loop that is already " +
                               std::string(to_string(state_.load())));
  }
  try {
    std::lock_guard lock(join_mu_);
    thread_ = std::thread([this] { (void)run_claimed(); });
  } catch (const std::system_error& e) {
    // Leave the loop usable by run() on the caller's thread.
    std::lock_guard lock(mu_);
    started_ = false;
    started_flag_.store(false, std::memory_order_release);
    return resource_exhausted(std::string("event loop: start(): cannot create a thread: ") +
                              e.what());
  }
  return ok_status();
}

Status EventLoopImpl::wait() {
  if (in_loop_thread()) {
    return failed_precondition("event loop: wait() called on the loop thread (it would deadlock)");
  }
  {
    std::lock_guard lock(join_mu_);
    if (thread_.joinable()) thread_.join();
  }
  std::unique_lock lock(mu_);
  terminated_cv_.wait(lock, [this] { return terminated_; });
  return final_status_;
}

Status EventLoopImpl::stop(StopMode mode, MonoTime deadline) {
  if (mode == kGraceful) {
    int expected = kNoStop;
    stop_deadline_ns_.store(deadline.time_since_epoch().count(), std::memory_order_release);
    stop_mode_.compare_exchange_strong(expected, kGraceful, std::memory_order_seq_cst);
  } else {
    stop_mode_.store(kImmediate, std::memory_order_seq_cst);
  }
  external_.close();  // refuse new external work from this moment
  poller_.wake();     // unconditional: a stop is rare and must not be missed
  if (in_loop_thread()) return ok_status();
  // Never ran: do the drain here, on the caller's thread.
  if (claim_start()) return run_claimed();
  return wait();
}

}  // namespace detail

// --- EventLoop: thin forwarding to the implementation ----------------------

Result<std::unique_ptr<EventLoop>> EventLoop::create(EventLoopOptions options) {
  if (options.batch_budget == 0) {
    return invalid_argument("event loop: batch_budget must be at least 1");
  }
  if (options.spin_before_sleep.count() < 0) {
    return invalid_argument("event loop: spin_before_sleep must not be negative");
  }
  if (options.chase_slip.count() < 0) {
    return invalid_argument("event loop: chase_slip must not be negative");
  }
  MYELIN_ASSIGN_OR_RETURN(detail::Poller poller, detail::Poller::create());
  auto impl = std::make_unique<detail::EventLoopImpl>(std::move(options), std::move(poller));
  return std::unique_ptr<EventLoop>(new EventLoop(std::move(impl)));
}

EventLoop::EventLoop(std::unique_ptr<detail::EventLoopImpl> impl) : impl_(std::move(impl)) {}
EventLoop::~EventLoop() = default;

Status EventLoop::run() { return impl_->run(); }
Status EventLoop::start() { return impl_->start_thread(); }

Status EventLoop::submit(Task task) { return impl_->push(impl_->external_, task); }
Status EventLoop::submit_internal(Task task) { return impl_->push(impl_->internal_, task); }

Status EventLoop::dispatch(Task task) {
  if (!task) return detail::EventLoopImpl::empty_task_error();
  if (impl_->in_loop_thread()) {
    impl_->run_guarded(task, "task");
    return ok_status();
  }
  return impl_->push(impl_->external_, task);
}

Status EventLoop::queue_microtask(Task task) {
  if (!impl_->in_loop_thread()) {
    return failed_precondition("event loop: queue_microtask must be called on the loop thread");
  }
  if (!task) return invalid_argument("event loop: queue_microtask: empty task");
  impl_->microtasks_.push_back(std::move(task));
  return ok_status();
}

Result<TimerId> EventLoop::schedule(Nanos delay, Task fn) {
  return impl_->schedule(delay, Nanos(0), std::move(fn));
}

Result<TimerId> EventLoop::schedule_every(Nanos period, Task fn) {
  if (period.count() <= 0) {
    return invalid_argument("event loop: schedule_every: the period must be positive, got " +
                            std::to_string(period.count()) + " ns");
  }
  return impl_->schedule(period, period, std::move(fn));
}

Status EventLoop::cancel(TimerId id) { return impl_->cancel(id); }

Status EventLoop::register_fd(int fd, std::uint32_t interest, IoCallback callback) {
  return impl_->register_fd(fd, interest, std::move(callback));
}
Status EventLoop::modify_fd(int fd, std::uint32_t interest) {
  return impl_->modify_fd(fd, interest);
}
Status EventLoop::unregister_fd(int fd) { return impl_->unregister_fd(fd); }

Status EventLoop::shutdown(MonoTime deadline) {
  return impl_->stop(detail::EventLoopImpl::kGraceful, deadline);
}
Status EventLoop::close() {
  return impl_->stop(detail::EventLoopImpl::kImmediate, MonoTime::max());
}
Status EventLoop::wait() { return impl_->wait(); }

LoopState EventLoop::state() const noexcept {
  return impl_->state_.load(std::memory_order_acquire);
}
bool EventLoop::in_loop_thread() const noexcept { return impl_->in_loop_thread(); }
LoopStats EventLoop::stats() const noexcept { return impl_->stats(); }
const EventLoopOptions& EventLoop::options() const noexcept { return impl_->options_; }

}  // namespace myelin
