// AVX2 + FMA kernels. This file alone is compiled with -mavx2 -mfma; it is
// reached only through kernels_for() after cpu_features() confirms both.
#include <immintrin.h>

#include <cstdint>

#include "src/model/kernels.h"

namespace myelin::model::detail {
namespace {

inline float hsum(__m256 v) {
  const __m128 lo = _mm256_castps256_ps128(v);
  const __m128 hi = _mm256_extractf128_ps(v, 1);
  __m128 s = _mm_add_ps(lo, hi);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Lanes [0, r) set, for r in [1, 7].
inline __m256i tail_mask(std::size_t r) {
  alignas(32) static constexpr std::int32_t kOnes[16] = {-1, -1, -1, -1, -1, -1, -1, -1,
                                                         0,  0,  0,  0,  0,  0,  0,  0};
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kOnes + 8 - r));
}

// Four accumulators of 8 lanes: enough independent FMA chains to cover the
// FMA latency on both ports.
float dot_avx2(const float* a, const float* b, std::size_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 32 <= n; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= n; i += 8) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  }
  if (i < n) {
    // The last 1-7 elements in one masked FMA (masked-off lanes are not read).
    const __m256i m = tail_mask(n - i);
    s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m), _mm256_maskload_ps(b + i, m), s1);
  }
  return hsum(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
}

// Four outputs per pass share each load of x; two chains per output.
void dense4(const float* x, std::size_t k, const float* w, float* y4, const float* bias) {
  const float* w0 = w;
  const float* w1 = w + k;
  const float* w2 = w + 2 * k;
  const float* w3 = w + 3 * k;
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(),
         a3 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(),
         b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
  std::size_t i = 0;
  for (; i + 16 <= k; i += 16) {
    const __m256 xa = _mm256_loadu_ps(x + i);
    const __m256 xb = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w0 + i), a0);
    a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w1 + i), a1);
    a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w2 + i), a2);
    a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w3 + i), a3);
    b0 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w0 + i + 8), b0);
    b1 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w1 + i + 8), b1);
    b2 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w2 + i + 8), b2);
    b3 = _mm256_fmadd_ps(xb, _mm256_loadu_ps(w3 + i + 8), b3);
  }
  for (; i + 8 <= k; i += 8) {
    const __m256 xa = _mm256_loadu_ps(x + i);
    a0 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w0 + i), a0);
    a1 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w1 + i), a1);
    a2 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w2 + i), a2);
    a3 = _mm256_fmadd_ps(xa, _mm256_loadu_ps(w3 + i), a3);
  }
  float t0 = 0, t1 = 0, t2 = 0, t3 = 0;
  for (; i < k; ++i) {
    t0 += x[i] * w0[i];
    t1 += x[i] * w1[i];
    t2 += x[i] * w2[i];
    t3 += x[i] * w3[i];
  }
  y4[0] = hsum(_mm256_add_ps(a0, b0)) + t0 + (bias ? bias[0] : 0.0f);
  y4[1] = hsum(_mm256_add_ps(a1, b1)) + t1 + (bias ? bias[1] : 0.0f);
  y4[2] = hsum(_mm256_add_ps(a2, b2)) + t2 + (bias ? bias[2] : 0.0f);
  y4[3] = hsum(_mm256_add_ps(a3, b3)) + t3 + (bias ? bias[3] : 0.0f);
}

// Four rows x two outputs per pass: each weight load serves four rows.
void dense_rows4(const float* x, std::size_t k, const float* w, std::size_t n, const float* bias,
                 float* y) {
  std::size_t j = 0;
  for (; j + 2 <= n; j += 2) {
    const float* w0 = w + j * k;
    const float* w1 = w0 + k;
    __m256 acc[4][2];
    for (auto& a : acc) a[0] = a[1] = _mm256_setzero_ps();
    std::size_t i = 0;
    for (; i + 8 <= k; i += 8) {
      const __m256 v0 = _mm256_loadu_ps(w0 + i);
      const __m256 v1 = _mm256_loadu_ps(w1 + i);
      for (std::size_t r = 0; r < 4; ++r) {
        const __m256 xr = _mm256_loadu_ps(x + r * k + i);
        acc[r][0] = _mm256_fmadd_ps(xr, v0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(xr, v1, acc[r][1]);
      }
    }
    for (std::size_t r = 0; r < 4; ++r) {
      float t0 = 0, t1 = 0;
      for (std::size_t q = i; q < k; ++q) {
        t0 += x[r * k + q] * w0[q];
        t1 += x[r * k + q] * w1[q];
      }
      y[r * n + j] = hsum(acc[r][0]) + t0 + (bias ? bias[j] : 0.0f);
      y[r * n + j + 1] = hsum(acc[r][1]) + t1 + (bias ? bias[j + 1] : 0.0f);
    }
  }
  for (; j < n; ++j) {
    for (std::size_t r = 0; r < 4; ++r)
      y[r * n + j] = dot_avx2(x + r * k, w + j * k, k) + (bias ? bias[j] : 0.0f);
  }
}

void dense_avx2(const float* x, std::size_t rows, std::size_t k, const float* w, std::size_t n,
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
    for (; j < n; ++j) yr[j] = dot_avx2(xr, w + j * k, k) + (bias ? bias[j] : 0.0f);
  }
}

constexpr Kernels kAvx2{dense_avx2, dot_avx2, gemm_avx2, forest_rows_avx2, forest_one_avx2};

}  // namespace

const Kernels* avx2_kernels() noexcept { return &kAvx2; }

}  // namespace myelin::model::detail
