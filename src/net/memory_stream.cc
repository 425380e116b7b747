// The in-process duplex pair: a memory pipe between two Streams.
//
// Each direction is a single-producer/single-consumer byte ring whose
// positions count bytes and only grow (the ring index is position & mask).
// The producer owns `tail`, the consumer owns `head`.
//
// Waking a parked side without a system call per write: a side about to
// park (in wait(), or its loop about to sleep after a callback) raises its
// `waiting` flag and checks again before it parks on its eventfd; a side
// that moved bytes checks the peer's flag after publishing its new position
// and writes the peer's eventfd only if the flag was up (taking it down).
// Both the flag store and the position store are sequentially consistent
// and each side loads the other's afterwards, so at least one of them sees
// the other: either the parker sees the new bytes, or the mover sees the
// flag. read() and writev() that find nothing to move leave the flag alone,
// so a caller that retries them (a spinning reader) costs its peer nothing.
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "myelin/base/cpu_relax.h"
#include "myelin/net/ring_pool.h"
#include "myelin/net/stream.h"
#include "src/net/fd_wait.h"

namespace myelin::net {
namespace {

constexpr auto kSeqCst = std::memory_order_seq_cst;
constexpr auto kAcquire = std::memory_order_acquire;
constexpr auto kRelaxed = std::memory_order_relaxed;

// A ring's bytes. From a page up, the pages are mapped twice, back to back
// (a memfd mapped at `base` and again at `base + capacity`), so a run of up
// to `capacity` bytes that starts anywhere in the first copy is contiguous
// in memory even where it wraps: a zero-copy window (Stream::write_window,
// read_window) is then always the whole free room or the whole readable
// run, and a record can be sealed or opened where it lies. Smaller rings,
// or a system that refuses the mapping, use one heap block and windows that
// stop at the wrap.
class RingMemory {
 public:
  RingMemory() = default;
  explicit RingMemory(std::size_t capacity) : capacity_(capacity) {
    if (capacity % page_size() == 0 && map_twice()) return;
    heap_ = std::make_unique_for_overwrite<std::byte[]>(capacity);
    data_ = heap_.get();
  }
  ~RingMemory() {
    if (heap_ == nullptr && data_ != nullptr) ::munmap(data_, 2 * capacity_);
  }
  RingMemory(RingMemory&& o) noexcept
      : capacity_(std::exchange(o.capacity_, 0)),
        data_(std::exchange(o.data_, nullptr)),
        heap_(std::move(o.heap_)) {}
  RingMemory& operator=(RingMemory&& o) noexcept {  // `o` frees what this held
    std::swap(capacity_, o.capacity_);
    std::swap(data_, o.data_);
    std::swap(heap_, o.heap_);
    return *this;
  }

  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  [[nodiscard]] bool mirrored() const noexcept { return heap_ == nullptr; }

 private:
  static std::size_t page_size() noexcept {
    static const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return page;
  }
  bool map_twice() noexcept {
    const int fd = ::memfd_create("myelin-ring", MFD_CLOEXEC);
    if (fd < 0) return false;
    void* base = MAP_FAILED;
    if (::ftruncate(fd, static_cast<off_t>(capacity_)) == 0) {
      base = ::mmap(nullptr, 2 * capacity_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    bool ok = base != MAP_FAILED;
    for (std::size_t copy = 0; ok && copy < 2; ++copy) {
      void* at = static_cast<std::byte*>(base) + copy * capacity_;
      ok = ::mmap(at, capacity_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0) == at;
    }
    ::close(fd);  // the mappings keep the memory
    if (!ok) {
      if (base != MAP_FAILED) ::munmap(base, 2 * capacity_);
      return false;
    }
    data_ = static_cast<std::byte*>(base);
    return true;
  }

  std::size_t capacity_ = 0;
  std::byte* data_ = nullptr;
  std::unique_ptr<std::byte[]> heap_;  // set when not mirrored
};

}  // namespace

// The pool's free rings (see myelin/net/ring_pool.h). On this project's VM
// (shadow page tables) a fresh ring per pipe made a two-thread pooled
// handshake over a new pipe 166 µs instead of 86 µs.
struct RingPool::Impl {
  explicit Impl(std::size_t max_bytes) : max_cached_bytes(max_bytes) {}
  const std::size_t max_cached_bytes;
  mutable std::mutex mu;
  std::vector<RingMemory> free;
  std::size_t cached_bytes = 0;
};

namespace detail {
struct RingPoolAccess {
  static RingMemory take(RingPool* pool, std::size_t capacity) {
    if (pool != nullptr) {
      RingPool::Impl& im = *pool->impl_;
      std::lock_guard lock(im.mu);
      for (auto it = im.free.begin(); it != im.free.end(); ++it) {
        if (it->capacity() != capacity) continue;
        RingMemory mem = std::move(*it);
        im.free.erase(it);
        im.cached_bytes -= capacity;
        return mem;
      }
    }
    return RingMemory(capacity);
  }

