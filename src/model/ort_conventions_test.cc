// Conventions where the ONNX-ML spec is silent, checked against ONNX
// Runtime's answers, and the cases where ONNX Runtime contradicts the spec
// and onnx.reference (myelin follows the spec there; docs/model-format.md,
// "Conventions and differences from ONNX Runtime", lists each).
//
// The expected values were probed from onnxruntime-node 1.31.1 (linux-x64,
// CPU provider) with src/model/conformance/probe_ort_conventions.{py,js},
// which build the same models as the builders below.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "myelin/model/model.h"
#include "src/model/test_models.h"
#include "src/model/test_util.h"

namespace myelin::model {
namespace {

using testing::Attr;
using testing::GraphBuilder;

using Ints = std::vector<std::int64_t>;
using Floats = std::vector<float>;

// The probe's inputs: a linear classifier reads x0 of these rows.
const Floats kLinearRows = {-1, 0, 0.25f, 0, 0.75f, 0, 2, 0};
// One row per leaf (3, 4, 5, 6) of kTree.
const Floats kLeafRows = {-1, -1, -1, 1, 1, -1, 1, 1};

struct Out {
  Ints label;
  Floats scores;
};

Out run(const std::string& onnx, const Floats& x) {
  auto m = Model::load(testing::as_bytes(onnx));
  EXPECT_TRUE(m) << m.error().to_string();
  if (!m) return {};
  auto out = m->predict(std::vector<TensorView>{testing::view_of(x, {4, 2})});
  EXPECT_TRUE(out) << out.error().to_string();
  if (!out) return {};
  Out o;
  if ((*out)[0].dtype == DType::kI64) {
    auto l = (*out)[0].as<std::int64_t>();
    o.label.assign(l.begin(), l.end());
    auto p = (*out)[1].as<float>();
    o.scores.assign(p.begin(), p.end());
  } else {
    auto p = (*out)[0].as<float>();
    o.scores.assign(p.begin(), p.end());
  }
  return o;
}

void expect_scores(const Floats& got, const Floats& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << "at " << i;
}

GraphBuilder graph(bool classifier, std::int64_t targets = 1) {
  GraphBuilder g;
  g.input("X", {-1, 2});
  if (classifier) {
    g.output("label", {-1}, 7).output("prob", {-1, 2});
  } else {
    g.output("Y", {-1, targets});
  }
  return g;
}

std::string linear(Floats coef, Floats icpt, Ints labels, std::string post) {
  return graph(true)
      .node("LinearClassifier", {"X"}, {"label", "prob"},
            {Attr::of("coefficients", std::move(coef)), Attr::of("intercepts", std::move(icpt)),
             Attr::of("classlabels_ints", std::move(labels)),
             Attr::of("post_transform", std::move(post))},
            "ai.onnx.ml")
      .bytes();
}

// Depth 2: node 0 splits x0 <= 0 into nodes 1 / 2, each splits x1 <= 0 into
// leaves 3, 4 / 5, 6. `order` lists the nodes in the order they are written.
std::vector<Attr> tree(const Ints& order = {0, 1, 2, 3, 4, 5, 6}) {
  const Ints feature = {0, 1, 1, 0, 0, 0, 0}, t = {1, 3, 5, 0, 0, 0, 0}, f = {2, 4, 6, 0, 0, 0, 0};
  Ints ids, feat, tr, fa;
  std::vector<std::string> modes;
  for (std::int64_t i : order) {
    const auto k = static_cast<std::size_t>(i);
    ids.push_back(i);
    feat.push_back(feature[k]);
    tr.push_back(t[k]);
    fa.push_back(f[k]);
    modes.emplace_back(i < 3 ? "BRANCH_LEQ" : "LEAF");
  }
  return {Attr::of("nodes_treeids", Ints(order.size(), 0)),
          Attr::of("nodes_nodeids", ids),
          Attr::of("nodes_featureids", feat),
          Attr::of("nodes_modes", modes),
          Attr::of("nodes_values", Floats(order.size(), 0.0f)),
          Attr::of("nodes_truenodeids", tr),
          Attr::of("nodes_falsenodeids", fa)};
}

struct Weights {
  std::int64_t id;
  Floats leaf3to6;
};

std::string tree_classifier(Ints labels, const std::vector<Weights>& weights, std::string post,
                            Floats base = {}) {
  std::vector<Attr> a = tree();
  Ints ids, nodes;
  Floats w;
  for (const Weights& c : weights) {
    for (std::size_t l = 0; l < 4; ++l) {
      ids.push_back(c.id);
      nodes.push_back(static_cast<std::int64_t>(3 + l));
      w.push_back(c.leaf3to6[l]);
    }
  }
  a.push_back(Attr::of("class_treeids", Ints(ids.size(), 0)));
  a.push_back(Attr::of("class_nodeids", nodes));
  a.push_back(Attr::of("class_ids", ids));
  a.push_back(Attr::of("class_weights", w));
  a.push_back(Attr::of("classlabels_int64s", std::move(labels)));
  a.push_back(Attr::of("post_transform", std::move(post)));
  if (!base.empty()) a.push_back(Attr::of("base_values", std::move(base)));
  GraphBuilder g;
  g.input("X", {-1, 2}).output("label", {-1}, 7).output("prob", {-1, -1});
  return g.node("TreeEnsembleClassifier", {"X"}, {"label", "prob"}, a, "ai.onnx.ml").bytes();
}

struct Leaf {
  std::int64_t target, node;
  float w;
};

std::string tree_regressor(std::int64_t targets, const std::vector<Leaf>& leaves,
                           std::string post = "NONE", Floats base = {},
                           const Ints& order = {0, 1, 2, 3, 4, 5, 6}) {
  std::vector<Attr> a = tree(order);
  Ints t, n;
  Floats w;
  for (const Leaf& l : leaves) {
    t.push_back(l.target);
    n.push_back(l.node);
    w.push_back(l.w);
  }
  a.push_back(Attr::of("n_targets", targets));
  a.push_back(Attr::of("target_treeids", Ints(t.size(), 0)));
  a.push_back(Attr::of("target_nodeids", n));
  a.push_back(Attr::of("target_ids", t));
  a.push_back(Attr::of("target_weights", w));
  a.push_back(Attr::of("post_transform", std::move(post)));
  if (!base.empty()) a.push_back(Attr::of("base_values", std::move(base)));
  return graph(false, targets).node("TreeEnsembleRegressor", {"X"}, {"Y"}, a, "ai.onnx.ml").bytes();
}

std::vector<Leaf> leaves(const Floats& w3to6) {
  return {{0, 3, w3to6[0]}, {0, 4, w3to6[1]}, {0, 5, w3to6[2]}, {0, 6, w3to6[3]}};
}

const Floats kPositive = {0.2f, 0.5f, 0.7f, 1.5f};
const Floats kMixed = {-0.4f, 0.2f, 0.5f, 0.7f};

// --- Where the spec is silent: ONNX Runtime's answers. ---

TEST(OrtConventions, BinaryLinearClassifierWithoutTransformWritesOneMinusScore) {
  // myelin wrote [-s, s] before; ONNX Runtime writes [1 - s, s], label s > 0.
  const Out o = run(linear({1, 0}, {0}, {0, 1}, "NONE"), kLinearRows);
  EXPECT_EQ(o.label, (Ints{0, 1, 1, 1}));
  expect_scores(o.scores, {2, -1, 0.75f, 0.25f, 0.25f, 0.75f, -1, 2});
}

TEST(OrtConventions, BinaryLinearClassifierKeepsLabelsOtherThanZeroAndOne) {
  Out o = run(linear({1, 0}, {0}, {3, 7}, "NONE"), kLinearRows);
  EXPECT_EQ(o.label, (Ints{3, 7, 7, 7}));
  expect_scores(o.scores, {2, -1, 0.75f, 0.25f, 0.25f, 0.75f, -1, 2});
  o = run(linear({1, 0}, {0}, {3, 7}, "LOGISTIC"), kLinearRows);
  EXPECT_EQ(o.label, (Ints{3, 7, 7, 7}));
  expect_scores(o.scores, {0.7310585975646973f, 0.26894140243530273f, 0.43782347440719604f,
                           0.562176525592804f, 0.32082128524780273f, 0.6791787147521973f,
                           0.11920297145843506f, 0.8807970285415649f});
}

TEST(OrtConventions, LinearClassifierWithTwoRowsAndLabelsThreeSeven) {
  const Out o = run(linear({-1, 0, 1, 0}, {0, 0}, {3, 7}, "NONE"), kLinearRows);
  EXPECT_EQ(o.label, (Ints{3, 7, 7, 7}));
  expect_scores(o.scores, {1, -1, -0.25f, 0.25f, -0.75f, 0.75f, -2, 2});
}

TEST(OrtConventions, TreeClassifierWithOnlyClassOneWeightedHasZeroFirstColumn) {
  // All weights >= 0: label = s > 0.5 on the raw score.
  Out o = run(tree_classifier({0, 1}, {{1, kPositive}}, "NONE"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 0, 1, 1}));
  expect_scores(o.scores, {0, 0.2f, 0, 0.5f, 0, 0.7f, 0, 1.5f});
  // A negative weight: label = s > 0.
  o = run(tree_classifier({0, 1}, {{1, kMixed}}, "NONE"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 1, 1, 1}));
  expect_scores(o.scores, {0, -0.4f, 0, 0.2f, 0, 0.5f, 0, 0.7f});
}

