#include "myelin/base/tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

namespace myelin {
namespace {

TEST(DType, NamesSizesAndWireIdsRoundTrip) {
  for (std::uint8_t id = 0; id < 16; ++id) {
    const auto d = dtype_from_id(id);
    if (id < 1 || id > 8) {
      EXPECT_FALSE(d.has_value()) << int(id);
      continue;
    }
    ASSERT_TRUE(d.has_value()) << int(id);
    EXPECT_EQ(static_cast<std::uint8_t>(*d), id);
    EXPECT_EQ(parse_dtype(to_string(*d)), d);
    EXPECT_GT(dtype_size(*d), 0u);
  }
  EXPECT_EQ(dtype_size(DType::kBF16), 2u);
  EXPECT_EQ(dtype_size(DType::kI64), 8u);
  EXPECT_EQ(to_string(static_cast<DType>(99)), "unknown");
  EXPECT_FALSE(parse_dtype("float").has_value());
}

TEST(Shape, CountsElements) {
  EXPECT_EQ(*Shape{}.element_count(), 1u);
  EXPECT_EQ(*Shape({2, 3, 4}).element_count(), 24u);
  EXPECT_EQ(*Shape({5, 0}).element_count(), 0u);
  EXPECT_EQ(Shape({2, 3}).to_string(), "[2, 3]");
  EXPECT_EQ(Shape({2, 3}), Shape({2, 3}));
  EXPECT_FALSE(Shape({2, 3}) == Shape({3, 2}));
}

TEST(Shape, RejectsNegativeOverflowAndRank) {
  auto neg = Shape({2, -1}).element_count();
  ASSERT_FALSE(neg.has_value());
  EXPECT_NE(neg.error().message().find("dimension 1 is negative"), std::string::npos);
  auto big = Shape({1LL << 40, 1LL << 40}).element_count();
  ASSERT_FALSE(big.has_value());
  EXPECT_EQ(big.error().code(), ErrorCode::kOutOfRange);
  std::vector<std::int64_t> nine(9, 1);
  EXPECT_FALSE(Shape::from(nine).has_value());
  std::vector<std::int64_t> eight(8, 2);
  EXPECT_EQ(Shape::from(eight)->rank(), 8u);
}

TEST(TensorView, ValidatesByteCount) {
  std::vector<float> v{1, 2, 3, 4, 5, 6};
  TensorView t = TensorView::of<float>(v, Shape{2, 3});
  EXPECT_TRUE(t.validate().ok());
  EXPECT_EQ(t.as<float>().size(), 6u);
  EXPECT_EQ(t.as<float>()[5], 6);
  EXPECT_TRUE(t.as<double>().empty());  // wrong type: no view
  t.shape = Shape{4, 2};
  Status s = t.validate();
  EXPECT_EQ(s.code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "shape [4, 2] of f32 needs 32 bytes, got 24");
  // A dim product times the element size that overflows is refused.
  t.shape = Shape{1LL << 31, 1LL << 31, 4};
  EXPECT_EQ(t.validate().code(), ErrorCode::kOutOfRange);
}

TEST(MutableTensorView, WritesThroughAs) {
  std::vector<std::int64_t> out(3);
  MutableTensorView m{DType::kI64, Shape{3}, std::as_writable_bytes(std::span(out))};
  ASSERT_TRUE(m.validate().ok());
  m.as<std::int64_t>()[1] = 42;
  EXPECT_EQ(out[1], 42);
  EXPECT_EQ(m.view().as<std::int64_t>()[1], 42);
}

}  // namespace
}  // namespace myelin
