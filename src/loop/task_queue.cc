#include "src/loop/task_queue.h"

#include <cstdlib>

namespace myelin::detail {

TaskQueue::TaskQueue() {
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
  Block* b = head_block_;
  while (b != nullptr) {
    Block* next = b->next.load(std::memory_order_relaxed);
    delete b;
    b = next;
  }
  while (free_list_ != nullptr) {
    Block* next = free_list_->next.load(std::memory_order_relaxed);
    delete free_list_;
    free_list_ = next;
  }
  for (auto& spare : spares_) delete spare.exchange(nullptr, std::memory_order_relaxed);
}

TaskQueue::Block* TaskQueue::take_block() noexcept {
  for (auto& spare : spares_) {
    if (spare.load(std::memory_order_relaxed) != nullptr) {
      if (Block* b = spare.exchange(nullptr, std::memory_order_acquire)) return b;
    }
  }
  Block* b = new (std::nothrow) Block;
  if (b != nullptr) blocks_allocated_.fetch_add(1, std::memory_order_relaxed);
  return b;
}

void TaskQueue::give_back(Block* block) noexcept {
  for (auto& spare : spares_) {
    Block* expected = nullptr;
    if (spare.compare_exchange_strong(expected, block, std::memory_order_release,
                                      std::memory_order_relaxed)) {
      return;
    }
  }
  // Every spare is taken: rare (many producers racing for one boundary).
  blocks_allocated_.fetch_sub(1, std::memory_order_relaxed);
  delete block;
}

void TaskQueue::recycle(Block* block) noexcept {
  // The consumed slots were reset one by one; only the link remains.
  block->next.store(free_list_, std::memory_order_relaxed);
  free_list_ = block;
  // Refill empty spares from the private list so producers rarely allocate.
  for (auto& spare : spares_) {
    if (free_list_ == nullptr) break;
    if (spare.load(std::memory_order_relaxed) != nullptr) continue;
    Block* b = free_list_;
    Block* rest = b->next.load(std::memory_order_relaxed);
    b->next.store(nullptr, std::memory_order_relaxed);
    Block* expected = nullptr;
    if (spare.compare_exchange_strong(expected, b, std::memory_order_release,
                                      std::memory_order_relaxed)) {
      free_list_ = rest;
    } else {
      b->next.store(rest, std::memory_order_relaxed);
    }
  }
}

}  // namespace myelin::detail
