// AVX2 walkers over the complete tree layout (forest.h). This file alone is
// compiled with -mavx2 -mfma; it is reached only through avx2_kernels().
//
// The AVX-512 file's scheme at eight lanes, two vectors at a time so two
// independent walks overlap: sixteen rows through one tree (levels of at
// most 8 nodes are a permute, deeper ones a gather), or sixteen trees for
// one row (gathers, and a permute for the row when it has at most 8
// features).
#include <immintrin.h>

#include "src/model/forest.h"

namespace myelin::model::detail {
namespace {

// Entry j (j < n) of p[0..n); reads 8 entries from p when n <= 8.
inline __m256i lookup(const void* p, __m256i j, std::size_t n) {
  const auto* q = static_cast<const int*>(p);
  if (n <= 8) {
    return _mm256_permutevar8x32_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q)), j);
  }
  return _mm256_i32gather_epi32(q, j, 4);
}

// All-ones in the lanes whose walk goes to the "true" (left) child.
template <CompareMode M, bool kNan>
inline __m256i goes_left(__m256 v, __m256 th, __m256i f) {
  __m256 m;
  if constexpr (M == CompareMode::kLeq) {
    m = _mm256_cmp_ps(v, th, _CMP_LE_OQ);
  } else if constexpr (M == CompareMode::kLt) {
    m = _mm256_cmp_ps(v, th, _CMP_LT_OQ);
  } else {
    m = _mm256_cmp_ps(v, th, _CMP_EQ_OQ);
  }
  __m256i left = _mm256_castps_si256(m);
  if constexpr (kNan) {
    // Bit 31 of the feature (kNanLeftBit) spread to the whole lane.
    const __m256i nan_left = _mm256_srai_epi32(f, 31);
    const __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    left = _mm256_or_si256(left, _mm256_and_si256(nan, nan_left));
  }
  return left;
}

// Slot i's children are 2i+1 (left: `left` is -1 there) and 2i+2.
inline __m256i step(__m256i idx, __m256i left) {
  return _mm256_add_epi32(_mm256_add_epi32(_mm256_slli_epi32(idx, 1), _mm256_set1_epi32(2)), left);
}

template <CompareMode M, bool kNan>
void rows_t(const CompleteForest& f, const float* x, float* y16) {
  const std::size_t stride = f.stride();
  const std::uint32_t depth = f.depth;
  const int nf = static_cast<int>(f.num_features);
  const __m256i off0 =
      _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32(nf));
  const __m256i off1 = _mm256_add_epi32(off0, _mm256_set1_epi32(8 * nf));
  const __m256i feature_bits = _mm256_set1_epi32(static_cast<int>(~kNanLeftBit));
  __m256 acc0 = _mm256_loadu_ps(y16), acc1 = _mm256_loadu_ps(y16 + 8);
  for (std::size_t t = 0; t < f.num_trees; ++t) {
    const std::uint32_t* ft = f.feature + t * stride;
    const float* tt = f.threshold + t * stride;
    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
    for (std::uint32_t d = 0; d < depth; ++d) {
      const std::size_t first = (std::size_t{1} << d) - 1;
      const __m256i base = _mm256_set1_epi32(static_cast<int>(first));
      const __m256i j0 = _mm256_sub_epi32(i0, base), j1 = _mm256_sub_epi32(i1, base);
      const __m256i f0 = lookup(ft + first, j0, first + 1);
      const __m256i f1 = lookup(ft + first, j1, first + 1);
      const __m256 t0 = _mm256_castsi256_ps(lookup(tt + first, j0, first + 1));
      const __m256 t1 = _mm256_castsi256_ps(lookup(tt + first, j1, first + 1));
      const __m256 v0 =
          _mm256_i32gather_ps(x, _mm256_add_epi32(off0, _mm256_and_si256(f0, feature_bits)), 4);
      const __m256 v1 =
          _mm256_i32gather_ps(x, _mm256_add_epi32(off1, _mm256_and_si256(f1, feature_bits)), 4);
      i0 = step(i0, goes_left<M, kNan>(v0, t0, f0));
      i1 = step(i1, goes_left<M, kNan>(v1, t1, f1));
    }
    const __m256i last = _mm256_set1_epi32(static_cast<int>(stride - 1));
    const float* leaf = f.leaf + t * stride;
    acc0 =
        _mm256_add_ps(acc0, _mm256_castsi256_ps(lookup(leaf, _mm256_sub_epi32(i0, last), stride)));
    acc1 =
        _mm256_add_ps(acc1, _mm256_castsi256_ps(lookup(leaf, _mm256_sub_epi32(i1, last), stride)));
  }
  _mm256_storeu_ps(y16, acc0);
  _mm256_storeu_ps(y16 + 8, acc1);
}

