// Portable kernels and the ISA dispatch. Four independent accumulators keep
// the FP adder pipelined even without SIMD.
#include "myelin/base/cpu_features.h"
#include "src/model/kernels.h"

namespace myelin::model::detail {
namespace {

float dot_scalar(const float* a, const float* b, std::size_t n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

void dense_scalar(const float* x, std::size_t rows, std::size_t k, const float* w, std::size_t n,
                  const float* bias, float* y) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * k;
    float* yr = y + r * n;
    for (std::size_t j = 0; j < n; ++j) {
      yr[j] = dot_scalar(xr, w + j * k, k) + (bias ? bias[j] : 0.0f);
    }
  }
}

constexpr Kernels kScalar{dense_scalar, dot_scalar, gemm_scalar, nullptr, nullptr};

}  // namespace

const Kernels& scalar_kernels() noexcept { return kScalar; }

const Kernels* kernels_for(Isa isa, Isa* chosen) noexcept {
  const CpuFeatures& f = cpu_features();
  const bool has512 = f.avx512f && f.avx2 && f.fma && avx512_kernels() != nullptr;
  const bool has2 = f.avx2 && f.fma && avx2_kernels() != nullptr;
  if (isa == Isa::kAuto) isa = has512 ? Isa::kAvx512 : has2 ? Isa::kAvx2 : Isa::kScalar;
  if (chosen) *chosen = isa;
  switch (isa) {
    case Isa::kAvx512:
      return has512 ? avx512_kernels() : nullptr;
    case Isa::kAvx2:
      return has2 ? avx2_kernels() : nullptr;
    case Isa::kScalar:
      return &kScalar;
    case Isa::kAuto:
      break;
  }
  return nullptr;
}

}  // namespace myelin::model::detail

namespace myelin::model {

std::string_view to_string(Isa isa) noexcept {
  switch (isa) {
    case Isa::kAuto:
      return "auto";
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2+fma";
    case Isa::kAvx512:
      return "avx512f";
  }
  return "unknown";
}

}  // namespace myelin::model
