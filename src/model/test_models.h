// Builders of small ONNX models in memory, for tests and `myelin bench
// inference`. They write real ONNX (onnx-ml.pb.h ModelProto bytes), the
// same kind a converter emits, so the importer is exercised end to end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace myelin::model::testing {

struct Attr {
  std::string name;
  enum Kind { kInt, kFloat, kString, kInts, kFloats, kStrings } kind = kInt;
  std::int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<float> floats;
  std::vector<std::string> strings;

  static Attr of(std::string n, std::int64_t v) {
    return {std::move(n), kInt, v, 0, {}, {}, {}, {}};
  }
  static Attr of(std::string n, float v) { return {std::move(n), kFloat, 0, v, {}, {}, {}, {}}; }
  static Attr of(std::string n, std::string v) {
    return {std::move(n), kString, 0, 0, std::move(v), {}, {}, {}};
  }
  static Attr of(std::string n, std::vector<std::int64_t> v) {
    return {std::move(n), kInts, 0, 0, {}, std::move(v), {}, {}};
  }
  static Attr of(std::string n, std::vector<float> v) {
    return {std::move(n), kFloats, 0, 0, {}, {}, std::move(v), {}};
  }
  static Attr of(std::string n, std::vector<std::string> v) {
    return {std::move(n), kStrings, 0, 0, {}, {}, {}, std::move(v)};
  }
};

// A graph under construction. dims use -1 for a symbolic (batch) dimension.
class GraphBuilder {
 public:
  GraphBuilder& input(std::string name, std::vector<std::int64_t> dims, int elem_type = 1);
  GraphBuilder& output(std::string name, std::vector<std::int64_t> dims = {}, int elem_type = 1);
  GraphBuilder& initializer(std::string name, std::vector<std::int64_t> dims,
                            std::vector<float> values);
  GraphBuilder& initializer_i64(std::string name, std::vector<std::int64_t> dims,
                                std::vector<std::int64_t> values);
  GraphBuilder& node(std::string op, std::vector<std::string> inputs,
                     std::vector<std::string> outputs, std::vector<Attr> attrs = {},
                     std::string domain = "", std::string name = "");
  GraphBuilder& opset(std::int64_t v) {
    opset_ = v;
    return *this;
  }

  // Serialized ModelProto.
  [[nodiscard]] std::string bytes() const;

 private:
  struct Io {
    std::string name;
    std::vector<std::int64_t> dims;
    int elem_type;
  };
  struct Init {
    std::string name;
    std::vector<std::int64_t> dims;
    std::vector<float> f;
    std::vector<std::int64_t> i;
    bool is_i64;
  };
  struct Node {
    std::string op, domain, name;
    std::vector<std::string> in, out;
    std::vector<Attr> attrs;
  };
  std::vector<Io> inputs_, outputs_;
  std::vector<Init> inits_;
  std::vector<Node> nodes_;
  std::int64_t opset_ = 15;
};

// Deterministic pseudo-random floats in [lo, hi).
std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo = -1, float hi = 1);

// LinearRegressor (ai.onnx.ml) over [N, features] -> [N, 1].
std::string linear_regressor(std::size_t features, std::uint64_t seed);
// Gemm+Relu MLP, e.g. {784, 128, 10}; final Softmax when `softmax`.
std::string mlp(const std::vector<std::size_t>& layers, std::uint64_t seed, bool softmax = true);

// A tree ensemble as flat arrays (one entry per node) plus leaf weights.
struct TreeSpec {
  std::vector<std::int64_t> tree_ids, node_ids, feature_ids, true_ids, false_ids, missing_true;
  std::vector<std::string> modes;
  std::vector<float> thresholds;
  // leaf weights
  std::vector<std::int64_t> w_tree, w_node, w_target;
  std::vector<float> w_value;
  std::size_t features = 0;
};
// Random full binary trees of `depth` (leaves at the bottom).
TreeSpec random_trees(std::size_t trees, std::size_t depth, std::size_t features,
                      std::uint64_t seed);
std::string tree_regressor(const TreeSpec& spec, float base_value = 0,
                           const std::string& aggregate = "SUM");

}  // namespace myelin::model::testing
