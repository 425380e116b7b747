// TaskQueue: the lock-free, unbounded multi-producer / single-consumer queue
// behind EventLoop::submit.
//
// Layout: a linked list of blocks of kBlockCap slots; one slot is one cache
// line (raw storage for a Task plus its `seq` word). A 64-bit tail index counts claimed
// slots; index % kLap is the offset in the current block, and the value
// kBlockCap (one past the last slot) is a transient "next block being
// installed" marker. The top bit of the tail is the "closed" mark.
//
// Producer (any thread): load tail; if closed, fail; CAS tail -> tail + 1 to
// claim the slot; the producer that claims a block's last slot links a fresh
// block (tail_block_, then tail past the marker, then block->next) before it
// fills its own slot; then construct the task in the slot and store
// seq = ticket + 1 (release), where the ticket is the claimed tail index. A producer dereferences a
// block only after its CAS succeeded, which proves the block is still live (its claimed slot is not
// yet consumed), so blocks can be reused without hazard pointers or epochs. Per- producer FIFO
// follows from each producer's tickets being increasing.
//
// Consumer (the loop thread only): read slots in ticket order; stop at the
// first slot whose seq is not its ticket + 1 (empty, or a producer between
// its CAS and its store). It runs the task and destroys it in place but never
// writes the slot: a stale seq can never match a later, larger ticket, so
// nothing needs resetting, and the line the producer fills next lap is not
// dirty in the consumer's cache. After a block's last slot it follows `next`
// (published before that slot's seq) and recycles the drained block.
//
// Allocation: drained blocks go onto a lock-free free stack (a Treiber stack
// whose top carries a 16-bit version tag above the 48-bit pointer, so a pop
// cannot be fooled by ABA); producers pop from it and allocate only when it
// is empty. Blocks are freed only in the destructor, so once the queue has
// reached its high-water mark it allocates nothing, whatever the timing.
//
// Closing sets the tail's top bit: a producer either claimed its slot before
// the close (and its task will be consumed) or sees the bit and fails, which
// is what makes graceful shutdown lossless without a counter on the hot path.
#pragma once

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
  // A producer asks for write ownership of the slot this many places ahead:
  // the loop read that line last, and fetching it now overlaps the transfer
  // with this submit instead of stalling the next CAS on it (a locked CAS
  // waits for earlier stores to own their lines). An interleaved sweep of
  // 0/2/4/8 gave 24.4/18.5/17.8/25.8 ns per 1-producer submit here.
  static constexpr std::uint64_t kPrefetchAhead = 4;
  static constexpr std::uint64_t kLap = 256;
  static constexpr std::uint64_t kBlockCap = kLap - 1;
  static constexpr std::uint64_t kClosedBit = std::uint64_t{1} << 63;

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
        spare->next.store(nullptr, std::memory_order_relaxed);
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
        if (offset + kPrefetchAhead < kBlockCap) {
          prefetch_for_write(&block->slots[offset + kPrefetchAhead]);
        }
        ::new (static_cast<void*>(slot.storage)) Task(std::move(task));
        slot.seq.store(idx + 1, std::memory_order_release);
        if (spare != nullptr) give_back(spare);
        return PushResult::kOk;
      }
      block = tail_block_.load(std::memory_order_acquire);
    }
  }

  // Consumer only. Calls fn(Task&) for up to `max` ready tasks in order; fn
  // must not throw, and returns false to stop after the current task. The
  // task is destroyed here. Returns how many were consumed.
  template <typename Fn>
  std::size_t consume(std::size_t max, Fn&& fn) {
    std::size_t n = 0;
    while (n < max) {
      const std::uint64_t offset = head_index_ % kLap;
      Slot& slot = head_block_->slots[offset];
      if (slot.seq.load(std::memory_order_acquire) != head_index_ + 1) break;
      Task& task = *std::launder(reinterpret_cast<Task*>(slot.storage));
      const bool more = fn(task);
      task.destroy_in_place();
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
    return head_block_->slots[head_index_ % kLap].seq.load(std::memory_order_acquire) ==
           head_index_ + 1;
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

  // Blocks currently owned by the queue (in use + free); for tests.
  [[nodiscard]] std::size_t blocks_allocated() const noexcept {
    return blocks_allocated_.load(std::memory_order_relaxed);
  }

 private:
  struct alignas(64) Slot {
    alignas(Task) unsigned char storage[sizeof(Task)];  // a live Task only while claimed
    std::atomic<std::uint64_t> seq{0};                  // ticket + 1 once the Task is in
  };
  static_assert(sizeof(Slot) == 64, "one slot per cache line");

  struct Block {
    alignas(64) std::atomic<Block*> next{nullptr};
    Slot slots[kBlockCap];
  };

  // The free stack's top: a Block* in the low 48 bits (x86-64 and AArch64
  // user addresses fit), a version in the high 16 bits bumped on every change.
  static constexpr std::uint64_t kPointerBits = 48;
  static constexpr std::uint64_t kPointerMask = (std::uint64_t{1} << kPointerBits) - 1;

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
  // Shared by producers (pop) and the consumer (push); linked through `next`.
  alignas(64) std::atomic<std::uint64_t> free_top_{0};
  std::atomic<std::size_t> blocks_allocated_{0};
};

}  // namespace myelin::detail
