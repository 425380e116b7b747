// AVX-512F walkers over the complete tree layout (forest.h). This file alone
// is compiled with -mavx512f; it is reached only through avx512_kernels().
//
// Batch: sixteen rows walk one tree together. All lanes are in the same
// tree, so a level's nodes (2^L of them, contiguous in level order) are
// looked up with in-register permutes while a level has at most 64 nodes;
// only the row's feature value needs a gather. One row: sixteen trees walk
// in the lanes, each lane gathering from its own tree; the row's features
// are a permute when there are at most 64 of them.
#include <immintrin.h>

#include "src/model/forest.h"

namespace myelin::model::detail {
namespace {

// Entry j (j < n) of p[0..n), for sixteen j at once. Reads up to 64 entries
// from p when n <= 64 (the layout's tail keeps that inside the arrays).
inline __m512i lookup(const void* p, __m512i j, std::size_t n) {
  const auto* q = static_cast<const std::uint32_t*>(p);
  if (n <= 16) return _mm512_permutexvar_epi32(j, _mm512_loadu_si512(q));
  if (n <= 32)
    return _mm512_permutex2var_epi32(_mm512_loadu_si512(q), j, _mm512_loadu_si512(q + 16));
  if (n <= 64) {
    const __m512i lo =
        _mm512_permutex2var_epi32(_mm512_loadu_si512(q), j, _mm512_loadu_si512(q + 16));
    const __m512i hi =
        _mm512_permutex2var_epi32(_mm512_loadu_si512(q + 32), j, _mm512_loadu_si512(q + 48));
    return _mm512_mask_blend_epi32(_mm512_test_epi32_mask(j, _mm512_set1_epi32(32)), lo, hi);
  }
  return _mm512_i32gather_epi32(j, q, 4);
}

// The lanes whose walk goes to the "true" (left) child. Ordered compares:
// a NaN fails all three, and goes left only where the node says so.
template <CompareMode M, bool kNan>
inline __mmask16 goes_left(__m512 v, __m512 th, __m512i f) {
  __mmask16 m;
  if constexpr (M == CompareMode::kLeq) {
    m = _mm512_cmp_ps_mask(v, th, _CMP_LE_OQ);
  } else if constexpr (M == CompareMode::kLt) {
    m = _mm512_cmp_ps_mask(v, th, _CMP_LT_OQ);
  } else {
    m = _mm512_cmp_ps_mask(v, th, _CMP_EQ_OQ);
  }
  if constexpr (kNan) {
    const __mmask16 nan_left = _mm512_test_epi32_mask(f, _mm512_set1_epi32(kNanLeftBit));
    m = static_cast<__mmask16>(m | (_mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q) & nan_left));
  }
  return m;
}

// Slot i's children are 2i+1 (left) and 2i+2.
inline __m512i step(__m512i idx, __mmask16 left) {
  const __m512i next = _mm512_add_epi32(_mm512_slli_epi32(idx, 1), _mm512_set1_epi32(2));
  return _mm512_mask_sub_epi32(next, left, next, _mm512_set1_epi32(1));
}

template <CompareMode M, bool kNan>
void rows_t(const CompleteForest& f, const float* x, float* y16) {
  const std::size_t stride = f.stride();
  const std::uint32_t depth = f.depth;
  const __m512i row_off =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(f.num_features)));
  const __m512i feature_bits = _mm512_set1_epi32(static_cast<int>(~kNanLeftBit));
  // One level of tree t for the sixteen rows.
  auto level = [&](std::size_t t, std::uint32_t d, __m512i idx) {
    const std::size_t first = (std::size_t{1} << d) - 1;
    const __m512i j = _mm512_sub_epi32(idx, _mm512_set1_epi32(static_cast<int>(first)));
    const __m512i fe = lookup(f.feature + t * stride + first, j, first + 1);
    const __m512 th = _mm512_castsi512_ps(lookup(f.threshold + t * stride + first, j, first + 1));
    const __m512i at = _mm512_add_epi32(row_off, _mm512_and_si512(fe, feature_bits));
    const __m512 v = _mm512_i32gather_ps(at, x, 4);
    return step(idx, goes_left<M, kNan>(v, th, fe));
  };
  auto leaf = [&](std::size_t t, __m512i idx) {
    const __m512i j = _mm512_sub_epi32(idx, _mm512_set1_epi32(static_cast<int>(stride - 1)));
    return _mm512_castsi512_ps(lookup(f.leaf + t * stride, j, stride));
  };
  __m512 acc = _mm512_loadu_ps(y16);
  std::size_t t = 0;
  // Four trees per pass: their walks are independent, and interleaving them
  // in one loop lets the core overlap four dependency chains (a third
  // faster than one tree at a time on the Zen 5 host).
  for (; t + 4 <= f.num_trees; t += 4) {
    __m512i w[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                    _mm512_setzero_si512()};
    for (std::uint32_t d = 0; d < depth; ++d) {
      for (std::size_t k = 0; k < 4; ++k) w[k] = level(t + k, d, w[k]);
    }
    for (std::size_t k = 0; k < 4; ++k) acc = _mm512_add_ps(acc, leaf(t + k, w[k]));
  }
  for (; t < f.num_trees; ++t) {
    __m512i a = _mm512_setzero_si512();
    for (std::uint32_t d = 0; d < depth; ++d) a = level(t, d, a);
    acc = _mm512_add_ps(acc, leaf(t, a));
  }
  _mm512_storeu_ps(y16, acc);
}

