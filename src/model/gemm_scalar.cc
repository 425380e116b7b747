// Weight packing and the portable GEMM (the reference layout the SIMD
// kernels in gemm_avx2.cc / gemm_avx512.cc follow).
#include <algorithm>
#include <cstring>

#include "src/model/format.h"
#include "src/model/gemm.h"

namespace myelin::model::detail {

std::unique_ptr<PackedWeights> pack_weights(const float* w, std::size_t k, std::size_t n,
                                            const float* bias) {
  auto pw = std::make_unique<PackedWeights>();
  pw->k = k;
  pw->n = n;
  pw->panels = (n + kGemmNr - 1) / kGemmNr;
  const std::size_t panel_floats = pw->panels * k * kGemmNr;
  const std::size_t floats = panel_floats + pw->panels * kGemmNr;
  const std::size_t bytes = (floats * sizeof(float) + kAlign - 1) / kAlign * kAlign;
  auto* buf = static_cast<float*>(std::aligned_alloc(kAlign, std::max(bytes, kAlign)));
  if (buf == nullptr) return nullptr;
  pw->storage.reset(buf);
  std::memset(buf, 0, bytes);
  for (std::size_t q = 0; q < pw->panels; ++q) {
    const std::size_t cols = std::min(kGemmNr, n - q * kGemmNr);
    float* dst = buf + q * k * kGemmNr;
    for (std::size_t c = 0; c < cols; ++c) {
      const float* src = w + (q * kGemmNr + c) * k;
      for (std::size_t p = 0; p < k; ++p) dst[p * kGemmNr + c] = src[p];
    }
  }
  float* b = buf + panel_floats;
  if (bias != nullptr) std::memcpy(b, bias, n * sizeof(float));
  pw->panel = buf;
  pw->bias = b;
  return pw;
}

// Two rows per pass over a panel, each panel row read once for both. The
// column loop is innermost so a compiler can use its vector unit across the
// 16 columns; the loop over k must not be vectorised (GCC 12 otherwise
// vectorises it as a reduction with shuffles, measured ~2x slower than the
// plain dot products this replaces). GCC only: clang (the fuzz preset) has
// no optimize attribute and rejects an unknown one under -Werror.
#if defined(__GNUC__) && !defined(__clang__)
#define MYELIN_NO_LOOP_VECTORIZE [[gnu::optimize("no-tree-loop-vectorize")]]
#else
#define MYELIN_NO_LOOP_VECTORIZE
#endif
MYELIN_NO_LOOP_VECTORIZE void gemm_scalar(const float* x, std::size_t rows, const PackedWeights& w,
                                          bool relu, float* y) {
  const std::size_t k = w.k, n = w.n;
  for (std::size_t r = 0; r < rows; r += 2) {
    const bool two = r + 1 < rows;
    const float* x0 = x + r * k;
    const float* x1 = two ? x0 + k : x0;
    for (std::size_t q = 0; q < w.panels; ++q) {
      float a0[kGemmNr] = {}, a1[kGemmNr] = {};
      const float* b = w.at(q, 0);
      for (std::size_t p = 0; p < k; ++p) {
        const float v0 = x0[p], v1 = x1[p];
        const float* bp = b + p * kGemmNr;
        for (std::size_t c = 0; c < kGemmNr; ++c) {
          a0[c] += v0 * bp[c];
          a1[c] += v1 * bp[c];
        }
      }
      const std::size_t cols = std::min(kGemmNr, n - q * kGemmNr);
      for (std::size_t i = 0; i < (two ? 2u : 1u); ++i) {
        const float* a = i == 0 ? a0 : a1;
        float* yr = y + (r + i) * n + q * kGemmNr;
        for (std::size_t c = 0; c < cols; ++c) {
          const float v = a[c] + w.bias[q * kGemmNr + c];
          yr[c] = relu && !(v > 0) ? 0.0f : v;
        }
      }
    }
  }
}

}  // namespace myelin::model::detail
