// TaskQueue: the lock-free, unbounded multi-producer / single-consumer queue
// behind EventLoop::submit.
//
// Layout: a linked list of blocks of kBlockCap 32-byte units. A task takes
// one unit when its callable fits 16 bytes (a lambda capturing one or two
// pointers: most of what runs on a loop) and two otherwise (up to Task's 48
// inline bytes). A record's first unit holds `seq`, the callable's ops and
// its first 16 bytes; a second unit continues the storage. Two small tasks
// share a cache line, and the line transfers between the producer's and the
// loop's cores are what a submit costs (one per 64 bytes), so small tasks
// cost about half.
//
// A 64-bit tail index counts claimed units; index % kLap is the offset in
// the current block, and the value kBlockCap (one past the last unit) is a
// transient "next block being installed" marker. The top bit of the tail is
// the "closed" mark.
//
// Producer (any thread): load tail; if closed, fail; CAS tail -> tail + k to
// claim k units. A two-unit record never straddles blocks: a producer that
// finds one unit left claims it as a pad record. The producer whose claim
// ends a block links a fresh block (tail_block_, then tail past the marker,
// then block->next) before it fills its own record; then it moves the
// callable in and stores seq = ticket + 1 (release), where the ticket is the
// record's first unit index. A producer dereferences a block only after its
// CAS succeeded, which proves the block is still live (its claimed units are
// not yet consumed), so blocks can be reused without hazard pointers or
// epochs. Per-producer FIFO follows from each producer's tickets increasing.
//
// Consumer (the loop thread only): read records in ticket order; stop at the
// first whose seq is not its ticket + 1 (empty, or a producer between its CAS
// and its store). It runs the callable and destroys it in place. A stale seq
// can never match a later, larger ticket, so a one-unit record needs no
// reset; but the second unit of a two-unit record held callable bytes where
// a later lap may start a record, so the consumer zeroes that word (0 is
// never a ticket + 1) before it moves on. After a block's last record it
// follows `next` (published before that record's seq) and recycles the
// drained block. New blocks start zeroed.
//
// Pacing: a consumer draining right behind a producer that is still writing
// reads each line just before the producer writes its next record there, and
// every such line must travel back before the producer's next CAS completes:
// a 4096-task burst then costs ~42 ns a task instead of ~13. So once the
// consumer has run a record and finds the next one ready (it may be chasing
// a producer) it reads the tail, at most once per kChaseLag units or per
// slip. If the producers are fewer than kChaseLag units ahead it waits a
// quarter of `slip` and reads the tail again: unchanged means they have
// stopped (a small batch, all written) and it drains at once; moved means
// they are still submitting, and it waits out the rest of the slip (pauses
// and clock reads, no shared memory) to let them pull ahead. Then it drains
// up to the tail it read last, keeping kChaseLag units back when the gap
// allows. A record found after a look that found nothing runs at once (a
// lone task pays nothing), no record waits more than one slip, and a zero
// slip turns pacing off.
//
// Allocation: drained blocks go onto a lock-free free stack (a Treiber stack
// whose top carries a 16-bit version tag above the 48-bit pointer, so a pop
// cannot be fooled by ABA); producers pop from it and allocate only when it
// is empty. Blocks are freed only in the destructor, so once the queue has
// reached its high-water mark it allocates nothing, whatever the timing.
//
// Closing sets the tail's top bit: a producer either claimed its units before
// the close (and its task will be consumed) or sees the bit and fails, which
// is what makes graceful shutdown lossless without a counter on the hot path.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>

#include "myelin/base/clock.h"
#include "myelin/base/cpu_relax.h"
#include "myelin/loop/task.h"

namespace myelin::detail {

// PREFETCHW: a hint to fetch the line in a writable state (a NOP on x86
// CPUs without it).
inline void prefetch_for_write(const void* p) noexcept {
#if defined(__x86_64__)
  asm volatile("prefetchw %0" ::"m"(*static_cast<const char*>(p)));
#else
  __builtin_prefetch(p, 1, 3);
#endif
}

class TaskQueue {
 public:
  static constexpr std::size_t kUnit = 32;
  static constexpr std::size_t kSmallBytes = kUnit - 16;  // callable bytes in a one-unit record
  // A producer asks for write ownership of the line this many units ahead:
  // the loop read that line last, and fetching it now overlaps the transfer
  // with this submit instead of stalling the next CAS on it (a locked CAS
  // waits for earlier stores to own their lines).
  static constexpr std::uint64_t kPrefetchAhead = 8;
  static constexpr std::uint64_t kLap = 512;
  static constexpr std::uint64_t kBlockCap = kLap - 1;  // units per block
  static constexpr std::uint64_t kClosedBit = std::uint64_t{1} << 63;
  // Pacing (see the file comment): how far behind a chased producer the
  // consumer stays, in units, and the default wait that lets it pull ahead
  // (EventLoopOptions::chase_slip has the same default).
  static constexpr std::uint64_t kChaseLag = 128;
  static constexpr Nanos kDefaultSlip = std::chrono::microseconds(1);

