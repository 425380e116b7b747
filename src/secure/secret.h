// Secret<N>: fixed-size key material that wipes itself.
//
// Every key, IV, PRK and shared secret of the secure channel lives in one of
// these, so erasure does not depend on remembering to call anything: the
// destructor, assignment over it and wipe() all run OPENSSL_cleanse (which the
// compiler may not optimise away, unlike memset on a dying object). Not
// copyable by accident: copies are explicit through from().
#pragma once

#include <openssl/crypto.h>

#include <array>
#include <cstddef>
#include <cstring>
#include <span>

namespace myelin::secure::detail {

template <std::size_t N>
class Secret {
 public:
  static constexpr std::size_t kSize = N;

  Secret() noexcept { bytes_.fill(std::byte{0}); }
  ~Secret() { wipe(); }
  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& other) noexcept {
    bytes_ = other.bytes_;
    other.wipe();
  }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      bytes_ = other.bytes_;
      other.wipe();
    }
    return *this;
  }

  static Secret from(std::span<const std::byte, N> src) noexcept {
    Secret s;
    std::memcpy(s.bytes_.data(), src.data(), N);
    return s;
  }

  void wipe() noexcept { OPENSSL_cleanse(bytes_.data(), N); }

  [[nodiscard]] std::span<std::byte, N> span() noexcept { return bytes_; }
  [[nodiscard]] std::span<const std::byte, N> span() const noexcept { return bytes_; }
  [[nodiscard]] const unsigned char* data() const noexcept {
    return reinterpret_cast<const unsigned char*>(bytes_.data());
  }
  [[nodiscard]] unsigned char* data() noexcept {
    return reinterpret_cast<unsigned char*>(bytes_.data());
  }

 private:
  std::array<std::byte, N> bytes_;
};

using Key32 = Secret<32>;
using Iv12 = Secret<12>;

}  // namespace myelin::secure::detail
