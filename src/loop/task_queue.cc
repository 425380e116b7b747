#include "src/loop/task_queue.h"

#include <algorithm>
#include <cstdlib>

namespace myelin::detail {

TaskQueue::TaskQueue(Nanos slip) : slip_(std::max(slip, Nanos(0))) {
  Block* first = new Block;
  blocks_allocated_.store(1, std::memory_order_relaxed);
  head_block_ = first;
  tail_block_.store(first, std::memory_order_relaxed);
}

TaskQueue::~TaskQueue() {
  // No producer may run concurrently with the destructor (the owner's
  // contract), so every claimed slot is ready: destroy what is left.
  while (drop(kBlockCap) != 0) {
  }
  auto free_chain = [](Block* b) {
    while (b != nullptr) {
      Block* next = b->next.load(std::memory_order_relaxed);
      delete b;
      b = next;
    }
  };
  free_chain(head_block_);
  free_chain(reinterpret_cast<Block*>(free_top_.load(std::memory_order_relaxed) & kPointerMask));
}

namespace {

void spin_until(MonoTime end) noexcept {
  do {
    cpu_relax();
    cpu_relax();
  } while (mono_now() < end);
}

}  // namespace

void TaskQueue::pace() noexcept {
  // Each read of the producers' line makes their next CAS take it back:
  // cheap once per kChaseLag units or per slip, ruinous once per record.
  const auto read_tail = [this] {
    return tail_index_.load(std::memory_order_acquire) & ~kClosedBit;
  };
  std::uint64_t tail = read_tail();
  if (tail < head_index_ + kChaseLag) {
    const MonoTime start = mono_now();
    spin_until(start + slip_ / 4);
    const std::uint64_t later = read_tail();
    if (later != tail) {  // still submitting: let them pull ahead
      slips_.store(slips_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      spin_until(start + slip_);
      tail = read_tail();
    }
  }
  // The head record is ready, so tail > head_index_: at least it runs.
  paced_until_ = tail >= head_index_ + 2 * kChaseLag ? tail - kChaseLag : tail;
}

TaskQueue::Block* TaskQueue::take_block() noexcept {
  std::uint64_t top = free_top_.load(std::memory_order_acquire);
  for (;;) {
    auto* b = reinterpret_cast<Block*>(top & kPointerMask);
    if (b == nullptr) break;
    // `b` may be popped and reused by another producer meanwhile; reading
    // its `next` is still safe (blocks are never freed while the queue
    // lives) and the version in `top` makes the CAS fail if it happened.
    Block* next = b->next.load(std::memory_order_relaxed);
    const std::uint64_t version = (top >> kPointerBits) + 1;
    const std::uint64_t desired = (version << kPointerBits) | reinterpret_cast<std::uint64_t>(next);
    if (free_top_.compare_exchange_weak(top, desired, std::memory_order_acquire,
                                        std::memory_order_acquire)) {
      return b;
    }
  }
  Block* b = new (std::nothrow) Block;
  if (b != nullptr) blocks_allocated_.fetch_add(1, std::memory_order_relaxed);
  return b;
}

void TaskQueue::push_free(Block* block) noexcept {
  const auto ptr = reinterpret_cast<std::uint64_t>(block);
  std::uint64_t top = free_top_.load(std::memory_order_relaxed);
  for (;;) {
    block->next.store(reinterpret_cast<Block*>(top & kPointerMask), std::memory_order_relaxed);
    const std::uint64_t version = (top >> kPointerBits) + 1;
    if (free_top_.compare_exchange_weak(top, (version << kPointerBits) | ptr,
                                        std::memory_order_release, std::memory_order_relaxed)) {
      return;
    }
  }
}

void TaskQueue::give_back(Block* block) noexcept { push_free(block); }

void TaskQueue::recycle(Block* block) noexcept { push_free(block); }

}  // namespace myelin::detail