template <CompareMode M, bool kNan>
void one_t(const CompleteForest& f, const float* x, float* lane8) {
  const std::size_t stride = f.stride();
  const std::uint32_t depth = f.depth;
  const std::size_t nf = f.num_features;
  // The row in up to four registers; lanes past the row are zero, never read.
  __m512 xr[4];
  for (std::size_t k = 0; k < 4; ++k) {
    const std::size_t at = k * 16;
    const std::size_t left = nf > at ? nf - at : 0;
    const auto m = static_cast<__mmask16>(left >= 16 ? 0xFFFFu : (1u << left) - 1u);
    xr[k] = nf <= 64 ? _mm512_maskz_loadu_ps(m, x + (left ? at : 0)) : _mm512_setzero_ps();
  }
  const __m512i tree_off =
      _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                         _mm512_set1_epi32(static_cast<int>(stride)));
  const __m512i feature_bits = _mm512_set1_epi32(static_cast<int>(~kNanLeftBit));
  // Sixteen trees (t .. t+15) in the lanes, one level.
  auto level = [&](std::size_t t, __m512i idx) {
    const __m512i at = _mm512_add_epi32(tree_off, idx);
    const __m512i fe = _mm512_i32gather_epi32(at, f.feature + t * stride, 4);
    const __m512 th = _mm512_i32gather_ps(at, f.threshold + t * stride, 4);
    const __m512i fi = _mm512_and_si512(fe, feature_bits);
    __m512 v;
    if (nf <= 16) {
      v = _mm512_permutexvar_ps(fi, xr[0]);
    } else if (nf <= 32) {
      v = _mm512_permutex2var_ps(xr[0], fi, xr[1]);
    } else if (nf <= 64) {
      const __m512 lo = _mm512_permutex2var_ps(xr[0], fi, xr[1]);
      const __m512 hi = _mm512_permutex2var_ps(xr[2], fi, xr[3]);
      v = _mm512_mask_blend_ps(_mm512_test_epi32_mask(fi, _mm512_set1_epi32(32)), lo, hi);
    } else {
      v = _mm512_i32gather_ps(fi, x, 4);
    }
    return step(idx, goes_left<M, kNan>(v, th, fe));
  };
  __m256 acc = _mm256_loadu_ps(lane8);
  // Lane l holds tree t+l: trees t..t+7 are added first, then t+8..t+15.
  auto add_leaves = [&](std::size_t t, __m512i idx) {
    const __m512i at = _mm512_add_epi32(
        tree_off, _mm512_sub_epi32(idx, _mm512_set1_epi32(static_cast<int>(stride - 1))));
    const __m512 leaf = _mm512_i32gather_ps(at, f.leaf + t * stride, 4);
    acc = _mm256_add_ps(acc, _mm512_castps512_ps256(leaf));
    acc = _mm256_add_ps(acc, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(leaf), 1)));
  };
  std::size_t t = 0;
  // Two blocks of sixteen trees per pass, for two overlapping chains.
  for (; t + 32 <= f.padded_trees; t += 32) {
    __m512i a = _mm512_setzero_si512(), b = _mm512_setzero_si512();
    for (std::uint32_t d = 0; d < depth; ++d) {
      a = level(t, a);
      b = level(t + 16, b);
    }
    add_leaves(t, a);
    add_leaves(t + 16, b);
  }
  if (t < f.padded_trees) {
    __m512i a = _mm512_setzero_si512();
    for (std::uint32_t d = 0; d < depth; ++d) a = level(t, a);
    add_leaves(t, a);
  }
  _mm256_storeu_ps(lane8, acc);
}

}  // namespace

void forest_rows_avx512(const CompleteForest& f, const float* x, float* y16) {
  switch (f.mode) {
    case CompareMode::kLt:
      return f.nan_left ? rows_t<CompareMode::kLt, true>(f, x, y16)
                        : rows_t<CompareMode::kLt, false>(f, x, y16);
    case CompareMode::kEq:
      return f.nan_left ? rows_t<CompareMode::kEq, true>(f, x, y16)
                        : rows_t<CompareMode::kEq, false>(f, x, y16);
    default:
      return f.nan_left ? rows_t<CompareMode::kLeq, true>(f, x, y16)
                        : rows_t<CompareMode::kLeq, false>(f, x, y16);
  }
}

void forest_one_avx512(const CompleteForest& f, const float* x, float* lane8) {
  switch (f.mode) {
    case CompareMode::kLt:
      return f.nan_left ? one_t<CompareMode::kLt, true>(f, x, lane8)
                        : one_t<CompareMode::kLt, false>(f, x, lane8);
    case CompareMode::kEq:
      return f.nan_left ? one_t<CompareMode::kEq, true>(f, x, lane8)
                        : one_t<CompareMode::kEq, false>(f, x, lane8);
    default:
      return f.nan_left ? one_t<CompareMode::kLeq, true>(f, x, lane8)
                        : one_t<CompareMode::kLeq, false>(f, x, lane8);
  }
}

}  // namespace myelin::model::detail