TEST(OrtConventions, TreeClassifierWithOnlyClassOneWeightedAndLogisticThresholdsTheRawScore) {
  // The first column is logistic(0); the label still compares the raw score
  // (0.2 -> sigmoid 0.55, yet label 0 when every weight is >= 0).
  Out o = run(tree_classifier({0, 1}, {{1, kPositive}}, "LOGISTIC"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 0, 1, 1}));
  expect_scores(o.scores, {0.5f, 0.5498339533805847f, 0.5f, 0.622459352016449f, 0.5f,
                           0.6681877374649048f, 0.5f, 0.8175744414329529f});
  o = run(tree_classifier({0, 1}, {{1, kMixed}}, "LOGISTIC"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 1, 1, 1}));
  expect_scores(o.scores, {0.5f, 0.40131235122680664f, 0.5f, 0.5498339533805847f, 0.5f,
                           0.622459352016449f, 0.5f, 0.6681877374649048f});
}

TEST(OrtConventions, TreeClassifierWithOnlyClassOneWeightedKeepsLabelsThreeSeven) {
  Out o = run(tree_classifier({3, 7}, {{1, kPositive}}, "NONE"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{3, 3, 7, 7}));
  o = run(tree_classifier({3, 7}, {{1, kMixed}}, "NONE"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{3, 7, 7, 7}));
}

