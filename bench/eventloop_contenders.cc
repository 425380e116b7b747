#include "bench/eventloop_contenders.h"

#include <sys/syscall.h>
#include <unistd.h>
#include <uv.h>

#include <asio.hpp>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

#include "myelin/base/cpu_relax.h"

namespace myelin::bench {

void LoopContender::record_tid() {
  tid_.store(static_cast<pid_t>(::syscall(SYS_gettid)), std::memory_order_release);
}

bool thread_is_sleeping(pid_t tid) {
  if (tid <= 0) return false;
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  const std::size_t paren = line.rfind(')');
  return paren != std::string::npos && paren + 2 < line.size() && line[paren + 2] == 'S';
}

// --- myelin -------------------------------------------------------------------

std::string MyelinContender::design() const {
  return "lock-free segmented MPSC queue (CAS-claimed 32-byte records, two small tasks per "
         "cache line), paced draining (chase_slip " +
         std::to_string(chase_slip_.count()) + " ns), wake only when sleeping, coalesced eventfd";
}
std::string MyelinContender::park_check() const {
  return "EventLoop::state() == sleeping (set just before epoll_pwait2) and /proc state 'S'";
}

Status MyelinContender::start(bool spin) {
  EventLoopOptions o;
  o.batch_budget = budget_;
  o.chase_slip = chase_slip_;
  o.spin_before_sleep = spin ? Nanos(std::chrono::seconds(2)) : Nanos(0);
  auto loop = EventLoop::create(std::move(o));
  if (!loop) return loop.error();
  loop_ = std::move(loop).value();
  MYELIN_RETURN_IF_ERROR(loop_->start());
  std::atomic<bool> done{false};
  MYELIN_RETURN_IF_ERROR(loop_->submit([this, &done] {
    record_tid();
    done.store(true, std::memory_order_release);
  }));
  while (!done.load(std::memory_order_acquire)) std::this_thread::yield();
  return ok_status();
}

void MyelinContender::submit(Task task) { (void)loop_->submit(std::move(task)); }

void MyelinContender::stop() {
  if (loop_) {
    (void)loop_->close();
    loop_.reset();
  }
}

bool MyelinContender::parked() const { return loop_->state() == LoopState::kSleeping; }

namespace {

// --- mutex-guarded loops (Baseline, AlternateThree) ---------------------------

// Queue policies: push() and take() run under the loop's mutex.
struct VectorSwapQueue {
  std::vector<Task> q;
  std::vector<Task> local;
  VectorSwapQueue() {
    q.reserve(4096);
    local.reserve(4096);
  }
  void push(Task&& t) { q.push_back(std::move(t)); }
  [[nodiscard]] bool empty() const { return q.empty(); }
  void take() { local.swap(q); }  // under the lock
  template <typename Fn>
  void run(Fn&& fn) {  // outside the lock
    for (Task& t : local) fn(t);
    local.clear();
  }
  void recycle() {}
};

struct ChunkedListQueue {
  static constexpr std::size_t kChunk = 128;
  struct Chunk {
    Task tasks[kChunk];
    std::size_t n = 0;
    Chunk* next = nullptr;
  };
  Chunk* head = nullptr;
  Chunk* tail = nullptr;
  Chunk* free_list = nullptr;
  Chunk* taken = nullptr;
  ~ChunkedListQueue() {
    for (Chunk* lists[] = {head, free_list, taken}; Chunk * c : lists) {
      while (c != nullptr) {
        Chunk* next = c->next;
        delete c;
        c = next;
      }
    }
  }
  void push(Task&& t) {
    if (tail == nullptr || tail->n == kChunk) {
      Chunk* c = free_list;
      if (c != nullptr) {
        free_list = c->next;
        c->next = nullptr;
        c->n = 0;
      } else {
        c = new Chunk;
      }
      if (tail != nullptr) {
        tail->next = c;
      } else {
        head = c;
      }
      tail = c;
    }
    tail->tasks[tail->n++] = std::move(t);
  }
  [[nodiscard]] bool empty() const { return head == nullptr; }
  void take() {
    taken = head;
    head = tail = nullptr;
  }
  template <typename Fn>
  void run(Fn&& fn) {
    for (Chunk* c = taken; c != nullptr; c = c->next) {
      for (std::size_t i = 0; i < c->n; ++i) {
        fn(c->tasks[i]);
        c->tasks[i].reset();
      }
    }
  }
  void recycle() {  // under the lock: the drained chunks go back to the pool
    while (taken != nullptr) {
      Chunk* next = taken->next;
      taken->next = free_list;
      free_list = taken;
      taken = next;
    }
  }
};

template <typename Queue>
class MutexLoop final : public Bulk<MutexLoop<Queue>> {
 public:
  MutexLoop(std::string name, std::string design)
      : name_(std::move(name)), design_(std::move(design)) {}
  ~MutexLoop() override { stop(); }
  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] std::string design() const override { return design_; }
  [[nodiscard]] std::string park_check() const override {
    return "its `sleeping` flag (set under the mutex before condition_variable::wait) and "
           "/proc state 'S'";
  }

