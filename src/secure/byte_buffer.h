// ByteBuffer: a reusable FIFO of bytes with a contiguous readable region.
//
// The session reads into its tail and parses from its head; consumed bytes
// are reclaimed by sliding the remainder to the front only when room is
// needed, so a buffer that has reached its working size never allocates
// again. Single-threaded.
#pragma once

#include <cstddef>
#include <cstring>
#include <span>
#include <vector>

namespace myelin::secure::detail {

class ByteBuffer {
 public:
  [[nodiscard]] std::size_t size() const noexcept { return end_ - begin_; }
  [[nodiscard]] bool empty() const noexcept { return begin_ == end_; }
  [[nodiscard]] std::byte* data() noexcept { return buf_.data() + begin_; }
  [[nodiscard]] const std::byte* data() const noexcept { return buf_.data() + begin_; }
  [[nodiscard]] std::span<const std::byte> readable() const noexcept { return {data(), size()}; }

  // At least `n` writable bytes after the readable region (may move it).
  std::span<std::byte> tail(std::size_t n) {
    if (buf_.size() - end_ < n) {
      if (begin_ > 0) {
        const std::size_t live = size();
        if (live > 0) std::memmove(buf_.data(), buf_.data() + begin_, live);
        begin_ = 0;
        end_ = live;
      }
      if (buf_.size() - end_ < n) buf_.resize(end_ + n);
    }
    return {buf_.data() + end_, buf_.size() - end_};
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
  [[nodiscard]] std::size_t capacity() const noexcept { return buf_.size(); }

 private:
  std::vector<std::byte> buf_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace myelin::secure::detail
