#include "myelin/secure/key_pool.h"

#include <algorithm>

#include "src/secure/crypto.h"

namespace myelin::secure {

KeyPool::KeyPool(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1)) {
  keys_.reserve(capacity_);
}

KeyPool::~KeyPool() = default;  // each key pair wipes itself

Result<std::size_t> KeyPool::refill(std::size_t max) {
  std::size_t added = 0;
  while (added < max) {
    {
      std::lock_guard lock(mu_);
      if (keys_.size() >= capacity_) break;
    }
    // The scalar multiplication runs unlocked, so take() never waits for it.
    MYELIN_ASSIGN_OR_RETURN(detail::HandshakeRandom drawn, detail::HandshakeRandom::generate());
    auto key = std::make_unique<detail::HandshakeRandom>(std::move(drawn));
    std::lock_guard lock(mu_);
    if (keys_.size() >= capacity_) break;  // another refill() filled it meanwhile
    keys_.push_back(std::move(key));
    ++stats_.generated;
    ++added;
  }
  return added;
}

std::size_t KeyPool::available() const {
  std::lock_guard lock(mu_);
  return keys_.size();
}

KeyPoolStats KeyPool::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::unique_ptr<detail::HandshakeRandom> KeyPool::take() {
  std::lock_guard lock(mu_);
  if (keys_.empty()) {
    ++stats_.misses;
    return nullptr;
  }
  std::unique_ptr<detail::HandshakeRandom> key = std::move(keys_.back());
  keys_.pop_back();
  ++stats_.taken;
  return key;
}

}  // namespace myelin::secure
