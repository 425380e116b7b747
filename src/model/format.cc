#include "src/model/format.h"

#include <nmmintrin.h>

#include <array>
#include <cstring>

#include "myelin/base/cpu_features.h"

namespace myelin::model::detail {
namespace {

constexpr std::uint32_t kPoly = 0x82F63B78u;  // CRC-32C, reflected

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int b = 0; b < 8; ++b) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint32_t, 256> kTable = make_table();

std::uint32_t crc32c_soft(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
  return crc;
}

// The SSE4.2 crc32 instruction computes exactly CRC-32C, 8 bytes a step.
__attribute__((target("sse4.2"))) std::uint32_t crc32c_hw(std::uint32_t crc, const unsigned char* p,
                                                          std::size_t n) {
  std::uint64_t c = crc;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t v;
    std::memcpy(&v, p + i, 8);
    c = _mm_crc32_u64(c, v);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; i < n; ++i) c32 = _mm_crc32_u8(c32, p[i]);
  return c32;
}

}  // namespace

std::uint32_t crc32c(std::span<const std::byte> bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::uint32_t crc = cpu_features().sse42 ? crc32c_hw(0xFFFFFFFFu, p, bytes.size())
                                                 : crc32c_soft(0xFFFFFFFFu, p, bytes.size());
  return crc ^ 0xFFFFFFFFu;
}

std::string_view to_string(OpKind op) noexcept {
  switch (op) {
    case OpKind::kDense:
      return "dense";
    case OpKind::kMatMul:
      return "matmul";
    case OpKind::kBinary:
      return "binary";
    case OpKind::kUnary:
      return "unary";
    case OpKind::kSoftmax:
      return "softmax";
    case OpKind::kArgMax:
      return "argmax";
    case OpKind::kConcat:
      return "concat";
    case OpKind::kScaler:
      return "scaler";
    case OpKind::kNormalizer:
      return "normalizer";
    case OpKind::kTreeEnsemble:
      return "tree_ensemble";
    case OpKind::kClassifierPost:
      return "classifier_post";
    case OpKind::kPostTransform:
      return "post_transform";
    case OpKind::kCast:
      return "cast";
    case OpKind::kActivation:
      return "activation";
    case OpKind::kTranspose:
      return "transpose";
    case OpKind::kReduce:
      return "reduce";
    case OpKind::kLayerNorm:
      return "layer_norm";
    case OpKind::kGather:
      return "gather";
    case OpKind::kExpand:
      return "expand";
  }
  return "unknown";
}

}  // namespace myelin::model::detail
