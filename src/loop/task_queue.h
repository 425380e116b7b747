// TaskQueue: the lock-free, unbounded multi-producer / single-consumer queue
// behind EventLoop::submit.
//
// Layout: a linked list of blocks of kBlockCap slots; one slot is one cache
// line (a Task plus its `ready` flag). A 64-bit tail index counts claimed
// slots; index % kLap is the offset in the current block, and the value
// kBlockCap (one past the last slot) is a transient "next block being
// installed" marker. The top bit of the tail is the "closed" mark.
//
// Producer (any thread): load tail; if closed, fail; CAS tail -> tail + 1 to
// claim the slot; the producer that claims a block's last slot links a fresh
// block (tail_block_, then tail past the marker, then block->next) before it
// fills its own slot; then move the task into the slot and set `ready`
// (release). A producer dereferences a block only after its CAS succeeded,
// which proves the block is still live (its claimed slot is not yet
// consumed), so blocks can be reused without hazard pointers or epochs. Per-
// producer FIFO follows from each producer's tickets being increasing.
//
// Consumer (the loop thread only): read slots in ticket order; stop at the
// first slot whose `ready` is not set (empty, or a producer between its CAS
// and its store). After a block's last slot it follows `next` (published
// before that slot's `ready`) and recycles the drained block.
//
// Allocation: blocks come from a small array of atomic "spare" pointers
// (exchange-only, so no ABA) refilled by the consumer from its private free
// list. The queue keeps its high-water mark of blocks and frees them only in
// the destructor, so steady state allocates nothing, even after bursts.
//
// Closing sets the tail's top bit: a producer either claimed its slot before
// the close (and its task will be consumed) or sees the bit and fails, which
// is what makes graceful shutdown lossless without a counter on the hot path.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <thread>

#include "myelin/loop/task.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace myelin::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class TaskQueue {
 public:
  static constexpr std::uint64_t kLap = 256;
  static constexpr std::uint64_t kBlockCap = kLap - 1;
  static constexpr std::uint64_t kClosedBit = std::uint64_t{1} << 63;
  static constexpr std::size_t kSpares = 8;

  enum class PushResult { kOk, kClosed, kNoMemory };

  TaskQueue();
  ~TaskQueue();
  TaskQueue(const TaskQueue&) = delete;
  TaskQueue& operator=(const TaskQueue&) = delete;

  // Any thread. On kOk the task was moved into the queue; otherwise `task`
  // is untouched. The CAS is seq_cst: EventLoop's wake-up protocol relies on
  // it being ordered before the producer's later load of the loop state.
  PushResult push(Task& task) noexcept {
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
      if (offset + 1 == kBlockCap && spare == nullptr) {
        spare = take_block();
        if (spare == nullptr) return PushResult::kNoMemory;
      }
      if (tail_index_.compare_exchange_weak(idx, idx + 1, std::memory_order_seq_cst,
                                            std::memory_order_acquire)) {
        if (offset + 1 == kBlockCap) {
          tail_block_.store(spare, std::memory_order_release);
          tail_index_.fetch_add(1, std::memory_order_release);  // past the marker
          block->next.store(spare, std::memory_order_release);
          spare = nullptr;
        }
        Slot& slot = block->slots[offset];
        slot.task = std::move(task);
        slot.ready.store(1, std::memory_order_release);
        if (spare != nullptr) give_back(spare);
        return PushResult::kOk;
      }
      block = tail_block_.load(std::memory_order_acquire);
    }
  }

  // Consumer only. Calls fn(Task&) for up to `max` ready tasks in order; fn
  // must not throw, and returns false to stop after the current task. The
  // task is reset here. Returns how many were consumed.
  template <typename Fn>
  std::size_t consume(std::size_t max, Fn&& fn) {
    std::size_t n = 0;
    while (n < max) {
      const std::uint64_t offset = head_index_ % kLap;
      Slot& slot = head_block_->slots[offset];
      if (slot.ready.load(std::memory_order_acquire) == 0) break;
      const bool more = fn(slot.task);
      slot.task.reset();
      slot.ready.store(0, std::memory_order_relaxed);
      ++n;
      if (offset + 1 == kBlockCap) {
        Block* next = head_block_->next.load(std::memory_order_acquire);
        recycle(head_block_);
        head_block_ = next;
        head_index_ += 2;
      } else {
        ++head_index_;
      }
      if (!more) break;
    }
    return n;
  }

  // Consumer only: destroys up to `max` ready tasks without running them.
  std::size_t drop(std::size_t max) {
    return consume(max, [](Task&) { return true; });
  }

  // Consumer only, cheap: is the next task ready to run? Touches only the
  // head slot, never the producers' tail line.
  [[nodiscard]] bool head_ready() const noexcept {
    return head_block_->slots[head_index_ % kLap].ready.load(std::memory_order_acquire) != 0;
  }

  // Consumer only: has any slot been claimed that is not consumed yet
  // (including slots whose producer has not finished writing)? seq_cst: the
  // sleeping side of the wake-up protocol.
  [[nodiscard]] bool has_claimed() const noexcept {
    return (tail_index_.load(std::memory_order_seq_cst) & ~kClosedBit) != head_index_;
  }

  // Any thread, idempotent: later pushes fail with kClosed.
  void close() noexcept { tail_index_.fetch_or(kClosedBit, std::memory_order_seq_cst); }
  [[nodiscard]] bool closed() const noexcept {
    return (tail_index_.load(std::memory_order_acquire) & kClosedBit) != 0;
  }

  // Blocks currently owned by the queue (in use + spare + free); for tests.
  [[nodiscard]] std::size_t blocks_allocated() const noexcept {
    return blocks_allocated_.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(64) Slot {
    Task task;
    std::atomic<std::uint64_t> ready{0};
  };
  static_assert(sizeof(Slot) == 64, "one slot per cache line");

  struct Block {
    alignas(64) std::atomic<Block*> next{nullptr};
    Slot slots[kBlockCap];
  };

  Block* take_block() noexcept;
  void give_back(Block* block) noexcept;  // producer: unused spare
  void recycle(Block* block) noexcept;    // consumer: drained block

  // Producers' line.
  alignas(64) std::atomic<std::uint64_t> tail_index_{0};
  std::atomic<Block*> tail_block_{nullptr};
  // Consumer's line.
  alignas(64) std::uint64_t head_index_ = 0;
  Block* head_block_ = nullptr;
  Block* free_list_ = nullptr;  // consumer-private, linked through `next`
  alignas(64) std::array<std::atomic<Block*>, kSpares> spares_{};
  std::atomic<std::size_t> blocks_allocated_{0};
};

}  // namespace myelin::detail
