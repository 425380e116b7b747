// TensorView: the one description of a tensor shared across myelin.
//
// The secure channel frames tensors with it, models take inputs and produce
// outputs as views, and the servers decode requests into views. A view does
// not own its bytes: whoever hands one out says how long the bytes live.
// Element data is little-endian (the only byte order myelin runs on and the
// one its wire formats use). Views are plain values; they are as thread-safe
// as the bytes they point to.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "myelin/base/result.h"

namespace myelin {

// Element types. The numeric values are the dtype ids of myelin's wire
// formats (docs/secure-channel.md section 8); never renumber.
enum class DType : std::uint8_t {
  kF32 = 1,
  kF64 = 2,
  kF16 = 3,
  kBF16 = 4,
  kI32 = 5,
  kI64 = 6,
  kU8 = 7,
  kU32 = 8,
};

// "f32", "f64", "f16", "bf16", "i32", "i64", "u8", "u32"; "unknown" otherwise.
std::string_view to_string(DType dtype) noexcept;
std::optional<DType> parse_dtype(std::string_view name) noexcept;
// The dtype for a wire id, if the id is known.
std::optional<DType> dtype_from_id(std::uint8_t id) noexcept;
// Bytes per element; 0 for an unknown value.
std::size_t dtype_size(DType dtype) noexcept;

template <typename T>
constexpr std::optional<DType> dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::kF32;
  if constexpr (std::is_same_v<T, double>) return DType::kF64;
  if constexpr (std::is_same_v<T, std::int32_t>) return DType::kI32;
  if constexpr (std::is_same_v<T, std::int64_t>) return DType::kI64;
  if constexpr (std::is_same_v<T, std::uint8_t>) return DType::kU8;
  if constexpr (std::is_same_v<T, std::uint32_t>) return DType::kU32;
  return std::nullopt;
}

inline constexpr std::size_t kMaxRank = 8;

// Dimensions of a tensor, stored inline (no allocation), rank 0..kMaxRank.
class Shape {
 public:
  Shape() = default;
  // Precondition: dims.size() <= kMaxRank (checked: extra dims are a bug and abort).
  Shape(std::initializer_list<std::int64_t> dims);
  static Result<Shape> from(std::span<const std::int64_t> dims);

  [[nodiscard]] std::size_t rank() const noexcept { return rank_; }
  [[nodiscard]] std::int64_t operator[](std::size_t i) const noexcept { return dims_[i]; }
  [[nodiscard]] std::span<const std::int64_t> dims() const noexcept {
    return {dims_.data(), rank_};
  }

  // Product of the dims (1 for rank 0); an error when a dim is negative or
  // the product overflows.
  [[nodiscard]] Result<std::uint64_t> element_count() const;

  // "[2, 3]"
  [[nodiscard]] std::string to_string() const;

  friend bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.rank_ != b.rank_) return false;
    for (std::size_t i = 0; i < a.rank_; ++i) {
      if (a.dims_[i] != b.dims_[i]) return false;
    }
    return true;
  }

 private:
  std::array<std::int64_t, kMaxRank> dims_{};
  std::size_t rank_ = 0;
};

// A read-only tensor: dtype, shape and the bytes of its elements.
struct TensorView {
  DType dtype = DType::kF32;
  Shape shape;
  std::span<const std::byte> data;

  // ok when data.size() == element_count * dtype_size.
  [[nodiscard]] Status validate() const;

  // The elements as T; empty when T does not match the dtype.
  template <typename T>
  [[nodiscard]] std::span<const T> as() const noexcept {
    if (dtype_of<T>() != dtype) return {};
    return {reinterpret_cast<const T*>(data.data()), data.size() / sizeof(T)};
  }

  template <typename T>
  static TensorView of(std::span<const T> values, Shape shape) {
    return {*dtype_of<T>(), shape, std::as_bytes(values)};
  }
};

// A writable tensor, for outputs a caller provides.
struct MutableTensorView {
  DType dtype = DType::kF32;
  Shape shape;
  std::span<std::byte> data;

  [[nodiscard]] Status validate() const;
  [[nodiscard]] TensorView view() const noexcept { return {dtype, shape, data}; }

  template <typename T>
  [[nodiscard]] std::span<T> as() const noexcept {
    if (dtype_of<T>() != dtype) return {};
    return {reinterpret_cast<T*>(data.data()), data.size() / sizeof(T)};
  }
};

}  // namespace myelin