  Status start(bool spin) override {
    spin_ = spin;
    thread_ = std::thread([this] { body(); });
    while (this->loop_tid() == 0) std::this_thread::yield();
    return ok_status();
  }

  void submit(Task task) override {
    bool notify = false;
    {
      std::lock_guard lock(mu_);
      queue_.push(std::move(task));
      pending_.store(true, std::memory_order_relaxed);
      notify = sleeping_;
    }
    if (notify) cv_.notify_one();
  }

  void stop() override {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    stop_requested_.store(true, std::memory_order_relaxed);
    cv_.notify_one();
    thread_.join();
  }

  [[nodiscard]] bool parked() const override { return parked_.load(std::memory_order_acquire); }

 private:
  void body() {
    this->record_tid();
    for (;;) {
      if (spin_) {
        while (!pending_.load(std::memory_order_relaxed)) {
          if (stop_requested_.load(std::memory_order_relaxed)) return;
          detail::cpu_relax();
        }
      }
      {
        std::unique_lock lock(mu_);
        while (queue_.empty() && !stop_) {
          if (spin_) break;
          sleeping_ = true;
          parked_.store(true, std::memory_order_release);
          cv_.wait(lock);
          parked_.store(false, std::memory_order_release);
          sleeping_ = false;
        }
        if (stop_ && queue_.empty()) return;
        queue_.take();
        pending_.store(false, std::memory_order_relaxed);
      }
      queue_.run([](Task& t) { t(); });
      {
        std::lock_guard lock(mu_);
        queue_.recycle();
      }
    }
  }

  std::string name_, design_;
  bool spin_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  Queue queue_;
  bool sleeping_ = false;
  bool stop_ = false;
  std::atomic<bool> pending_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> parked_{false};
  std::thread thread_;
};

// --- libuv: mutex-guarded queue drained on uv_async_send -----------------------

class UvContender final : public Bulk<UvContender> {
 public:
  ~UvContender() override { stop(); }
  [[nodiscard]] std::string name() const override {
    return "libuv " + std::string(uv_version_string());
  }
  [[nodiscard]] std::string design() const override {
    return "uv_loop + uv_async_t; producers push into a mutex-guarded vector, then uv_async_send "
           "(libuv coalesces sends while one is pending)";
  }
  [[nodiscard]] std::string park_check() const override {
    return "a uv_prepare_t/uv_check_t pair brackets the poll phase (flag set in prepare, cleared "
           "in "
           "check) and /proc state 'S'";
  }

