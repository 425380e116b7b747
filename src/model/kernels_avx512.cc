// AVX-512F kernels. This file alone is compiled with -mavx512f -mavx2 -mfma;
// it is reached only through kernels_for() after cpu_features() confirms
// AVX-512F. Tails use masked loads instead of a scalar loop.
#include <immintrin.h>

#include "src/model/kernels.h"

namespace myelin::model::detail {
namespace {

inline __mmask16 tail_mask(std::size_t left) { return static_cast<__mmask16>((1u << left) - 1u); }

float dot_avx512(const float* a, const float* b, std::size_t n) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
    s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
    s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
  }
  for (; i + 16 <= n; i += 16) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
  }
  if (i < n) {
    const __mmask16 m = tail_mask(n - i);
    s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

// Four outputs per pass share each load of x.
void dense4(const float* x, std::size_t k, const float* w, float* y4, const float* bias) {
  const float* w0 = w;
  const float* w1 = w + k;
  const float* w2 = w + 2 * k;
  const float* w3 = w + 3 * k;
  __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(),
         a3 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(),
         b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= k; i += 32) {
    const __m512 xa = _mm512_loadu_ps(x + i);
    const __m512 xb = _mm512_loadu_ps(x + i + 16);
    a0 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w0 + i), a0);
    a1 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w1 + i), a1);
    a2 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w2 + i), a2);
    a3 = _mm512_fmadd_ps(xa, _mm512_loadu_ps(w3 + i), a3);
    b0 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w0 + i + 16), b0);
    b1 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w1 + i + 16), b1);
    b2 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w2 + i + 16), b2);
    b3 = _mm512_fmadd_ps(xb, _mm512_loadu_ps(w3 + i + 16), b3);
  }
  for (; i < k; i += 16) {
    const __mmask16 m = k - i >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(k - i);
    const __m512 xa = _mm512_maskz_loadu_ps(m, x + i);
    a0 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(m, w0 + i), a0);
    a1 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(m, w1 + i), a1);
    a2 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(m, w2 + i), a2);
    a3 = _mm512_fmadd_ps(xa, _mm512_maskz_loadu_ps(m, w3 + i), a3);
  }
  y4[0] = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)) + (bias ? bias[0] : 0.0f);
  y4[1] = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1)) + (bias ? bias[1] : 0.0f);
  y4[2] = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)) + (bias ? bias[2] : 0.0f);
  y4[3] = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3)) + (bias ? bias[3] : 0.0f);
}

// Four rows x two outputs per pass: each weight load serves four rows, so a
// batch streams the weights a quarter as often (what makes batched MLPs fast).
void dense_rows4(const float* x, std::size_t k, const float* w, std::size_t n, const float* bias,
                 float* y) {
  std::size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const float* w0 = w + j * k;
    const float* w1 = w0 + k;
    __m512 acc[4][2];
    for (auto& a : acc) a[0] = a[1] = _mm512_setzero_ps();
    for (std::size_t i = 0; i < k; i += 16) {
      const __mmask16 m = k - i >= 16 ? static_cast<__mmask16>(0xFFFF) : tail_mask(k - i);
      const __m512 v0 = _mm512_maskz_loadu_ps(m, w0 + i);
      const __m512 v1 = _mm512_maskz_loadu_ps(m, w1 + i);
      for (std::size_t r = 0; r < 4; ++r) {
        const __m512 xr = _mm512_maskz_loadu_ps(m, x + r * k + i);
        acc[r][0] = _mm512_fmadd_ps(xr, v0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(xr, v1, acc[r][1]);
      }
    }
    for (std::size_t r = 0; r < 4; ++r) {
      y[r * n + j] = _mm512_reduce_add_ps(acc[r][0]) + (bias ? bias[j] : 0.0f);
      y[r * n + j + 1] = _mm512_reduce_add_ps(acc[r][1]) + (bias ? bias[j + 1] : 0.0f);
    }
  }
  for (; j < n; ++j) {
    for (std::size_t r = 0; r < 4; ++r)
      y[r * n + j] = dot_avx512(x + r * k, w + j * k, k) + (bias ? bias[j] : 0.0f);
  }
}

void dense_avx512(const float* x, std::size_t rows, std::size_t k, const float* w, std::size_t n,
                  const float* bias, float* y) {
  std::size_t r0 = 0;
  if (n > 1) {
    for (; r0 + 4 <= rows; r0 += 4) dense_rows4(x + r0 * k, k, w, n, bias, y + r0 * n);
  }
  for (std::size_t r = r0; r < rows; ++r) {
    const float* xr = x + r * k;
    float* yr = y + r * n;
    std::size_t j = 0;
    for (; j + 4 <= n; j += 4) dense4(xr, k, w + j * k, yr + j, bias ? bias + j : nullptr);
    for (; j < n; ++j) yr[j] = dot_avx512(xr, w + j * k, k) + (bias ? bias[j] : 0.0f);
  }
}

constexpr Kernels kAvx512{dense_avx512, dot_avx512, gemm_avx512, forest_rows_avx512,
                          forest_one_avx512};

}  // namespace

const Kernels* avx512_kernels() noexcept { return &kAvx512; }

}  // namespace myelin::model::detail
