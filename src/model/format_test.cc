// The .mylm format: round trip, mmap, and refusal of corrupt, truncated and
// future files with a clear error.
#include "src/model/format.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "myelin/model/model.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::as_bytes;
using testing::view_of;

std::vector<std::byte> compiled(const std::string& onnx) {
  auto bytes = Model::compile_onnx(as_bytes(onnx));
  EXPECT_TRUE(bytes) << bytes.error().to_string();
  return bytes ? *bytes : std::vector<std::byte>{};
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("myelin_fmt_") + std::to_string(::getpid()) + "_" + name))
      .string();
}

void write(const std::string& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

TEST(Format, CompiledFileMapsAndPredictsLikeTheOnnx) {
  const std::string onnx = testing::tree_regressor(testing::random_trees(5, 4, 6, 3), 0.5f);
  auto from_onnx = Model::load(as_bytes(onnx));
  ASSERT_TRUE(from_onnx) << from_onnx.error().to_string();
  const std::vector<std::byte> image = compiled(onnx);
  ASSERT_EQ(image.size() % detail::kAlign, 0u);
  const std::string path = temp_path("tree.mylm");
  write(path, image);
  auto mapped = Model::load(path);
  ASSERT_TRUE(mapped) << mapped.error().to_string();
  EXPECT_EQ(mapped->source(), "mylm (mmap)");
  const std::vector<float> x = testing::random_floats(6 * 9, 4);
  auto a = from_onnx->predict(std::vector<TensorView>{view_of(x, {9, 6})});
  auto b = mapped->predict(std::vector<TensorView>{view_of(x, {9, 6})});
  ASSERT_TRUE(a && b);
  for (std::size_t i = 0; i < 9; ++i) EXPECT_EQ((*a)[0].as<float>()[i], (*b)[0].as<float>()[i]);
  // The plan bytes of an ONNX load are the same image `compile` writes.
  EXPECT_EQ(from_onnx->plan_bytes().size(), image.size());
  std::filesystem::remove(path);
}

TEST(Format, CorruptByteIsRefusedByTheChecksum) {
  std::vector<std::byte> image = compiled(testing::linear_regressor(8, 1));
  image[image.size() / 2] ^= std::byte{0x40};
  auto m = Model::load(image, {}, "bad.mylm");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kDataLoss);
  EXPECT_NE(m.error().message().find("bad.mylm: checksum mismatch"), std::string::npos)
      << m.error().message();
}

TEST(Format, TruncatedFileIsRefused) {
  const std::vector<std::byte> image = compiled(testing::linear_regressor(8, 1));
  const std::string path = temp_path("trunc.mylm");
  write(path, std::span<const std::byte>(image).first(image.size() - 64));
  auto m = Model::load(path);
  ASSERT_FALSE(m);
  EXPECT_NE(
      m.error().message().find("truncated or padded: header says " + std::to_string(image.size())),
      std::string::npos)
      << m.error().message();
  write(path, std::span<const std::byte>(image).first(40));
  auto tiny = Model::load(path);
  ASSERT_FALSE(tiny);
  EXPECT_NE(tiny.error().message().find("shorter than the 96-byte .mylm header"),
            std::string::npos);
  std::filesystem::remove(path);
}

TEST(Format, FutureVersionIsRefusedByName) {
  std::vector<std::byte> image = compiled(testing::linear_regressor(8, 1));
  detail::FileHeader h;
  std::memcpy(&h, image.data(), sizeof(h));
  h.version = 2;
  std::memcpy(image.data(), &h, sizeof(h));
  auto m = Model::load(image, {}, "v2.mylm");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().message(),
            "v2.mylm: .mylm version 2 is not supported; this build reads version 1");
}

// A file with a valid checksum but a hostile table must still be refused:
// the checksum is not a security boundary, the validator is.
TEST(Format, HostileTablesWithValidChecksumAreRefused) {
  std::vector<std::byte> image = compiled(testing::mlp({4, 3, 2}, 1));
  detail::FileHeader h;
  std::memcpy(&h, image.data(), sizeof(h));
  detail::StepRec step;
  std::memcpy(&step, image.data() + h.steps.off, sizeof(step));
  detail::DenseParams p;
  std::memcpy(&p, image.data() + step.params.off, sizeof(p));
  p.k = 1000;  // weights array is far smaller than n * k
  std::memcpy(image.data() + step.params.off, &p, sizeof(p));
  h.checksum = detail::crc32c(std::span<const std::byte>(image).subspan(sizeof(h)));
  std::memcpy(image.data(), &h, sizeof(h));
  auto m = Model::load(image, {}, "evil.mylm");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("evil.mylm: step 0"), std::string::npos)
      << m.error().message();
}

TEST(Format, Crc32cKnownAnswer) {
  // RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA; "123456789" -> 0xE3069283.
  std::vector<std::byte> zeros(32);
  EXPECT_EQ(detail::crc32c(zeros), 0x8A9136AAu);
  const std::string digits = "123456789";
  EXPECT_EQ(detail::crc32c(as_bytes(digits)), 0xE3069283u);
}

}  // namespace
}  // namespace myelin::model
