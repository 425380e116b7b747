// AVX2 + FMA GEMM (layout and loop order in gemm.h). This file alone is
// compiled with -mavx2 -mfma; it is reached only through the AVX2 (or
// AVX-512, for its tails) kernel table after cpu_features() confirms both.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "src/model/gemm.h"

namespace myelin::model::detail {
namespace {

// Lanes [0, c) set, for c in [0, 8].
inline __m256i lanes(std::size_t c) {
  alignas(32) static constexpr std::int32_t kOnes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                         0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kOnes + 8 - c));
}

struct Edge {
  bool first, last, relu;
  std::size_t cols;  // valid columns of this panel, 1..16
};

// MR rows x 16 columns: 2*MR accumulators, two panel loads and MR broadcasts
// per step of k. a: X at (row, p0), lda = k; b: the panel at p0; c: Y at
// (row, column of the panel), ldc = n.
template <std::size_t MR>
void micro(const float* a, std::size_t lda, const float* b, std::size_t kc, float* c,
           std::size_t ldc, const float* bias, const Edge& e) {
  __m256 acc[MR][2];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (std::size_t p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b + p * kGemmNr);
    const __m256 b1 = _mm256_load_ps(b + p * kGemmNr + 8);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < MR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + p);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  const __m256 bias0 = _mm256_load_ps(bias), bias1 = _mm256_load_ps(bias + 8);
  if (e.cols == kGemmNr) {
#pragma GCC unroll 8
    for (std::size_t r = 0; r < MR; ++r) {
      float* cr = c + r * ldc;
      __m256 v0 = acc[r][0], v1 = acc[r][1];
      if (!e.first) {
        v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cr));
        v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cr + 8));
      }
      if (e.last) {
        v0 = _mm256_add_ps(v0, bias0);
        v1 = _mm256_add_ps(v1, bias1);
        if (e.relu) {
          v0 = _mm256_max_ps(v0, zero);
          v1 = _mm256_max_ps(v1, zero);
        }
      }
      _mm256_storeu_ps(cr, v0);
      _mm256_storeu_ps(cr + 8, v1);
    }
    return;
  }
  // A partial panel (the last, when n is not a multiple of 16): masked
  // loads and stores, so nothing past column n is touched.
  const __m256i m0 = lanes(std::min<std::size_t>(e.cols, 8));
  const __m256i m1 = lanes(e.cols > 8 ? e.cols - 8 : 0);
  // Unrolled like the loops above: a rolled loop here would make GCC keep
  // acc in memory and store it on every step of k.
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r) {
    float* cr = c + r * ldc;
    __m256 v0 = acc[r][0], v1 = acc[r][1];
    if (!e.first) {
      v0 = _mm256_add_ps(v0, _mm256_maskload_ps(cr, m0));
      v1 = _mm256_add_ps(v1, _mm256_maskload_ps(cr + 8, m1));
    }
    if (e.last) {
      v0 = _mm256_add_ps(v0, bias0);
      v1 = _mm256_add_ps(v1, bias1);
      if (e.relu) {
        v0 = _mm256_max_ps(v0, zero);
        v1 = _mm256_max_ps(v1, zero);
      }
    }
    _mm256_maskstore_ps(cr, m0, v0);
    _mm256_maskstore_ps(cr + 8, m1, v1);
  }
}

using MicroFn = void (*)(const float*, std::size_t, const float*, std::size_t, float*, std::size_t,
                         const float*, const Edge&);
constexpr MicroFn kMicro[7] = {nullptr, micro<1>, micro<2>, micro<3>, micro<4>, micro<5>, micro<6>};

}  // namespace

void gemm_avx2(const float* x, std::size_t rows, const PackedWeights& w, bool relu, float* y) {
  const std::size_t k = w.k, n = w.n;
  if (k == 0) return gemm_scalar(x, rows, w, relu, y);
  for (std::size_t p0 = 0; p0 < k; p0 += kGemmKc) {
    const std::size_t kc = std::min(kGemmKc, k - p0);
    for (std::size_t q = 0; q < w.panels; ++q) {
      const Edge e{p0 == 0, p0 + kc == k, relu, std::min(kGemmNr, n - q * kGemmNr)};
      const float* b = w.at(q, p0);
      const float* bias = w.bias + q * kGemmNr;
      float* yq = y + q * kGemmNr;
      std::size_t r = 0;
      for (; r + 6 <= rows; r += 6) micro<6>(x + r * k + p0, k, b, kc, yq + r * n, n, bias, e);
      if (r < rows) kMicro[rows - r](x + r * k + p0, k, b, kc, yq + r * n, n, bias, e);
    }
  }
}

}  // namespace myelin::model::detail
