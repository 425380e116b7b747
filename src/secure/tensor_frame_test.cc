#include "myelin/secure/tensor_frame.h"

#include <gtest/gtest.h>

#include <cstring>

namespace myelin::secure {
namespace {

TEST(TensorFrame, RoundTripEveryDtype) {
  const std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  const std::vector<std::int64_t> i64 = {1, -1, 1LL << 40};
  const std::vector<std::uint8_t> u8 = {1, 2, 3, 4};
  std::vector<NamedTensor> in = {
      {"input_ids", TensorView::of<float>(f, Shape{2, 3})},
      {"mask", TensorView::of<std::int64_t>(i64, Shape{3})},
      {"π", TensorView::of<std::uint8_t>(u8, Shape{2, 1, 2})},
      {"", TensorView{DType::kF32, Shape{0, 5}, {}}},
  };
  for (DType d : {DType::kF64, DType::kF16, DType::kBF16, DType::kI32, DType::kU32}) {
    static std::vector<std::byte> bytes(64);
    in.push_back({"t", TensorView{d, Shape{static_cast<std::int64_t>(8 / dtype_size(d))},
                                  std::span(bytes).first(8)}});
  }
  auto msg = encode_tensors(in);
  ASSERT_TRUE(msg) << msg.error().to_string();
  std::vector<NamedTensor> out;
  ASSERT_TRUE(decode_tensors(*msg, out).ok());
  ASSERT_EQ(out.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].name, in[i].name);
    EXPECT_EQ(out[i].tensor.dtype, in[i].tensor.dtype);
    EXPECT_EQ(out[i].tensor.shape, in[i].tensor.shape);
    ASSERT_EQ(out[i].tensor.data.size(), in[i].tensor.data.size());
    if (!in[i].tensor.data.empty()) {
      EXPECT_EQ(0, std::memcmp(out[i].tensor.data.data(), in[i].tensor.data.data(),
                               in[i].tensor.data.size()));
    }
  }
}

TEST(TensorFrame, WireLayoutIsLittleEndian) {
  const std::vector<std::int32_t> v = {0x01020304};
  const NamedTensor t{"ab", TensorView::of<std::int32_t>(v, Shape{1})};
  auto msg = encode_tensors({&t, 1});
  ASSERT_TRUE(msg);
  const std::vector<std::uint8_t> want = {1, 0, 0,   0,                // n_tensors
                                          2, 0, 'a', 'b', 5, 1,        // name, dtype i32, rank 1
                                          1, 0, 0,   0,   0, 0, 0, 0,  // dim 1
                                          4, 0, 0,   0,   0, 0, 0, 0,  // data_len
                                          4, 3, 2,   1};
  ASSERT_EQ(msg->size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(std::to_integer<int>((*msg)[i]), want[i]) << i;
}

std::vector<std::byte> one_tensor(std::uint8_t dtype, std::uint8_t rank, std::uint64_t dim,
                                  std::uint64_t data_len, std::size_t data_bytes) {
  std::vector<std::byte> m;
  auto put = [&](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) m.push_back(std::byte((v >> (8 * i)) & 0xff));
  };
  put(1, 4);
  put(1, 2);
  m.push_back(std::byte{'x'});
  m.push_back(std::byte{dtype});
  m.push_back(std::byte{rank});
  for (int r = 0; r < rank; ++r) put(dim, 8);
  put(data_len, 8);
  m.resize(m.size() + data_bytes);
  return m;
}

TEST(TensorFrame, RejectsBadInputsNamingTheField) {
  std::vector<NamedTensor> out;
  auto err = [&](const std::vector<std::byte>& m) {
    Status s = decode_tensors(m, out);
    EXPECT_FALSE(s.ok());
    return std::string(s.message());
  };
  EXPECT_TRUE(decode_tensors(one_tensor(1, 1, 2, 8, 8), out).ok());
  EXPECT_NE(err(one_tensor(9, 1, 2, 8, 8)).find("tensor 0: unknown dtype 9"), std::string::npos);
  EXPECT_NE(err(one_tensor(1, 9, 1, 4, 4)).find("rank 9"), std::string::npos);
  EXPECT_NE(err(one_tensor(1, 1, 2, 12, 12)).find("data_len 12"), std::string::npos);
  EXPECT_NE(err(one_tensor(1, 1, 2, 8, 7)).find("truncated"), std::string::npos);
  EXPECT_NE(err(one_tensor(1, 1, 2, 8, 9)).find("left over"), std::string::npos);
  EXPECT_NE(err(one_tensor(1, 2, 1ULL << 33, 0, 0)).find("overflows"), std::string::npos);
  EXPECT_NE(err(one_tensor(1, 1, 1ULL << 63, 0, 0)).find("2^63"), std::string::npos);
  auto bad_name = one_tensor(1, 1, 2, 8, 8);
  bad_name[6] = std::byte{0xc0};
  EXPECT_NE(err(bad_name).find("UTF-8"), std::string::npos);
  std::vector<std::byte> huge_count = {std::byte{0xff}, std::byte{0xff}, std::byte{0xff},
                                       std::byte{0xff}};
  EXPECT_NE(err(huge_count).find("cannot fit"), std::string::npos);
  EXPECT_FALSE(decode_tensors({}, out).ok());
}

TEST(TensorFrame, EncoderValidatesToo) {
  const std::vector<float> f = {1, 2, 3};
  const NamedTensor bad{"x", TensorView::of<float>(f, Shape{2, 2})};
  EXPECT_FALSE(encode_tensors({&bad, 1}));
  const std::string long_name(1025, 'a');
  const NamedTensor longn{long_name, TensorView::of<float>(f, Shape{3})};
  EXPECT_FALSE(encode_tensors({&longn, 1}));
}

}  // namespace
}  // namespace myelin::secure