TEST(OrtConventions, TreeClassifierWithOnlyClassZeroWeightedWritesOneMinusScore) {
  const Out o = run(tree_classifier({0, 1}, {{0, kPositive}}, "NONE"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 0, 1, 1}));
  expect_scores(o.scores, {0.8f, 0.2f, 0.5f, 0.5f, 0.3f, 0.7f, -0.5f, 1.5f});
}

TEST(OrtConventions, TreeClassifierWithOnlyClassZeroWeightedAndANegativeWeightIsSigned) {
  Out o = run(tree_classifier({0, 1}, {{0, kMixed}}, "NONE"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 1, 1, 1}));
  expect_scores(o.scores, {0.4f, -0.4f, -0.2f, 0.2f, -0.5f, 0.5f, -0.7f, 0.7f});
  o = run(tree_classifier({0, 1}, {{0, kMixed}}, "LOGISTIC"), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 1, 1, 1}));
  expect_scores(o.scores, {0.5986876487731934f, 0.40131235122680664f, 0.4501660466194153f,
                           0.5498339533805847f, 0.377540647983551f, 0.622459352016449f,
                           0.3318122625350952f, 0.6681877374649048f});
}

TEST(OrtConventions, TreeClassifierWithOnlyClassOneWeightedIgnoresASingleBaseValue) {
  // The spec wants one base value per class; ORT drops a lone one here.
  const Out o = run(tree_classifier({0, 1}, {{1, kPositive}}, "NONE", {0.25f}), kLeafRows);
  EXPECT_EQ(o.label, (Ints{0, 0, 1, 1}));
  expect_scores(o.scores, {0, 0.2f, 0, 0.5f, 0, 0.7f, 0, 1.5f});
}

TEST(OrtConventions, TreeRootIsTheFirstListedNode) {
  // Node 2 (x1 <= 0 -> leaf 5 / leaf 6) is listed first: ORT and
  // onnx.reference start every walk there, whatever the structure says.
  const Out o =
      run(tree_regressor(1, leaves(kPositive), "NONE", {}, {2, 0, 1, 3, 4, 5, 6}), kLeafRows);
  expect_scores(o.scores, {0.7f, 1.5f, 0.7f, 1.5f});
}

