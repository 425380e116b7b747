// The SIMD walkers over the complete tree layout (forest.h) against the node
// walk that the scalar kernel table keeps: the same forest, the same rows,
// bit-identical scores on every instruction set this CPU has. Forests are
// random and unbalanced (leaves at every level, so the padding is exercised),
// thresholds come from a small set that the inputs hit exactly, and a share
// of the inputs is NaN with random missing-value routes.
#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "myelin/base/cpu_features.h"
#include "myelin/model/model.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::as_bytes;
using testing::view_of;

constexpr float kValues[] = {-0.5f, -0.25f, 0.0f, 0.25f, 0.5f};

struct ForestShape {
  std::size_t trees, max_depth, features;
  std::vector<std::string> modes;  // drawn from per branch node
  // Every false child a leaf: max_depth * 2 + 1 nodes per tree. At depth 10
  // the complete layout would take far more memory than these few nodes, so
  // the SIMD tables keep the node walk too.
  bool caterpillar = false;
};

// Random trees: each node below the root turns into a leaf with
// probability 1/4 before max_depth, and always at it. Node ids are
// breadth-first (the root is listed first, as ONNX Runtime requires).
// `depth` receives the deepest leaf's level.
testing::TreeSpec random_forest(const ForestShape& shape, std::uint64_t seed,
                                std::size_t* depth_out = nullptr) {
  std::size_t deepest = 0;
  testing::TreeSpec s;
  s.features = shape.features;
  std::mt19937_64 rng(seed);
  for (std::size_t t = 0; t < shape.trees; ++t) {
    struct Pending {
      std::int64_t id;
      std::size_t depth;
    };
    std::vector<Pending> queue = {{0, 0}};
    std::int64_t next_id = 1;
    for (std::size_t q = 0; q < queue.size(); ++q) {
      const auto [id, depth] = queue[q];
      s.tree_ids.push_back(static_cast<std::int64_t>(t));
      s.node_ids.push_back(id);
      s.missing_true.push_back(static_cast<std::int64_t>(rng() % 2));
      const bool leaf = depth == shape.max_depth ||
                        (shape.caterpillar ? id % 2 == 0 && id > 0 : depth > 0 && rng() % 4 == 0);
      if (leaf) {
        deepest = std::max(deepest, depth);
        s.feature_ids.push_back(0);
        s.thresholds.push_back(0);
        s.modes.push_back("LEAF");
        s.true_ids.push_back(0);
        s.false_ids.push_back(0);
        s.w_tree.push_back(static_cast<std::int64_t>(t));
        s.w_node.push_back(id);
        s.w_target.push_back(0);
        // Mixed signs and magnitudes, so the order of the sum matters.
        s.w_value.push_back(std::ldexp(static_cast<float>(rng() % 2001) - 1000.0f,
                                       static_cast<int>(rng() % 20) - 14));
        continue;
      }
      s.feature_ids.push_back(static_cast<std::int64_t>(rng() % shape.features));
      s.thresholds.push_back(kValues[rng() % std::size(kValues)]);
      s.modes.push_back(shape.modes[rng() % shape.modes.size()]);
      s.true_ids.push_back(next_id);
      s.false_ids.push_back(next_id + 1);
      queue.push_back({next_id, depth + 1});
      queue.push_back({next_id + 1, depth + 1});
      next_id += 2;
    }
  }
  if (depth_out) *depth_out = deepest;
  return s;
}

std::vector<float> random_rows(std::size_t rows, std::size_t features, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-0.75f, 0.75f);
  std::vector<float> x(rows * features);
  for (float& v : x) {
    const auto pick = rng() % 8;
    v = pick < 3 ? kValues[rng() % std::size(kValues)] : pick == 3 ? NAN : u(rng);
  }
  return x;
}

// The scores' bit patterns; `kernel` receives how the tree step ran.
std::vector<std::uint32_t> predict_bits(const std::string& onnx, Isa isa,
                                        const std::vector<float>& x, std::size_t rows,
                                        std::size_t features, std::string* kernel) {
  auto m = Model::load(as_bytes(onnx), LoadOptions{isa});
  EXPECT_TRUE(m) << m.error().to_string();
  if (!m) return {};
  EXPECT_EQ(m->isa(), isa);
  kernel->clear();
  for (const StepInfo& st : m->steps()) {
    if (st.op == "tree_ensemble") *kernel = st.kernel;
  }
  auto out = m->predict(std::vector<TensorView>{
      view_of(x, {static_cast<std::int64_t>(rows), static_cast<std::int64_t>(features)})});
  EXPECT_TRUE(out) << out.error().to_string();
  if (!out) return {};
  std::vector<std::uint32_t> bits;
  for (float v : (*out)[0].as<float>()) bits.push_back(std::bit_cast<std::uint32_t>(v));
  return bits;
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> isas;
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma) isas.push_back(Isa::kAvx2);
  if (f.avx512f && f.avx2 && f.fma) isas.push_back(Isa::kAvx512);
  return isas;
}

