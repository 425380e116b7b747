// Tree ensembles in the complete layout, and the SIMD walkers over it.
//
// At bind time (ops_tree.cc) a forest of shallow trees is re-laid out as
// complete binary trees of one common depth D: node i of a tree has its
// children at 2i+1 (the "true" branch) and 2i+2, so a step computes the next
// index from the comparison instead of loading it, and the per-node data is
// two flat arrays (structure of arrays). A tree that ends earlier is padded
// with pass-through nodes whose two subtrees end on copies of the same leaf.
// The layout is derived from the .mylm node array and never stored in a file.
//
// The walkers are pure functions compiled per instruction set (forest_avx2.cc,
// forest_avx512.cc) and reached through the Kernels table; the scalar table
// has none, and such plans walk the node array (ops_tree.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "src/model/format.h"

namespace myelin::model::detail {

// Deeper forests keep the node array: the complete layout doubles per level.
inline constexpr std::uint32_t kMaxCompleteDepth = 10;
// Trees are padded to a multiple of this with trees that score +0.0.
inline constexpr std::size_t kForestTreeBlock = 16;
// Entries after the last tree, so a walker may load a whole level of the
// last tree as one vector (up to 64 entries from offset 63).
inline constexpr std::size_t kForestTail = 128;

struct CompleteForest {
  std::uint32_t depth = 0;               // D: steps per walk, <= kMaxCompleteDepth
  std::uint32_t num_trees = 0;           // real trees; arrays hold padded_trees
  std::uint32_t padded_trees = 0;        // num_trees rounded up to kForestTreeBlock
  std::uint32_t num_features = 0;        // row stride of x
  CompareMode mode = CompareMode::kLeq;  // kLeq, kLt or kEq (never kMixed)
  bool nan_left = false;                 // some node has kNanLeftBit
  // Tree t's node i (i < 2^D - 1, level order) is at [t * 2^D + i]; bit 31
  // of a feature is kNanLeftBit.
  const std::uint32_t* feature = nullptr;
  const float* threshold = nullptr;
  // Tree t's leaf j (j < 2^D, left to right) is at [t * 2^D + j].
  const float* leaf = nullptr;

  [[nodiscard]] std::size_t stride() const noexcept { return std::size_t{1} << depth; }
};

// Sixteen rows x[r * num_features ...], r < 16: for each real tree in order,
// y16[r] += that tree's leaf for row r (the order the node walker sums in).
using ForestRowsFn = void (*)(const CompleteForest& f, const float* x, float* y16);
// One row: for each real or padding tree t in order, lane8[t % 8] += its leaf
// (again the node walker's order; padding adds +0.0, which changes nothing
// since a sum that starts at +0.0 is never -0.0).
using ForestOneFn = void (*)(const CompleteForest& f, const float* x, float* lane8);

void forest_rows_avx2(const CompleteForest& f, const float* x, float* y16);
void forest_one_avx2(const CompleteForest& f, const float* x, float* lane8);
void forest_rows_avx512(const CompleteForest& f, const float* x, float* y16);
void forest_one_avx512(const CompleteForest& f, const float* x, float* lane8);

}  // namespace myelin::model::detail
