// Tree ensembles: branch-free traversal, many walks in flight at a time.
//
// A leaf points to itself on both sides, so a walk simply runs its tree's
// depth in steps; independent walks (eight samples through one tree, or one
// sample through eight trees) interleave so their dependent loads overlap
// instead of serialising on memory latency.
//
// Shallow single-score forests (what XGBoost, LightGBM and scikit-learn
// regressors export) are also re-laid out at bind time as complete trees
// (forest.h) and walked by the SIMD kernels of the plan's instruction set;
// they add the same leaves in the same order as the node walk below, so the
// two give bit-identical scores. The scalar table and every other forest
// (deep or mixed-mode trees, several targets, MIN/MAX) use the node walk.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "src/model/forest.h"
#include "src/model/plan.h"

namespace myelin::model::detail {
namespace {

constexpr std::uint32_t kMaxDepth = 4096;
constexpr std::size_t kLanes = 8;      // trees in flight for one sample
constexpr std::size_t kRowLanes = 16;  // samples in flight through one tree

struct TreeView {
  const TreeParams* p;
  const std::uint32_t* roots;
  const std::uint32_t* depths;
  const TreeNode* nodes;
  const std::uint8_t* modes;
  const float* leaf;
  const float* base;
  // The complete layout, built when the plan's kernels have walkers for it
  // and the forest qualifies (build_complete).
  bool complete = false;
  CompleteForest forest;
  ForestRowsFn forest_rows = nullptr;
  ForestOneFn forest_one = nullptr;
  std::vector<std::uint32_t> c_feature;
  std::vector<float> c_threshold, c_leaf;
};

// Lays tree `t` out from node `g` at level-order slot `i` of level `d`. The
// node walk takes exactly `steps` steps and reads the leaf value of the node
// it stops on, whatever that node is; past that level the node's slot
// becomes a pass-through whose subtrees all end on that same value, so the
// complete walk of `depth` steps reaches the same value for every input.
void lay_out(TreeView& v, std::size_t base, std::uint32_t g, std::size_t i, std::uint32_t d,
             std::uint32_t steps) {
  const std::uint32_t depth = v.forest.depth;
  if (d == depth) {
    v.c_leaf[base + i - ((std::size_t{1} << depth) - 1)] = v.leaf[g];
    return;
  }
  const bool walking = d < steps;
  v.c_feature[base + i] = walking ? v.nodes[g].feature : 0u;
  v.c_threshold[base + i] = walking ? v.nodes[g].threshold : 0.0f;
  lay_out(v, base, walking ? v.nodes[g].child[0] : g, 2 * i + 1, d + 1, steps);
  lay_out(v, base, walking ? v.nodes[g].child[1] : g, 2 * i + 2, d + 1, steps);
}

// Builds the complete layout when it pays and the result stays exact:
// one score column summed (or averaged), one comparison mode, every tree at
// most kMaxCompleteDepth steps, and no more than a few times the node
// array's memory (a deep, thin tree would blow up 2^depth-fold).
void build_complete(TreeView& v, std::size_t num_nodes) {
  const TreeParams& p = *v.p;
  const auto agg = static_cast<Aggregate>(p.aggregate);
  if (p.num_targets != 1 || (agg != Aggregate::kSum && agg != Aggregate::kAverage) ||
      p.mode == static_cast<std::uint32_t>(CompareMode::kMixed) || p.num_trees == 0 ||
      p.num_features == 0 || p.num_features > (1u << 24))
    return;
  std::uint32_t depth = 0;
  for (std::uint32_t t = 0; t < p.num_trees; ++t) depth = std::max(depth, v.depths[t]);
  if (depth > kMaxCompleteDepth) return;
  const std::size_t padded =
      (std::size_t{p.num_trees} + kForestTreeBlock - 1) / kForestTreeBlock * kForestTreeBlock;
  const std::size_t stride = std::size_t{1} << depth;
  const std::size_t entries = padded * stride + kForestTail;
  // Three 4-byte arrays of `entries` against 16-byte nodes plus a leaf value.
  if (entries * 12 > 4 * num_nodes * 20 + (std::size_t{64} << 10)) return;
  v.forest.depth = depth;
  v.c_feature.assign(entries, 0u);
  v.c_threshold.assign(entries, 0.0f);
  v.c_leaf.assign(entries, 0.0f);
  for (std::uint32_t t = 0; t < p.num_trees; ++t)
    lay_out(v, t * stride, v.roots[t], 0, 0, v.depths[t]);
  v.forest.num_trees = p.num_trees;
  v.forest.padded_trees = static_cast<std::uint32_t>(padded);
  v.forest.num_features = p.num_features;
  v.forest.mode = static_cast<CompareMode>(p.mode);
  v.forest.nan_left = p.has_nan_left != 0;
  v.forest.feature = v.c_feature.data();
  v.forest.threshold = v.c_threshold.data();
  v.forest.leaf = v.c_leaf.data();
  v.complete = true;
}

template <CompareMode M, bool kNan>
inline std::uint32_t advance(const TreeView& t, std::uint32_t i, const float* x) {
  const TreeNode& nd = t.nodes[i];
  const std::uint32_t f = nd.feature;
  const float v = x[f & ~kNanLeftBit];
  // The comparison becomes an index, never a branch: on real data it is a
  // coin flip, and a mispredicted branch per step cost more than the step.
  std::uint32_t go_left;
  if constexpr (M == CompareMode::kLeq) {
    go_left = static_cast<std::uint32_t>(v <= nd.threshold);
  } else if constexpr (M == CompareMode::kLt) {
    go_left = static_cast<std::uint32_t>(v < nd.threshold);
  } else if constexpr (M == CompareMode::kEq) {
    go_left = static_cast<std::uint32_t>(v == nd.threshold);
  } else {
    const std::uint32_t m = t.modes[i];
    go_left = (static_cast<std::uint32_t>(v <= nd.threshold) & static_cast<std::uint32_t>(m == 0)) |
              (static_cast<std::uint32_t>(v < nd.threshold) & static_cast<std::uint32_t>(m == 1)) |
              (static_cast<std::uint32_t>(v == nd.threshold) & static_cast<std::uint32_t>(m >= 2));
  }
  if constexpr (kNan) go_left |= (f >> 31) & static_cast<std::uint32_t>(v != v);
  return nd.child[go_left ^ 1u];
}

inline void accumulate(Aggregate agg, float* acc, const float* leaf, std::size_t nt) {
  for (std::size_t t = 0; t < nt; ++t) {
    const float w = leaf[t];
    switch (agg) {
      case Aggregate::kSum:
      case Aggregate::kAverage:
        acc[t] += w;
        break;
      case Aggregate::kMin:
        if (!(w != w)) acc[t] = std::min(acc[t], w);
        break;
      case Aggregate::kMax:
        if (!(w != w)) acc[t] = std::max(acc[t], w);
        break;
    }
  }
}

template <CompareMode M, bool kNan>
void run_tree_t(const RtStep& s, const ExecCtx& c) {
  const TreeView& t = *static_cast<const TreeView*>(s.aux);
  const TreeParams& p = *t.p;
  const auto* x = static_cast<const float*>(c.ptr[s.in[0]]);
  auto* y = static_cast<float*>(c.ptr[s.out[0]]);
  const std::size_t rows = s.outer * (s.outer_batched ? c.batch : 1);
  const std::size_t nf = p.num_features, nt = p.num_targets, ntrees = p.num_trees;
  const auto agg = static_cast<Aggregate>(p.aggregate);
  const float init = agg == Aggregate::kMin   ? std::numeric_limits<float>::infinity()
                     : agg == Aggregate::kMax ? -std::numeric_limits<float>::infinity()
                                              : 0.0f;
  std::fill(y, y + rows * nt, init);
  const bool fast = nt == 1 && (agg == Aggregate::kSum || agg == Aggregate::kAverage);
  std::size_t r = 0;
  if (t.complete) {
    // fast holds here (build_complete); the scores go straight into y.
    for (; r + kRowLanes <= rows; r += kRowLanes) t.forest_rows(t.forest, x + r * nf, y + r);
    for (; r < rows; ++r) {
      float lane_sum[kLanes] = {};
      t.forest_one(t.forest, x + r * nf, lane_sum);
      float sum = 0;
      for (float v : lane_sum) sum += v;
      y[r] += sum;
    }
  }
  // Sixteen samples through each tree together.
  for (; r + kRowLanes <= rows; r += kRowLanes) {
    const float* xr = x + r * nf;
    float* yr = y + r * nt;
    for (std::size_t tr = 0; tr < ntrees; ++tr) {
      std::uint32_t idx[kRowLanes];
      for (std::size_t l = 0; l < kRowLanes; ++l) idx[l] = t.roots[tr];
      for (std::uint32_t d = t.depths[tr]; d > 0; --d) {
        for (std::size_t l = 0; l < kRowLanes; ++l)
          idx[l] = advance<M, kNan>(t, idx[l], xr + l * nf);
      }
      if (fast) {
        for (std::size_t l = 0; l < kRowLanes; ++l) yr[l] += t.leaf[idx[l]];
      } else {
        for (std::size_t l = 0; l < kRowLanes; ++l)
          accumulate(agg, yr + l * nt, t.leaf + std::size_t{idx[l]} * nt, nt);
      }
    }
  }
  // Remaining samples one at a time, eight trees in flight.
  for (; r < rows; ++r) {
    const float* xr = x + r * nf;
    float* yr = y + r * nt;
    float lane_sum[kLanes] = {};
    for (std::size_t tr = 0; tr < ntrees; tr += kLanes) {
      const std::size_t n = std::min(kLanes, ntrees - tr);
      std::uint32_t idx[kLanes];
      std::uint32_t depth = 0;
      for (std::size_t l = 0; l < kLanes; ++l) {
        // Short blocks repeat the last tree; its result is not used.
        const std::size_t tl = tr + std::min(l, n - 1);
        idx[l] = t.roots[tl];
        depth = std::max(depth, t.depths[tl]);
      }
      for (std::uint32_t d = depth; d > 0; --d) {
        for (std::size_t l = 0; l < kLanes; ++l) idx[l] = advance<M, kNan>(t, idx[l], xr);
      }
      if (fast) {
        for (std::size_t l = 0; l < n; ++l) lane_sum[l] += t.leaf[idx[l]];
      } else {
        for (std::size_t l = 0; l < n; ++l)
          accumulate(agg, yr, t.leaf + std::size_t{idx[l]} * nt, nt);
      }
    }
    if (fast) {
      float sum = 0;
      for (float v : lane_sum) sum += v;
      yr[0] += sum;
    }
  }
  // Aggregate, then the base values.
  for (std::size_t i = 0; i < rows * nt; ++i) {
    float v = y[i];
    if (agg == Aggregate::kAverage && ntrees > 0) v /= static_cast<float>(ntrees);
    if (std::isinf(v) && (agg == Aggregate::kMin || agg == Aggregate::kMax) && v == init) v = 0;
    y[i] = v + (t.base ? t.base[i % nt] : 0.0f);
  }
}

template <CompareMode M>
RunFn pick_nan(bool nan) {
  return nan ? run_tree_t<M, true> : run_tree_t<M, false>;
}

}  // namespace

Status bind_tree(const BindCtx& c, RtStep& s) {
  // The params struct lives in the image; the view holds typed pointers.
  const auto* p = reinterpret_cast<const TreeParams*>(c.params);
  if (c.rec.num_inputs != 1 || c.rec.num_outputs != 1)
    return data_loss("tree_ensemble takes 1 input");
  const ValueInfo& x = c.values[s.in[0]];
  const ValueInfo& y = c.values[s.out[0]];
  MYELIN_RETURN_IF_ERROR(expect_dtype(x, DType::kF32, "input"));
  MYELIN_RETURN_IF_ERROR(expect_dtype(y, DType::kF32, "output"));
  if (x.rank != 2 || y.rank != 2 || x.batched != y.batched || x.dims[0] != y.dims[0])
    return invalid_argument("tree ensemble maps [rows, features] to [rows, targets]; got " +
                            dims_string(x) + " -> " + dims_string(y));
  if (x.dims[1] != p->num_features || y.dims[1] != p->num_targets || p->num_targets == 0)
    return invalid_argument("tree ensemble expects " + std::to_string(p->num_features) +
                            " features and " + std::to_string(p->num_targets) + " targets; got " +
                            dims_string(x) + " -> " + dims_string(y));
  if (p->mode > static_cast<std::uint32_t>(CompareMode::kMixed) ||
      p->aggregate > static_cast<std::uint32_t>(Aggregate::kMax) || p->has_nan_left > 1)
    return data_loss("tree ensemble: unknown mode or aggregate");
  if (p->nodes.len % sizeof(TreeNode) != 0) return data_loss("tree nodes: ragged array");
  const std::size_t nn = p->nodes.len / sizeof(TreeNode);
  if (nn > (1u << 28)) return data_loss("tree nodes: too many");
  auto view = std::make_shared<TreeView>();
  view->p = p;
  MYELIN_ASSIGN_OR_RETURN(const std::byte* roots,
                          resolve(c.img, p->roots, 4, p->num_trees, "tree roots"));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* depths,
                          resolve(c.img, p->depths, 4, p->num_trees, "tree depths"));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* nodes,
                          resolve(c.img, p->nodes, sizeof(TreeNode), nn, "tree nodes"));
  const bool mixed = p->mode == static_cast<std::uint32_t>(CompareMode::kMixed);
  MYELIN_ASSIGN_OR_RETURN(const std::byte* modes,
                          resolve(c.img, p->node_modes, 1, mixed ? nn : 0, "node modes"));
  MYELIN_ASSIGN_OR_RETURN(const std::byte* leaf,
                          resolve(c.img, p->leaf_values, 4, nn * p->num_targets, "leaf values"));
  MYELIN_ASSIGN_OR_RETURN(
      const std::byte* base,
      resolve(c.img, p->base_values, 4, p->base_values.len ? p->num_targets : 0, "base values"));
  view->roots = reinterpret_cast<const std::uint32_t*>(roots);
  view->depths = reinterpret_cast<const std::uint32_t*>(depths);
  view->nodes = reinterpret_cast<const TreeNode*>(nodes);
  view->modes = reinterpret_cast<const std::uint8_t*>(modes);
  view->leaf = reinterpret_cast<const float*>(leaf);
  view->base = reinterpret_cast<const float*>(base);
  for (std::uint32_t i = 0; i < p->num_trees; ++i) {
    if (view->roots[i] >= nn) return data_loss("tree " + std::to_string(i) + ": root out of range");
    if (view->depths[i] > kMaxDepth)
      return data_loss("tree " + std::to_string(i) + ": depth > 4096");
  }
  for (std::size_t i = 0; i < nn; ++i) {
    const TreeNode& nd = view->nodes[i];
    if (nd.child[0] >= nn || nd.child[1] >= nn || (nd.feature & ~kNanLeftBit) >= p->num_features)
      return data_loss("tree node " + std::to_string(i) + ": child or feature out of range");
    if (mixed && view->modes[i] > static_cast<std::uint8_t>(CompareMode::kEq))
      return data_loss("tree node " + std::to_string(i) + ": unknown mode");
  }
  // Only a table with SIMD walkers uses the complete layout.
  if (c.kernels != nullptr && c.kernels->forest_rows != nullptr &&
      c.kernels->forest_one != nullptr) {
    view->forest_rows = c.kernels->forest_rows;
    view->forest_one = c.kernels->forest_one;
    build_complete(*view, nn);
  }
  s.kernel = view->complete ? "complete trees" : "node walk";
  s.aux = view.get();
  s.outer = x.batched ? 1 : static_cast<std::uint64_t>(x.dims[0]);
  s.outer_batched = x.batched;
  const bool nan = p->has_nan_left != 0;
  switch (static_cast<CompareMode>(p->mode)) {
    case CompareMode::kLeq:
      s.run = pick_nan<CompareMode::kLeq>(nan);
      break;
    case CompareMode::kLt:
      s.run = pick_nan<CompareMode::kLt>(nan);
      break;
    case CompareMode::kEq:
      s.run = pick_nan<CompareMode::kEq>(nan);
      break;
    case CompareMode::kMixed:
      s.run = pick_nan<CompareMode::kMixed>(nan);
      break;
  }
  s.sizes.clear();
  s.keepalive = std::move(view);
  return {};
}

}  // namespace myelin::model::detail
