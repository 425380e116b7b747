// ByteBuffer: a reusable FIFO of bytes with a contiguous readable region.
//
// The session reads into its tail and parses from its head; consumed bytes
// are reclaimed by sliding the remainder to the front only when room is
// needed, so a buffer that has reached its working size never allocates
// again. Single-threaded.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>

namespace myelin::secure::detail {

class ByteBuffer {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  [[nodiscard]] std::byte* data() noexcept { return buf_.get() + begin_; }
  [[nodiscard]] const std::byte* data() const noexcept { return buf_.get() + begin_; }
  [[nodiscard]] std::span<const std::byte> readable() const noexcept { return {data(), size()}; }

  // At least `n` writable bytes after the readable region (may move it).
  // New room is left uninitialised: a reader offered 256 KiB must not pay to
  // zero (and fault in) pages that a 100-byte handshake message never uses.
  std::span<std::byte> tail(std::size_t n) {
    if (capacity_ - end_ < n) {
      const std::size_t live = size();
      if (begin_ > 0) {
        if (live > 0) std::memmove(buf_.get(), buf_.get() + begin_, live);
        begin_ = 0;
        end_ = live;
      }
      if (capacity_ - end_ < n) {
        const std::size_t cap = std::max(end_ + n, capacity_ + capacity_ / 2);
        std::unique_ptr<std::byte[]> grown(new std::byte[cap]);  // default-init: no zeroing
        if (live > 0) std::memcpy(grown.get(), buf_.get(), live);
        buf_ = std::move(grown);
        capacity_ = cap;
      }
    }
    return {buf_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  void append(std::span<const std::byte> bytes) {
    if (bytes.empty()) return;
    std::memcpy(tail(bytes.size()).data(), bytes.data(), bytes.size());
    commit(bytes.size());
  }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  void clear() noexcept { begin_ = end_ = 0; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

 private:
  std::unique_ptr<std::byte[]> buf_;
  std::size_t capacity_ = 0;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace myelin::secure::detail