template <CompareMode M, bool kNan>
void one_t(const CompleteForest& f, const float* x, float* lane8) {
  const std::size_t stride = f.stride();
  const std::uint32_t depth = f.depth;
  const std::size_t nf = f.num_features;
  // The row in a register when it fits; lanes past the row are zero.
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256 xr =
      nf <= 8
          ? _mm256_maskload_ps(x, _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(nf)), lane))
          : _mm256_setzero_ps();
  const __m256i off0 = _mm256_mullo_epi32(lane, _mm256_set1_epi32(static_cast<int>(stride)));
  const __m256i off1 = _mm256_add_epi32(off0, _mm256_set1_epi32(static_cast<int>(8 * stride)));
  const __m256i feature_bits = _mm256_set1_epi32(static_cast<int>(~kNanLeftBit));
  __m256 acc = _mm256_loadu_ps(lane8);
  for (std::size_t t = 0; t < f.padded_trees; t += 16) {
    const auto* ft = reinterpret_cast<const int*>(f.feature + t * stride);
    const float* tt = f.threshold + t * stride;
    __m256i i0 = _mm256_setzero_si256(), i1 = _mm256_setzero_si256();
    for (std::uint32_t d = 0; d < depth; ++d) {
      const __m256i a0 = _mm256_add_epi32(off0, i0), a1 = _mm256_add_epi32(off1, i1);
      const __m256i f0 = _mm256_i32gather_epi32(ft, a0, 4);
      const __m256i f1 = _mm256_i32gather_epi32(ft, a1, 4);
      const __m256 t0 = _mm256_i32gather_ps(tt, a0, 4);
      const __m256 t1 = _mm256_i32gather_ps(tt, a1, 4);
      const __m256i fi0 = _mm256_and_si256(f0, feature_bits);
      const __m256i fi1 = _mm256_and_si256(f1, feature_bits);
      const __m256 v0 =
          nf <= 8 ? _mm256_permutevar8x32_ps(xr, fi0) : _mm256_i32gather_ps(x, fi0, 4);
      const __m256 v1 =
          nf <= 8 ? _mm256_permutevar8x32_ps(xr, fi1) : _mm256_i32gather_ps(x, fi1, 4);
      i0 = step(i0, goes_left<M, kNan>(v0, t0, f0));
      i1 = step(i1, goes_left<M, kNan>(v1, t1, f1));
    }
    const __m256i last = _mm256_set1_epi32(static_cast<int>(stride - 1));
    const float* leaf = f.leaf + t * stride;
    // Trees t..t+7 first, then t+8..t+15 (forest.h).
    acc = _mm256_add_ps(
        acc, _mm256_i32gather_ps(leaf, _mm256_add_epi32(off0, _mm256_sub_epi32(i0, last)), 4));
    acc = _mm256_add_ps(
        acc, _mm256_i32gather_ps(leaf, _mm256_add_epi32(off1, _mm256_sub_epi32(i1, last)), 4));
  }
  _mm256_storeu_ps(lane8, acc);
}

}  // namespace

void forest_rows_avx2(const CompleteForest& f, const float* x, float* y16) {
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

void forest_one_avx2(const CompleteForest& f, const float* x, float* lane8) {
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
