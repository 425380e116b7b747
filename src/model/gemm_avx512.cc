// AVX-512F GEMM (layout and loop order in gemm.h): 8 rows x two panels (32
// columns) in 16 zmm accumulators, an odd last panel 8 x 16. This file alone
// is compiled with -mavx512f; it is reached only through the AVX-512 kernel
// table after cpu_features() confirms AVX-512F.
#include <immintrin.h>

#include <algorithm>

#include "src/model/gemm.h"

namespace myelin::model::detail {
namespace {

struct Edge {
  bool first, last, relu;
  __mmask16 mask[2];  // valid columns of each panel
};

// MR rows x NP panels. a: X at (row, p0), lda = k; b[i]: panel i at p0;
// c: Y at (row, first column), ldc = n.
template <std::size_t MR, std::size_t NP>
void micro(const float* a, std::size_t lda, const float* const* b, std::size_t kc, float* c,
           std::size_t ldc, const float* bias, const Edge& e) {
  __m512 acc[MR][NP];
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (std::size_t j = 0; j < NP; ++j) acc[r][j] = _mm512_setzero_ps();
  }
  const float* b0 = b[0];
  const float* b1 = b[NP - 1];
  for (std::size_t p = 0; p < kc; ++p) {
    __m512 bv[NP];
    bv[0] = _mm512_load_ps(b0 + p * kGemmNr);
    if constexpr (NP == 2) bv[NP - 1] = _mm512_load_ps(b1 + p * kGemmNr);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * lda + p]);
#pragma GCC unroll 2
      for (std::size_t j = 0; j < NP; ++j) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
    }
  }
  const __m512 zero = _mm512_setzero_ps();
#pragma GCC unroll 8
  for (std::size_t r = 0; r < MR; ++r) {
#pragma GCC unroll 2
    for (std::size_t j = 0; j < NP; ++j) {
      float* cr = c + r * ldc + j * kGemmNr;
      __m512 v = acc[r][j];
      if (!e.first) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(e.mask[j], cr));
      if (e.last) {
        v = _mm512_add_ps(v, _mm512_load_ps(bias + j * kGemmNr));
        if (e.relu) v = _mm512_max_ps(v, zero);
      }
      _mm512_mask_storeu_ps(cr, e.mask[j], v);
    }
  }
}

using MicroFn = void (*)(const float*, std::size_t, const float* const*, std::size_t, float*,
                         std::size_t, const float*, const Edge&);
template <std::size_t NP>
constexpr MicroFn kMicro[9] = {nullptr,      micro<1, NP>, micro<2, NP>, micro<3, NP>, micro<4, NP>,
                               micro<5, NP>, micro<6, NP>, micro<7, NP>, micro<8, NP>};

__mmask16 cols_mask(std::size_t cols) {
  return cols >= kGemmNr ? static_cast<__mmask16>(0xFFFF)
                         : static_cast<__mmask16>((1u << cols) - 1u);
}

}  // namespace

void gemm_avx512(const float* x, std::size_t rows, const PackedWeights& w, bool relu, float* y) {
  const std::size_t k = w.k, n = w.n;
  if (k == 0) return gemm_scalar(x, rows, w, relu, y);
  for (std::size_t p0 = 0; p0 < k; p0 += kGemmKc) {
    const std::size_t kc = std::min(kGemmKc, k - p0);
    for (std::size_t q = 0; q < w.panels; q += 2) {
      const std::size_t np = std::min<std::size_t>(2, w.panels - q);
      const std::size_t c0 = q * kGemmNr;
      Edge e{p0 == 0, p0 + kc == k, relu, {cols_mask(n - c0), 0}};
      if (np == 2) e.mask[1] = cols_mask(n - c0 - kGemmNr);
      const float* b[2] = {w.at(q, p0), np == 2 ? w.at(q + 1, p0) : nullptr};
      const float* bias = w.bias + c0;
      float* yq = y + c0;
      const MicroFn* fns = np == 2 ? kMicro<2> : kMicro<1>;
      std::size_t r = 0;
      for (; r + 8 <= rows; r += 8) fns[8](x + r * k + p0, k, b, kc, yq + r * n, n, bias, e);
      if (r < rows) fns[rows - r](x + r * k + p0, k, b, kc, yq + r * n, n, bias, e);
    }
  }
}

}  // namespace myelin::model::detail
