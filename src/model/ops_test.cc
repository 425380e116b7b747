// Operator semantics the ONNX node tests do not cover: tree ensembles (every
// node mode, NaN routing, aggregation) checked against a direct reading of
// the ONNX-ML spec, and classifier label/probability outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "myelin/model/model.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::as_bytes;
using testing::Attr;
using testing::view_of;

// Straight from the spec: walk from node 0 of each tree.
double reference(const testing::TreeSpec& s, const float* x, std::size_t tree,
                 const std::string& agg_unused) {
  (void)agg_unused;
  std::map<std::pair<std::int64_t, std::int64_t>, std::size_t> at;
  for (std::size_t k = 0; k < s.tree_ids.size(); ++k) at[{s.tree_ids[k], s.node_ids[k]}] = k;
  std::size_t k = at[{static_cast<std::int64_t>(tree), 0}];
  while (s.modes[k] != "LEAF") {
    const float v = x[s.feature_ids[k]], t = s.thresholds[k];
    const std::string& m = s.modes[k];
    bool c = m == "BRANCH_LEQ"   ? v <= t
             : m == "BRANCH_LT"  ? v < t
             : m == "BRANCH_GTE" ? v >= t
             : m == "BRANCH_GT"  ? v > t
             : m == "BRANCH_EQ"  ? v == t
                                 : v != t;
    if (std::isnan(v) && s.missing_true[k]) c = true;
    k = at[{static_cast<std::int64_t>(tree), c ? s.true_ids[k] : s.false_ids[k]}];
  }
  for (std::size_t w = 0; w < s.w_node.size(); ++w) {
    if (s.w_tree[w] == static_cast<std::int64_t>(tree) && s.w_node[w] == s.node_ids[k])
      return s.w_value[w];
  }
  return 0;
}

TEST(Ops, TreeEnsembleEveryModeAndNanRouteMatchesTheSpec) {
  testing::TreeSpec s = testing::random_trees(13, 5, 7, 21);
  std::mt19937 rng(5);
  const char* modes[] = {"BRANCH_LEQ", "BRANCH_LT", "BRANCH_GTE",
                         "BRANCH_GT",  "BRANCH_EQ", "BRANCH_NEQ"};
  for (std::size_t k = 0; k < s.modes.size(); ++k) {
    if (s.modes[k] == "LEAF") continue;
    s.modes[k] = modes[rng() % 6];
    s.missing_true[k] = static_cast<std::int64_t>(rng() % 2);
    if (rng() % 4 == 0) s.thresholds[k] = 0.5f;  // EQ/NEQ hits
  }
  const std::size_t rows = 37;  // exercises the 8-row blocks and the tail
  std::vector<float> x = testing::random_floats(rows * 7, 8);
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (i % 5 == 0) x[i] = 0.5f;
    if (i % 11 == 0) x[i] = NAN;
  }
  for (const char* agg : {"SUM", "AVERAGE", "MIN", "MAX"}) {
    auto m = Model::load(as_bytes(testing::tree_regressor(s, 0.25f, agg)));
    ASSERT_TRUE(m) << m.error().to_string();
    auto out =
        m->predict(std::vector<TensorView>{view_of(x, {static_cast<std::int64_t>(rows), 7})});
    ASSERT_TRUE(out) << out.error().to_string();
    for (std::size_t r = 0; r < rows; ++r) {
      double acc = std::string(agg) == "MIN" ? INFINITY : std::string(agg) == "MAX" ? -INFINITY : 0;
      for (std::size_t t = 0; t < 13; ++t) {
        const double v = reference(s, x.data() + r * 7, t, agg);
        if (std::string(agg) == "MIN")
          acc = std::min(acc, v);
        else if (std::string(agg) == "MAX")
          acc = std::max(acc, v);
        else
          acc += v;
      }
      if (std::string(agg) == "AVERAGE") acc /= 13;
      EXPECT_NEAR((*out)[0].as<float>()[r], acc + 0.25, 1e-5) << agg << " row " << r;
    }
  }
}

// Trees of one comparison mode (what scikit-learn and XGBoost export) run the
// specialised walks: sixteen rows per tree in a batch, eight trees per row
// for the rest. Every ISA must agree with the spec walk, NaN routes too.
TEST(Ops, SingleModeTreesMatchTheSpecOnEveryIsa) {
  std::vector<Isa> isas = {Isa::kScalar};
  for (Isa i : {Isa::kAvx2, Isa::kAvx512}) {
    if (Model::load(as_bytes(testing::linear_regressor(4, 1)), LoadOptions{i})) isas.push_back(i);
  }
  for (const char* mode : {"BRANCH_LEQ", "BRANCH_LT"}) {
    testing::TreeSpec s = testing::random_trees(21, 6, 9, 33);  // 21 trees: two 8-tree blocks + 5
    std::mt19937 rng(9);
    for (std::size_t k = 0; k < s.modes.size(); ++k) {
      if (s.modes[k] == "LEAF") continue;
      s.modes[k] = mode;
      s.missing_true[k] = static_cast<std::int64_t>(rng() % 2);
      if (rng() % 4 == 0) s.thresholds[k] = 0.5f;  // ties: <= and < differ
    }
    const std::size_t rows = 37;  // two 16-row blocks and a 5-row tail
    std::vector<float> x = testing::random_floats(rows * 9, 4);
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (i % 5 == 0) x[i] = 0.5f;
      if (i % 7 == 0) x[i] = NAN;
    }
    for (Isa isa : isas) {
      auto m = Model::load(as_bytes(testing::tree_regressor(s, 0.25f, "SUM")), LoadOptions{isa});
      ASSERT_TRUE(m) << m.error().to_string();
      auto out =
          m->predict(std::vector<TensorView>{view_of(x, {static_cast<std::int64_t>(rows), 9})});
      ASSERT_TRUE(out) << out.error().to_string();
      for (std::size_t r = 0; r < rows; ++r) {
        double acc = 0;
        for (std::size_t t = 0; t < 21; ++t) acc += reference(s, x.data() + r * 9, t, "SUM");
        EXPECT_NEAR((*out)[0].as<float>()[r], acc + 0.25, 1e-4)
            << mode << " isa=" << to_string(isa) << " row " << r;
      }
    }
  }
}