  enum class PushResult { kOk, kClosed, kNoMemory };

  // What consume() hands its callback: a queued callable, run in place.
  class Queued {
   public:
    void operator()() { ops_->invoke(storage_); }

   private:
    friend class TaskQueue;
    Queued(const Task::Ops* ops, void* storage) : ops_(ops), storage_(storage) {}
    const Task::Ops* ops_;
    void* storage_;
  };

  explicit TaskQueue(Nanos slip = kDefaultSlip);
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Any thread. `task` must not be empty. On kOk the callable was moved into
  // the queue (the Task is left empty); otherwise `task` is untouched. The
  // CAS is seq_cst: EventLoop's wake-up protocol relies on it being ordered
  // before the producer's later load of the loop state.
  PushResult push(Task& task) noexcept {
    const Task::Ops* ops = task.ops_;
    const std::uint64_t units = ops->size <= kSmallBytes ? 1 : 2;
    Block* spare = nullptr;
    int boundary_spins = 0;
    std::uint64_t idx = tail_index_.load(std::memory_order_acquire);
    Block* block = tail_block_.load(std::memory_order_acquire);
    for (;;) {
      if ((idx & kClosedBit) != 0) {
        if (spare != nullptr) give_back(spare);
        return PushResult::kClosed;
      }
      const std::uint64_t offset = idx % kLap;
      if (offset == kBlockCap) {  // another producer is linking the next block
        // Three stores away from done, unless it was preempted: on an
        // oversubscribed machine, give it the core instead of spinning.
        if (++boundary_spins > 16) {
          std::this_thread::yield();
        } else {
          cpu_relax();
        }
        idx = tail_index_.load(std::memory_order_acquire);
        block = tail_block_.load(std::memory_order_acquire);
        continue;
      }
      // One unit left and a two-unit record: claim the unit as a pad, link
      // the next block, then claim again there.
      const std::uint64_t claim = offset + units > kBlockCap ? 1 : units;
      const bool ends_block = offset + claim == kBlockCap;
      if (ends_block && spare == nullptr) {
        spare = take_block();
        if (spare == nullptr) return PushResult::kNoMemory;
        spare->next.store(nullptr, std::memory_order_relaxed);
      }
      if (tail_index_.compare_exchange_weak(idx, idx + claim, std::memory_order_seq_cst,
                                            std::memory_order_acquire)) {
        if (ends_block) {
          tail_block_.store(spare, std::memory_order_release);
          tail_index_.fetch_add(1, std::memory_order_release);  // past the marker
          block->next.store(spare, std::memory_order_release);
          spare = nullptr;
        }
        std::byte* rec = block->unit(offset);
        if (offset + kPrefetchAhead < kBlockCap)
          prefetch_for_write(block->unit(offset + kPrefetchAhead));
        if (claim != units) {  // the pad; the task goes into the next block
          publish(rec, &kPadOps, idx);
          idx = tail_index_.load(std::memory_order_acquire);
          block = tail_block_.load(std::memory_order_acquire);
          continue;
        }
        std::byte* storage = rec + 16;
        if (ops->relocate != nullptr) {
          ops->relocate(storage, task.storage_);
        } else if (units == 1) {
          std::memcpy(storage, task.storage_, kSmallBytes);
        } else {
          std::memcpy(storage, task.storage_, Task::kInlineSize);
        }
        task.ops_ = nullptr;  // moved out
        publish(rec, ops, idx);
        if (spare != nullptr) give_back(spare);
        return PushResult::kOk;
      }
      block = tail_block_.load(std::memory_order_acquire);
    }
  }

  // Consumer only. Calls fn(Queued&) for up to `max` ready tasks in order,
  // paced (see the file comment); fn must not throw, and returns false to
  // stop after the current task. The callable is destroyed here. Returns how
  // many were consumed.
  template <typename Fn>
  std::size_t consume(std::size_t max, Fn&& fn) {
    return consume_impl<true>(max, fn);
  }

  // Consumer only: destroys up to `max` ready tasks without running them (no
  // pacing: nothing runs, so there is nobody to wait for).
  std::size_t drop(std::size_t max) {
    auto discard = [](Queued&) { return true; };
    return consume_impl<false>(max, discard);
  }

  // Consumer only, cheap: is a record ready at the head (a task, or a pad
  // that consume() steps over)? Touches only the head unit, never the
  // producers' tail line.
  [[nodiscard]] bool head_ready() const noexcept {
    return seq_of(head_block_->unit(head_index_ % kLap)).load(std::memory_order_acquire) ==
           head_index_ + 1;
  }

  // Consumer only: has any unit been claimed that is not consumed yet
  // (including records whose producer has not finished writing)? seq_cst:
  // the sleeping side of the wake-up protocol.
  [[nodiscard]] bool has_claimed() const noexcept {
    return (tail_index_.load(std::memory_order_seq_cst) & ~kClosedBit) != head_index_;
  }