  Status start(bool spin) override {
    spin_ = spin;
    if (uv_loop_init(&loop_) != 0) return internal_error("uv_loop_init failed");
    async_.data = this;
    prepare_.data = this;
    check_.data = this;
    uv_async_init(&loop_, &async_,
                  [](uv_async_t* a) { static_cast<UvContender*>(a->data)->drain(); });
    uv_prepare_init(&loop_, &prepare_);
    uv_prepare_start(&prepare_, [](uv_prepare_t* p) {
      static_cast<UvContender*>(p->data)->in_poll_.store(true, std::memory_order_release);
    });
    uv_check_init(&loop_, &check_);
    uv_check_start(&check_, [](uv_check_t* c) {
      static_cast<UvContender*>(c->data)->in_poll_.store(false, std::memory_order_release);
    });
    thread_ = std::thread([this] {
      record_tid();
      if (spin_) {
        while (!stop_.load(std::memory_order_acquire)) {
          uv_run(&loop_, UV_RUN_NOWAIT);
        }
      } else {
        uv_run(&loop_, UV_RUN_DEFAULT);
      }
      uv_close(reinterpret_cast<uv_handle_t*>(&async_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&prepare_), nullptr);
      uv_close(reinterpret_cast<uv_handle_t*>(&check_), nullptr);
      uv_run(&loop_, UV_RUN_DEFAULT);
      uv_loop_close(&loop_);
    });
    while (loop_tid() == 0) std::this_thread::yield();
    started_ = true;
    return ok_status();
  }

  void submit(Task task) override {
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(task));
    }
    uv_async_send(&async_);
  }

  void stop() override {
    if (!started_) return;
    started_ = false;
    stop_.store(true, std::memory_order_release);
    uv_async_send(&async_);
    thread_.join();
  }

  [[nodiscard]] bool parked() const override { return in_poll_.load(std::memory_order_acquire); }

 private:
  void drain() {
    {
      std::lock_guard lock(mu_);
      local_.swap(queue_);
    }
    for (Task& t : local_) t();
    local_.clear();
    if (stop_.load(std::memory_order_acquire)) uv_stop(&loop_);
  }

  bool spin_ = false;
  bool started_ = false;
  uv_loop_t loop_{};
  uv_async_t async_{};
  uv_prepare_t prepare_{};
  uv_check_t check_{};
  std::mutex mu_;
  std::vector<Task> queue_, local_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> in_poll_{false};
  std::thread thread_;
};

// --- asio: io_context + post ---------------------------------------------------

class AsioContender final : public Bulk<AsioContender> {
 public:
  ~AsioContender() override { stop(); }
  [[nodiscard]] std::string name() const override {
    return "asio " + std::to_string(ASIO_VERSION / 100000) + "." +
           std::to_string(ASIO_VERSION / 100 % 1000) + "." + std::to_string(ASIO_VERSION % 100);
  }
  [[nodiscard]] std::string design() const override {
    return "asio::io_context (one thread) + asio::post; its scheduler's mutex-guarded op queue "
           "and recycled op allocations";
  }
  [[nodiscard]] std::string park_check() const override {
    return "no public hook: the io_context has no outstanding work and /proc state 'S' (blocked "
           "in epoll_wait or on its condition variable)";
  }

  Status start(bool spin) override {
    guard_.emplace(asio::make_work_guard(ctx_));
    thread_ = std::thread([this, spin] {
      record_tid();
      if (spin) {
        while (!stop_.load(std::memory_order_acquire)) ctx_.poll();
      } else {
        ctx_.run();
      }
    });
    while (loop_tid() == 0) std::this_thread::yield();
    return ok_status();
  }

  void submit(Task task) override { asio::post(ctx_, std::move(task)); }

  void stop() override {
    if (!thread_.joinable()) return;
    stop_.store(true, std::memory_order_release);
    guard_.reset();
    ctx_.stop();
    thread_.join();
  }

  [[nodiscard]] bool parked() const override { return true; }

 private:
  asio::io_context ctx_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<MyelinContender> make_myelin(std::size_t batch_budget, Nanos chase_slip) {
  return std::make_unique<MyelinContender>(batch_budget, chase_slip);
}

std::unique_ptr<LoopContender> make_contender(int index) {
  switch (index) {
    case 0:
      return make_myelin(1024);
    case 1:
      return std::make_unique<MutexLoop<VectorSwapQueue>>(
          "Baseline", "mutex + std::vector, the loop swaps the vector out; condition variable");
    case 2:
      return std::make_unique<MutexLoop<ChunkedListQueue>>(
          "AlternateThree",
          "mutex + linked list of 128-task chunks (pooled), the loop detaches the list; "
          "condition variable");
    case 3:
      return std::make_unique<UvContender>();
    default:
      return std::make_unique<AsioContender>();
  }
}

}  // namespace myelin::bench