TEST(Ops, LinearClassifierBinaryAndMulticlass) {
  // Binary: one coefficient row, LOGISTIC -> [1 - p, p], label by p > 0.5.
  const std::string bin = testing::GraphBuilder()
                              .input("X", {-1, 2})
                              .output("label", {-1}, 7)
                              .output("prob", {-1, 2})
                              .node("LinearClassifier", {"X"}, {"label", "prob"},
                                    {Attr::of("coefficients", std::vector<float>{1.0f, -2.0f}),
                                     Attr::of("intercepts", std::vector<float>{0.5f}),
                                     Attr::of("classlabels_ints", std::vector<std::int64_t>{3, 7}),
                                     Attr::of("post_transform", std::string("LOGISTIC"))},
                                    "ai.onnx.ml", "lc")
                              .bytes();
  auto m = Model::load(as_bytes(bin));
  ASSERT_TRUE(m) << m.error().to_string();
  const std::vector<float> x = {1.0f, 0.0f, 0.0f, 1.0f};
  auto out = m->predict(std::vector<TensorView>{view_of(x, {2, 2})});
  ASSERT_TRUE(out) << out.error().to_string();
  const float p0 = 1.0f / (1.0f + std::exp(-1.5f)), p1 = 1.0f / (1.0f + std::exp(1.5f));
  EXPECT_EQ((*out)[0].as<std::int64_t>()[0], 7);
  EXPECT_EQ((*out)[0].as<std::int64_t>()[1], 3);
  EXPECT_NEAR((*out)[1].as<float>()[1], p0, 1e-6f);
  EXPECT_NEAR((*out)[1].as<float>()[0], 1 - p0, 1e-6f);
  EXPECT_NEAR((*out)[1].as<float>()[3], p1, 1e-6f);

  // Multiclass with SOFTMAX: label = argmax, probabilities sum to 1.
  const std::string multi =
      testing::GraphBuilder()
          .input("X", {-1, 2})
          .output("label", {-1}, 7)
          .output("prob", {-1, 3})
          .node("LinearClassifier", {"X"}, {"label", "prob"},
                {Attr::of("coefficients", std::vector<float>{1, 0, 0, 1, -1, -1}),
                 Attr::of("classlabels_ints", std::vector<std::int64_t>{10, 20, 30}),
                 Attr::of("post_transform", std::string("SOFTMAX"))},
                "ai.onnx.ml", "lc3")
          .bytes();
  auto m3 = Model::load(as_bytes(multi));
  ASSERT_TRUE(m3) << m3.error().to_string();
  auto out3 = m3->predict(std::vector<TensorView>{view_of(x, {2, 2})});
  ASSERT_TRUE(out3);
  EXPECT_EQ((*out3)[0].as<std::int64_t>()[0], 10);
  EXPECT_EQ((*out3)[0].as<std::int64_t>()[1], 20);
  const float e1 = std::exp(1.0f), e0 = 1.0f, em = std::exp(-1.0f);
  EXPECT_NEAR((*out3)[1].as<float>()[0], e1 / (e1 + e0 + em), 1e-6f);
}

TEST(Ops, ScalerNormalizerBinarizerChain) {
  const std::string onnx =
      testing::GraphBuilder()
          .input("X", {-1, 3})
          .output("Y", {-1, 3})
          .node("Scaler", {"X"}, {"s"},
                {Attr::of("offset", std::vector<float>{1, 2, 3}),
                 Attr::of("scale", std::vector<float>{2})},
                "ai.onnx.ml")
          .node("Normalizer", {"s"}, {"n"}, {Attr::of("norm", std::string("L1"))}, "ai.onnx.ml")
          .node("Binarizer", {"n"}, {"Y"}, {Attr::of("threshold", 0.1f)}, "ai.onnx.ml")
          .bytes();
  auto m = Model::load(as_bytes(onnx));
  ASSERT_TRUE(m) << m.error().to_string();
  const std::vector<float> x = {2, 2, 6};  // scaled: 2, 0, 6 -> L1: 0.25, 0, 0.75
  auto out = m->predict(std::vector<TensorView>{view_of(x, {1, 3})});
  ASSERT_TRUE(out);
  EXPECT_EQ((*out)[0].as<float>()[0], 1.0f);
  EXPECT_EQ((*out)[0].as<float>()[1], 0.0f);
  EXPECT_EQ((*out)[0].as<float>()[2], 1.0f);
}

TEST(Ops, BatchAxisOperationsAreRefusedWithAReason) {
  const std::string onnx =
      testing::GraphBuilder()
          .input("X", {-1, 3})
          .output("Y")
          .node("Softmax", {"X"}, {"Y"}, {Attr::of("axis", std::int64_t{0})}, "", "sm")
          .bytes();
  auto m = Model::load(as_bytes(onnx), {}, "m.onnx");
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message().find("axis 0 of 'X' is the batch dimension"), std::string::npos)
      << m.error().message();
}

}  // namespace
}  // namespace myelin::model