// --- Where ONNX Runtime contradicts the spec: myelin follows the spec. ---
// Each test states ORT 1.31.1's answer next to the spec's.

TEST(OrtDifferences, FirstListedLeafIsTheWholeTree) {
  // onnx.reference: leaf 4 is the root, every row scores 0.5.
  // ORT: 0.2 (leaf 3's weight) for every row.
  const Out o =
      run(tree_regressor(1, leaves(kPositive), "NONE", {}, {4, 0, 1, 2, 3, 5, 6}), kLeafRows);
  expect_scores(o.scores, {0.5f, 0.5f, 0.5f, 0.5f});
}

TEST(OrtDifferences, SingleTargetLogisticIsApplied) {
  // ORT ignores LOGISTIC on a one-target regressor: -0.4, 0.2, 0.5, 0.7.
  const Out o = run(tree_regressor(1, leaves(kMixed), "LOGISTIC"), kLeafRows);
  expect_scores(o.scores, {0.40131235122680664f, 0.5498339533805847f, 0.622459352016449f,
                           0.6681877374649048f});
}

TEST(OrtDifferences, DuplicateLeafWeightsAreSummed) {
  // ORT keeps only the first weight of leaf 3: 1, 1, 1, 1.
  const Out o =
      run(tree_regressor(1, {{0, 3, 1}, {0, 3, 2}, {0, 4, 1}, {0, 5, 1}, {0, 6, 1}}), kLeafRows);
  expect_scores(o.scores, {3, 1, 1, 1});
}

TEST(OrtDifferences, BaseValueOfAnUnweightedTargetIsKept) {
  // ORT drops target 1's base value: [10.2, 0], [10.5, 0], ...
  const Out o = run(tree_regressor(2, leaves(kPositive), "NONE", {10, 20}), kLeafRows);
  expect_scores(o.scores, {10.2f, 20, 10.5f, 20, 10.7f, 20, 11.5f, 20});
}

TEST(OrtDifferences, ArgmaxConsidersUnweightedClasses) {
  // Scores [-1, -2, 0]: ORT answers label 0 (it skips class 2, which no leaf
  // weighs); the spec's argmax is class 2.
  const std::string onnx =
      tree_classifier({0, 1, 2}, {{0, {-1, -1, -1, -1}}, {1, {-2, -2, -2, -2}}}, "NONE");
  const Out o = run(onnx, kLeafRows);
  EXPECT_EQ(o.label, (Ints{2, 2, 2, 2}));
  expect_scores(o.scores, {-1, -2, 0, -1, -2, 0, -1, -2, 0, -1, -2, 0});
}

TEST(OrtDifferences, TwoBaseValuesAreAddedPerClass) {
  // Only class 1 weighted, base values [0.1, 0.2]: ORT rewrites the scores to
  // [0, 0.2] for every row, label 0. The spec: [0.1, s + 0.2], argmax.
  const Out o = run(tree_classifier({0, 1}, {{1, kPositive}}, "NONE", {0.1f, 0.2f}), kLeafRows);
  EXPECT_EQ(o.label, (Ints{1, 1, 1, 1}));
  expect_scores(o.scores, {0.1f, 0.4f, 0.1f, 0.7f, 0.1f, 0.9f, 0.1f, 1.7f});
}

TEST(OrtDifferences, TwoWeightedClassesTakeTheArgmaxLabel) {
  // Labels [3, 7], both classes weighted: ORT answers label 1 for every row
  // (not one of the labels; it tests class 1's score > 0). The spec: argmax.
  const std::string onnx = tree_classifier(
      {3, 7}, {{0, {0.6f, 0.4f, 0.2f, 0.1f}}, {1, {0.4f, 0.6f, 0.8f, 0.9f}}}, "NONE");
  const Out o = run(onnx, kLeafRows);
  EXPECT_EQ(o.label, (Ints{3, 7, 7, 7}));
  expect_scores(o.scores, {0.6f, 0.4f, 0.4f, 0.6f, 0.2f, 0.8f, 0.1f, 0.9f});
}

}  // namespace
}  // namespace myelin::model
