// GEMM for Dense steps on a batch: Y = act(X · Wᵀ + b).
//
// The weights are packed once, when the plan is bound, into column panels of
// kGemmNr = 16 outputs: panel q holds, for each p < k, the 16 weights
// W[16q .. 16q+15][p] next to each other (zero past n), so a micro-kernel
// reads one panel row per step of k with one or two vector loads. The bias
// is padded to whole panels (zeros when the layer has none) so the kernels
// never branch on it.
//
// The micro-kernels (gemm_avx2.cc: 6 rows x 16 columns in 12 ymm
// accumulators; gemm_avx512.cc: 8 rows x 32 columns, two panels, in 16 zmm
// accumulators) walk k in blocks of kGemmKc so a panel block stays in L1
// while every row block of X passes over it; the first block writes Y, later
// blocks add to it, and the last adds the bias and applies ReLU in the same
// store. X is read in place (row-major, k floats a row).
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>

namespace myelin::model::detail {

inline constexpr std::size_t kGemmNr = 16;   // columns per packed panel
inline constexpr std::size_t kGemmKc = 256;  // k per cache block

struct PackedWeights {
  std::size_t k = 0, n = 0, panels = 0;
  const float* panel = nullptr;  // panels * k * kGemmNr floats, 64-byte aligned
  const float* bias = nullptr;   // panels * kGemmNr floats
  std::unique_ptr<float, decltype(&std::free)> storage{nullptr, &std::free};

  // Panel q, starting at row p of k.
  [[nodiscard]] const float* at(std::size_t q, std::size_t p) const noexcept {
    return panel + (q * k + p) * kGemmNr;
  }
};

// Packs w ([n][k], row j = the weights of output j) and bias (n floats or
// null). Null when the allocation fails.
std::unique_ptr<PackedWeights> pack_weights(const float* w, std::size_t k, std::size_t n,
                                            const float* bias);

// y[r*n + j] = act(sum_p x[r*k + p] * W[j][p] + bias[j]) for r < rows,
// j < n; act is max(0, .) when relu, else the identity. One per ISA.
using GemmFn = void (*)(const float* x, std::size_t rows, const PackedWeights& w, bool relu,
                        float* y);
void gemm_scalar(const float* x, std::size_t rows, const PackedWeights& w, bool relu, float* y);
void gemm_avx2(const float* x, std::size_t rows, const PackedWeights& w, bool relu, float* y);
void gemm_avx512(const float* x, std::size_t rows, const PackedWeights& w, bool relu, float* y);

}  // namespace myelin::model::detail
