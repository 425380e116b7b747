#include "myelin/base/tensor.h"

#include <cstdio>
#include <cstdlib>
#include <limits>

namespace myelin {
namespace {

struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::kF32, "f32", 4},   {DType::kF64, "f64", 8}, {DType::kF16, "f16", 2},
    {DType::kBF16, "bf16", 2}, {DType::kI32, "i32", 4}, {DType::kI64, "i64", 8},
    {DType::kU8, "u8", 1},     {DType::kU32, "u32", 4},
};

const DTypeInfo* info(DType d) noexcept {
  for (const DTypeInfo& i : kDTypes) {
    if (i.dtype == d) return &i;
  }
  return nullptr;
}

Status check_size(DType dtype, const Shape& shape, std::size_t bytes) {
  const std::size_t elem = dtype_size(dtype);
  if (elem == 0)
    return invalid_argument("unknown dtype id " + std::to_string(static_cast<int>(dtype)));
  MYELIN_ASSIGN_OR_RETURN(const std::uint64_t count, shape.element_count());
  if (count > std::numeric_limits<std::uint64_t>::max() / elem) {
    return out_of_range("shape " + shape.to_string() + " of " + std::string(to_string(dtype)) +
                        " is too large");
  }
  if (count * elem != bytes) {
    return invalid_argument("shape " + shape.to_string() + " of " + std::string(to_string(dtype)) +
                            " needs " + std::to_string(count * elem) + " bytes, got " +
                            std::to_string(bytes));
  }
  return {};
}

}  // namespace

std::string_view to_string(DType dtype) noexcept {
  const DTypeInfo* i = info(dtype);
  return i ? i->name : "unknown";
}

std::optional<DType> parse_dtype(std::string_view name) noexcept {
  for (const DTypeInfo& i : kDTypes) {
    if (i.name == name) return i.dtype;
  }
  return std::nullopt;
}

std::optional<DType> dtype_from_id(std::uint8_t id) noexcept {
  const DType d = static_cast<DType>(id);
  return info(d) ? std::optional<DType>(d) : std::nullopt;
}

std::size_t dtype_size(DType dtype) noexcept {
  const DTypeInfo* i = info(dtype);
  return i ? i->size : 0;
}

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  if (dims.size() > kMaxRank) {
    std::fprintf(stderr, "myelin: Shape with rank %zu > %zu\n", dims.size(), kMaxRank);
    std::abort();
  }
  for (std::int64_t d : dims) dims_[rank_++] = d;
}

Result<Shape> Shape::from(std::span<const std::int64_t> dims) {
  if (dims.size() > kMaxRank) {
    return out_of_range("rank " + std::to_string(dims.size()) + " exceeds the maximum of " +
                        std::to_string(kMaxRank));
  }
  Shape s;
  for (std::int64_t d : dims) s.dims_[s.rank_++] = d;
  return s;
}

Result<std::uint64_t> Shape::element_count() const {
  std::uint64_t count = 1;
  for (std::size_t i = 0; i < rank_; ++i) {
    if (dims_[i] < 0) {
      return invalid_argument("shape " + to_string() + ": dimension " + std::to_string(i) +
                              " is negative");
    }
    const auto d = static_cast<std::uint64_t>(dims_[i]);
    if (d != 0 && count > std::numeric_limits<std::uint64_t>::max() / d) {
      return out_of_range("shape " + to_string() + ": element count overflows 64 bits");
    }
    count *= d;
  }
  return count;
}

std::string Shape::to_string() const {
  std::string out = "[";
  for (std::size_t i = 0; i < rank_; ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(dims_[i]);
  }
  out += ']';
  return out;
}

Status TensorView::validate() const { return check_size(dtype, shape, data.size()); }
Status MutableTensorView::validate() const { return check_size(dtype, shape, data.size()); }

}  // namespace myelin