  // Any thread, idempotent: later pushes fail with kClosed.
  void close() noexcept { tail_index_.fetch_or(kClosedBit, std::memory_order_seq_cst); }
  [[nodiscard]] bool closed() const noexcept {
    return (tail_index_.load(std::memory_order_acquire) & kClosedBit) != 0;
  }

  // Any thread: how many times pacing waited for producers to pull ahead.
  [[nodiscard]] std::uint64_t slips() const noexcept {
    return slips_.load(std::memory_order_relaxed);
  }

  // Blocks currently owned by the queue (in use + free); for tests.
  [[nodiscard]] std::size_t blocks_allocated() const noexcept {
    return blocks_allocated_.load(std::memory_order_relaxed);
  }

 private:
  template <bool kPaced, typename Fn>
  std::size_t consume_impl(std::size_t max, Fn& fn) {
    std::size_t n = 0;
    while (n < max) {
      const std::uint64_t offset = head_index_ % kLap;
      std::byte* rec = head_block_->unit(offset);
      if (seq_of(rec).load(std::memory_order_acquire) != head_index_ + 1) {
        caught_up_ = true;
        break;
      }
      if constexpr (kPaced) {
        if (head_index_ >= paced_until_ && !caught_up_ && slip_.count() > 0) pace();
      }
      caught_up_ = false;
      const Task::Ops* ops = ops_of(rec);
      std::uint64_t units = 1;
      bool more = true;
      if (ops != &kPadOps) {
        units = ops->size <= kSmallBytes ? 1 : 2;
        Queued q(ops, rec + 16);
        more = fn(q);
        if (ops->destroy != nullptr) ops->destroy(rec + 16);
        if (units == 2) seq_of(rec + kUnit).store(0, std::memory_order_relaxed);
        ++n;
      }
      if (offset + units == kBlockCap) {
        Block* next = head_block_->next.load(std::memory_order_acquire);
        recycle(head_block_);
        head_block_ = next;
        head_index_ += units + 1;  // and past the marker
      } else {
        head_index_ += units;
      }
      if (!more) break;
    }
    return n;
  }

  struct Block {
    Block() noexcept { std::memset(units, 0, sizeof(units)); }  // no seq matches a ticket
    alignas(64) std::atomic<Block*> next{nullptr};
    // Raw units: a record's first 8 bytes are its seq (accessed atomically),
    // the next 8 its ops, the rest callable storage.
    alignas(64) std::byte units[kBlockCap * kUnit];
    std::byte* unit(std::uint64_t i) noexcept { return units + i * kUnit; }
  };

  static std::atomic_ref<std::uint64_t> seq_of(std::byte* rec) noexcept {
    return std::atomic_ref<std::uint64_t>(*std::launder(reinterpret_cast<std::uint64_t*>(rec)));
  }
  static const Task::Ops* ops_of(const std::byte* rec) noexcept {
    const Task::Ops* ops;
    std::memcpy(&ops, rec + 8, sizeof(ops));
    return ops;
  }
  static void publish(std::byte* rec, const Task::Ops* ops, std::uint64_t ticket) noexcept {
    std::memcpy(rec + 8, &ops, sizeof(ops));
    seq_of(rec).store(ticket + 1, std::memory_order_release);
  }

  // Marks a pad record: never run, only stepped over.
  static constexpr Task::Ops kPadOps = {nullptr, nullptr, nullptr, 0};

  // The free stack's top: a Block* in the low 48 bits (x86-64 and AArch64
  // user addresses fit), a version in the high 16 bits bumped on every change.
  static constexpr std::uint64_t kPointerBits = 48;
  static constexpr std::uint64_t kPointerMask = (std::uint64_t{1} << kPointerBits) - 1;

  void pace() noexcept;                   // consumer: see "Pacing" above
  Block* take_block() noexcept;           // producer: pop, or allocate
  void give_back(Block* block) noexcept;  // producer: an unused block
  void recycle(Block* block) noexcept;    // consumer: a drained block
  void push_free(Block* block) noexcept;

  // Producers' line.
  alignas(64) std::atomic<std::uint64_t> tail_index_{0};
  std::atomic<Block*> tail_block_{nullptr};
  // Consumer's line.
  alignas(64) std::uint64_t head_index_ = 0;
  Block* head_block_ = nullptr;
  std::uint64_t paced_until_ = 0;  // units below this run without a look at the tail
  Nanos slip_;
  bool caught_up_ = true;                // the last look at the head found nothing ready
  std::atomic<std::uint64_t> slips_{0};  // written by the consumer only
  // Shared by producers (pop) and the consumer (push); linked through `next`.
  alignas(64) std::atomic<std::uint64_t> free_top_{0};
  std::atomic<std::size_t> blocks_allocated_{0};
};

static_assert(TaskQueue::kSmallBytes + 16 == TaskQueue::kUnit);
static_assert(Task::kInlineSize + 16 == 2 * TaskQueue::kUnit, "a full Task fills two units");

}  // namespace myelin::detail