  // Keeps `mem` for reuse if the pool has room; otherwise `mem` frees it.
  static void give(RingPool* pool, RingMemory mem) {
    if (pool == nullptr || mem.data() == nullptr) return;
    RingPool::Impl& im = *pool->impl_;
    std::lock_guard lock(im.mu);
    if (im.cached_bytes + mem.capacity() > im.max_cached_bytes) return;
    im.cached_bytes += mem.capacity();
    im.free.push_back(std::move(mem));
  }
};
}  // namespace detail

std::shared_ptr<RingPool> RingPool::create(std::size_t max_cached_bytes) {
  return std::shared_ptr<RingPool>(new RingPool(std::make_unique<Impl>(max_cached_bytes)));
}
RingPool::RingPool(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RingPool::~RingPool() = default;
std::size_t RingPool::cached_bytes() const {
  std::lock_guard lock(impl_->mu);
  return impl_->cached_bytes;
}
std::size_t RingPool::cached_rings() const {
  std::lock_guard lock(impl_->mu);
  return impl_->free.size();
}
std::size_t RingPool::max_cached_bytes() const noexcept { return impl_->max_cached_bytes; }

namespace {

class Ring {
 public:
  // Takes its memory from `pool` (when there is one) and gives it back there.
  Ring(std::size_t capacity, std::shared_ptr<RingPool> pool)
      : mask_(capacity - 1),
        pool_(std::move(pool)),
        mem_(detail::RingPoolAccess::take(pool_.get(), capacity)) {}
  ~Ring() { detail::RingPoolAccess::give(pool_.get(), std::move(mem_)); }
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  [[nodiscard]] std::size_t capacity() const noexcept { return mask_ + 1; }

  // Consumer side.
  [[nodiscard]] std::size_t readable() const noexcept {
    return tail_.load(kSeqCst) - head_.load(kRelaxed);
  }
  std::size_t take(std::span<std::byte> into) noexcept {
    const std::size_t head = head_.load(kRelaxed);
    const std::size_t n = std::min(into.size(), tail_.load(kAcquire) - head);
    if (n == 0) return 0;  // a retrying reader leaves the producer's line alone
    copy_out(head, into.data(), n);
    head_.store(head + n, kSeqCst);
    return n;
  }
  // The readable bytes as one run (up to the wrap when not mirrored); the
  // consumer may change them in place until it releases them.
  [[nodiscard]] std::span<std::byte> read_window() const noexcept {
    const std::size_t head = head_.load(kRelaxed);
    return run(head, tail_.load(kAcquire) - head);
  }
  void release(std::size_t n) noexcept { head_.store(head_.load(kRelaxed) + n, kSeqCst); }

  // Producer side.
  [[nodiscard]] std::size_t writable() const noexcept {
    return capacity() - (tail_.load(kRelaxed) - head_.load(kSeqCst));
  }
  std::size_t put(std::span<const iovec> iov) noexcept {
    const std::size_t tail = tail_.load(kRelaxed);
    std::size_t room = capacity() - (tail - head_.load(kAcquire));
    if (room == 0) return 0;
    std::size_t at = tail;
    for (const iovec& v : iov) {
      const std::size_t n = std::min(room, v.iov_len);
      copy_in(at, static_cast<const std::byte*>(v.iov_base), n);
      at += n;
      room -= n;
      if (room == 0) break;
    }
    tail_.store(at, kSeqCst);
    return at - tail;
  }
  // The free room as one run (up to the wrap when not mirrored).
  [[nodiscard]] std::span<std::byte> write_window() const noexcept {
    const std::size_t tail = tail_.load(kRelaxed);
    return run(tail, capacity() - (tail - head_.load(kAcquire)));
  }
  void publish(std::size_t n) noexcept { tail_.store(tail_.load(kRelaxed) + n, kSeqCst); }
  // Whether write_window() could ever offer `n` bytes: a mirrored ring up to
  // its capacity, another only up to its end (the tail stays put meanwhile).
  [[nodiscard]] bool could_offer(std::size_t n) const noexcept {
    const std::size_t limit =
        mem_.mirrored() ? capacity() : capacity() - (tail_.load(kRelaxed) & mask_);
    return n <= limit;
  }

  // Set once by the producer (no more bytes) and by the consumer (no
  // longer reading); never cleared.
  std::atomic<bool> writer_closed{false};
  std::atomic<bool> reader_closed{false};

 private:
  [[nodiscard]] std::span<std::byte> run(std::size_t pos, std::size_t n) const noexcept {
    const std::size_t at = pos & mask_;
    return {mem_.data() + at, mem_.mirrored() ? n : std::min(n, capacity() - at)};
  }
  void copy_in(std::size_t pos, const std::byte* from, std::size_t n) noexcept {
    const std::size_t at = pos & mask_;
    const std::size_t first = mem_.mirrored() ? n : std::min(n, capacity() - at);
    std::memcpy(mem_.data() + at, from, first);
    std::memcpy(mem_.data(), from + first, n - first);
  }
  void copy_out(std::size_t pos, std::byte* to, std::size_t n) const noexcept {
    const std::size_t at = pos & mask_;
    const std::size_t first = mem_.mirrored() ? n : std::min(n, capacity() - at);
    std::memcpy(to, mem_.data() + at, first);
    std::memcpy(to + first, mem_.data(), n - first);
  }

  alignas(64) std::atomic<std::size_t> head_{0};
  alignas(64) std::atomic<std::size_t> tail_{0};
  alignas(64) const std::size_t mask_;
  std::shared_ptr<RingPool> pool_;  // may be null: no reuse
  RingMemory mem_;
};

// What one end parks on.
struct Side {
  int event_fd = -1;
  std::atomic<bool> waiting{false};
};

void signal(const Side& side) noexcept {
  const std::uint64_t one = 1;
  // Cannot fail on a live eventfd short of counter overflow (2^64 - 2 wakes).
  (void)!::write(side.event_fd, &one, sizeof(one));
}

// Wakes `side` if it said it was about to park.
void wake_if_waiting(Side& side) noexcept {
  if (side.waiting.load(kSeqCst) && side.waiting.exchange(false, kSeqCst)) signal(side);
}

void drain(const Side& side) noexcept {
  std::uint64_t count = 0;
  (void)!::read(side.event_fd, &count, sizeof(count));
}

struct Pipe {
  Pipe(std::size_t capacity, const std::shared_ptr<RingPool>& pool)
      : rings{Ring(capacity, pool), Ring(capacity, pool)} {}
  ~Pipe() {
    for (Side& s : sides) {
      if (s.event_fd >= 0) ::close(s.event_fd);
    }
  }
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;

  Ring rings[2];  // rings[i] is written by end i
  Side sides[2];
};

class MemoryStream final : public Stream {
 public:
  MemoryStream(std::shared_ptr<Pipe> pipe, int end, std::string name, Nanos spin)
      : Stream(std::move(name)),
        spin_(spin),
        pipe_(std::move(pipe)),
        in_(pipe_->rings[1 - end]),
        out_(pipe_->rings[end]),
        self_(pipe_->sides[end]),
        other_(pipe_->sides[1 - end]) {}
  ~MemoryStream() override { MemoryStream::close(); }

  Result<IoResult> read(std::span<std::byte> into) override {
    if (closed_) return failed_precondition("read " + peer() + ": the stream is closed");
    if (into.empty()) return IoResult{};
    std::size_t n = in_.take(into);
    if (n == 0) {
      if (!in_.writer_closed.load(kSeqCst)) return IoResult{0, true, false};
      n = in_.take(into);  // bytes written just before the shutdown
      if (n == 0) return IoResult{0, false, true};
    }
    wake_if_waiting(other_);
    return IoResult{n, false, false};
  }

  Result<IoResult> writev(std::span<const iovec> iov) override {
    if (closed_ || write_shut_) {
      return failed_precondition("write " + peer() + ": the write half is shut down");
    }
    if (out_.reader_closed.load(kAcquire)) return errno_error("write " + peer(), EPIPE);
    const std::size_t n = out_.put(iov);
    if (n == 0) {
      bool empty = true;
      for (const iovec& v : iov) empty = empty && v.iov_len == 0;
      return IoResult{0, !empty, false};
    }
    wake_if_waiting(other_);
    return IoResult{n, false, false};
  }

  std::span<std::byte> write_window() override {
    if (closed_ || write_shut_ || out_.reader_closed.load(kAcquire)) return {};
    return out_.write_window();
  }

  bool wait_window(std::size_t n, MonoTime deadline) override {
    if (closed_ || write_shut_ || !out_.could_offer(n)) return false;
    const Result<bool> room = park_until(
        [this, n] { return out_.reader_closed.load(kAcquire) || out_.write_window().size() >= n; },
        deadline);
    return room && *room && !out_.reader_closed.load(kAcquire);
  }

  void commit_write(std::size_t n) override {
    if (n == 0) return;
    out_.publish(n);
    wake_if_waiting(other_);
  }

  std::span<std::byte> read_window() override {
    if (closed_) return {};
    return in_.read_window();
  }

  void consume_read(std::size_t n) override {
    if (n == 0) return;
    in_.release(n);
    wake_if_waiting(other_);
  }

  Status shutdown_write() override {
    if (closed_ || write_shut_) return ok_status();
    write_shut_ = true;
    out_.writer_closed.store(true, kSeqCst);
    signal(other_);
    return ok_status();
  }

  Status watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io) override {
    if (closed_) return failed_precondition("Stream::watch: " + peer() + " is closed");
    if (loop_ != nullptr) return failed_precondition("Stream::watch: " + peer() + " is watched");
    // The loop keeps this callback alive while it runs, even if the stream is
    // destroyed inside `on_io`; `alive` tells it whether `this` still is.
    auto cb = [this, alive = alive_, on_io = std::move(on_io)](std::uint32_t) {
      if (*alive) dispatch(on_io, alive);
    };
    MYELIN_RETURN_IF_ERROR(loop.register_fd(self_.event_fd, kIoReadable, std::move(cb)));
    loop_ = &loop;
    interest_ = interest;
    rearm();
    return ok_status();
  }

  Status set_interest(std::uint32_t interest) override {
    if (loop_ == nullptr) return failed_precondition("Stream::set_interest: not watched");
    if (interest == interest_) return ok_status();
    interest_ = interest;
    rearm();
    return ok_status();
  }

  Status wait(std::uint32_t events, MonoTime deadline) override {
    if (closed_) return failed_precondition("Stream::wait: " + peer() + " is closed");
    MYELIN_ASSIGN_OR_RETURN(
        const bool ready_in_time,
        park_until([this, events] { return (ready() & events) != 0; }, deadline));
    if (ready_in_time) return ok_status();
    return deadline_exceeded(peer() + ": timed out waiting to " +
                             ((events & kIoReadable) != 0 ? "read" : "write"));
  }

  bool ready_now(std::uint32_t events) override { return closed_ || (ready() & events) != 0; }

  void close() override {
    if (closed_) return;
    closed_ = true;
    *alive_ = false;
    if (loop_ != nullptr) (void)loop_->unregister_fd(self_.event_fd);
    loop_ = nullptr;
    out_.writer_closed.store(true, kSeqCst);
    in_.reader_closed.store(true, kSeqCst);
    signal(other_);
  }

 private:
  // What this end could do now. End of stream reads as readable and a
  // vanished reader as writable: the call that follows reports them.
  [[nodiscard]] std::uint32_t ready() const noexcept {
    std::uint32_t r = 0;
    if (in_.readable() > 0 || in_.writer_closed.load(kSeqCst)) r |= kIoReadable;
    if (out_.writable() > 0 || out_.reader_closed.load(kSeqCst)) r |= kIoWritable;
    return r;
  }

  // Waits until `is_ready()` holds: true, or false once `deadline` passes.
  // It first watches without parking for up to spin_: the flag stays down,
  // so the peer's moves cost it no system call meanwhile, and a peer on the
  // other core usually moves sooner than a park and wake-up would take.
  // Then it parks: the flag goes up before the last look, so the peer's next
  // move (which checks the flag after publishing) wakes it.
  template <typename Pred>
  Result<bool> park_until(const Pred& is_ready, MonoTime deadline) {
    const MonoTime spin_end = std::min(deadline, mono_now() + spin_);
    for (std::uint32_t i = 0; !is_ready(); ++i) {
      if ((i & 63) == 63 && mono_now() >= spin_end) break;
      myelin::detail::cpu_relax();
    }
    for (;;) {
      self_.waiting.store(true, kSeqCst);
      if (is_ready()) return true;
      MYELIN_ASSIGN_OR_RETURN(const bool woke, wait_fd(self_.event_fd, kIoReadable, deadline));
      if (!woke) return false;
      drain(self_);
    }
  }

  // Level-triggered readiness over the eventfd: the flag goes up first, so
  // the peer's next move wakes the loop; what is ready already fires now.
  void rearm() noexcept {
    self_.waiting.store(true, kSeqCst);
    if ((ready() & interest_) != 0) signal(self_);
  }

  void dispatch(const EventLoop::IoCallback& on_io, const std::shared_ptr<bool>& alive) {
    drain(self_);
    self_.waiting.store(true, kSeqCst);
    const std::uint32_t r = ready() & interest_;
    if (r == 0) return;
    on_io(r);
    if (*alive && loop_ != nullptr) rearm();
  }

  const Nanos spin_;
  std::shared_ptr<Pipe> pipe_;
  Ring& in_;
  Ring& out_;
  Side& self_;
  Side& other_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  EventLoop* loop_ = nullptr;
  std::uint32_t interest_ = 0;
  bool write_shut_ = false;
  bool closed_ = false;
};

}  // namespace

Result<std::pair<std::unique_ptr<Stream>, std::unique_ptr<Stream>>> duplex_pair(
    std::size_t capacity, Nanos spin, std::shared_ptr<RingPool> pool) {
  if (capacity == 0 || capacity > (std::size_t{1} << 30)) {
    return invalid_argument("duplex_pair: capacity " + std::to_string(capacity) +
                            " is outside 1 byte .. 1 GiB");
  }
  auto pipe = std::make_shared<Pipe>(std::bit_ceil(capacity), pool);
  for (Side& s : pipe->sides) {
    s.event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s.event_fd < 0) return errno_error("duplex_pair: eventfd", errno);
  }
  std::unique_ptr<Stream> a(new MemoryStream(pipe, 0, "duplex:a", spin));
  std::unique_ptr<Stream> b(new MemoryStream(std::move(pipe), 1, "duplex:b", spin));
  return std::pair{std::move(a), std::move(b)};
}

}  // namespace myelin::net