// Every shape the walkers treat differently: features in a register (<= 8,
// 16, 32, 64) or gathered; levels looked up by permute (<= 64 nodes) or
// gathered (depth 7 to 10); depth 0 (every tree a leaf); a tree count that
// is not a multiple of 16; a depth past the complete layout's limit (the
// node walk on every ISA); and rows in 16-row blocks plus a tail.
TEST(Forest, SimdWalksAreBitIdenticalToTheNodeWalk) {
  const std::vector<std::vector<std::string>> mode_sets = {{"BRANCH_LEQ"},
                                                           {"BRANCH_LT"},
                                                           {"BRANCH_LEQ", "BRANCH_GT"},
                                                           {"BRANCH_GTE", "BRANCH_LT"},
                                                           {"BRANCH_EQ", "BRANCH_NEQ"}};
  const ForestShape shapes[] = {
      {37, 6, 30, {}}, {21, 3, 5, {}}, {16, 7, 64, {}},  {48, 10, 70, {}}, {40, 5, 17, {}},
      {5, 0, 3, {}},   {3, 12, 8, {}}, {100, 6, 30, {}}, {33, 9, 12, {}},  {9, 10, 70, {}, true},
  };
  const auto isas = simd_isas();
  std::uint64_t seed = 1;
  for (ForestShape shape : shapes) {
    for (const auto& modes : mode_sets) {
      shape.modes = modes;
      std::size_t depth = 0;
      const testing::TreeSpec spec = random_forest(shape, ++seed, &depth);
      // Up to depth 10 the SIMD tables must take the complete layout.
      const std::string simd_kernel =
          depth <= 10 && !shape.caterpillar ? "complete trees" : "node walk";
      for (const char* agg : {"SUM", "AVERAGE"}) {
        const std::string onnx = testing::tree_regressor(spec, 0.125f, agg);
        for (std::size_t rows : {1u, 15u, 16u, 37u}) {
          const auto x = random_rows(rows, shape.features, ++seed);
          std::string kernel;
          const auto want = predict_bits(onnx, Isa::kScalar, x, rows, shape.features, &kernel);
          ASSERT_EQ(want.size(), rows);
          EXPECT_EQ(kernel, "node walk");
          for (Isa isa : isas) {
            const auto got = predict_bits(onnx, isa, x, rows, shape.features, &kernel);
            EXPECT_EQ(kernel, simd_kernel) << to_string(isa) << ", depth " << depth;
            EXPECT_EQ(got, want) << to_string(isa) << ": " << shape.trees
                                 << " trees of depth <= " << shape.max_depth << ", "
                                 << shape.features << " features, " << modes[0] << ", " << agg
                                 << ", " << rows << " rows";
          }
        }
      }
    }
  }
}

// The node walk itself is right (so bit-identical means right): a forest
// with NaNs and ties against a direct reading of the spec, summed in double.
TEST(Forest, NodeWalkMatchesTheSpecOnUnbalancedTrees) {
  ForestShape shape{23, 7, 11, {"BRANCH_LEQ", "BRANCH_GT"}};
  const testing::TreeSpec s = random_forest(shape, 77);
  const std::size_t rows = 19;
  const auto x = random_rows(rows, shape.features, 78);
  const std::string onnx = testing::tree_regressor(s, 0.0f, "SUM");
  for (Isa isa : {Isa::kScalar, Isa::kAuto}) {
    auto m = Model::load(as_bytes(onnx), LoadOptions{isa});
    ASSERT_TRUE(m) << m.error().to_string();
    auto out = m->predict(std::vector<TensorView>{view_of(x, {19, 11})});
    ASSERT_TRUE(out) << out.error().to_string();
    for (std::size_t r = 0; r < rows; ++r) {
      const float* xr = x.data() + r * shape.features;
      double want = 0, magnitude = 0;
      std::size_t k = 0;  // nodes of tree t are contiguous, root first
      for (std::size_t t = 0; t < shape.trees; ++t) {
        while (s.tree_ids[k] != static_cast<std::int64_t>(t)) ++k;
        std::size_t at = k;
        while (s.modes[at] != "LEAF") {
          const float v = xr[s.feature_ids[at]], th = s.thresholds[at];
          bool c = s.modes[at] == "BRANCH_LEQ" ? v <= th : v > th;
          if (std::isnan(v) && s.missing_true[at]) c = true;
          const std::int64_t id = c ? s.true_ids[at] : s.false_ids[at];
          at = k + static_cast<std::size_t>(id);  // ids are dense per tree
        }
        for (std::size_t w = 0; w < s.w_node.size(); ++w) {
          if (s.w_tree[w] == static_cast<std::int64_t>(t) && s.w_node[w] == s.node_ids[at]) {
            want += s.w_value[w];
            magnitude += std::fabs(s.w_value[w]);
          }
        }
      }
      // A float sum of 23 terms is within 23 half-ulps of the magnitude.
      EXPECT_NEAR((*out)[0].as<float>()[r], want, 1e-6 + 4e-6 * magnitude)
          << to_string(isa) << " row " << r;
    }
  }
}

}  // namespace
}  // namespace myelin::model
