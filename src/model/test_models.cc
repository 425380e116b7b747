#include "src/model/test_models.h"

#include <onnx/onnx_pb.h>

#include <random>

namespace myelin::model::testing {
namespace {

void set_type(onnx::ValueInfoProto* v, const std::string& name,
              const std::vector<std::int64_t>& dims, int elem_type) {
  v->set_name(name);
  auto* tt = v->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(elem_type);
  auto* shape = tt->mutable_shape();
  for (std::int64_t d : dims) {
    auto* dim = shape->add_dim();
    if (d < 0) {
      dim->set_dim_param("N");
    } else {
      dim->set_dim_value(d);
    }
  }
}

// Appends instead of operator+: GCC 12 -O3 raises a false -Wrestrict on
// "literal" + std::string (GCC bug 105329).
std::string numbered(const char* prefix, std::size_t i) {
  std::string s(prefix);
  s.append(std::to_string(i));
  return s;
}

}  // namespace

GraphBuilder& GraphBuilder::input(std::string name, std::vector<std::int64_t> dims, int elem_type) {
  inputs_.push_back({std::move(name), std::move(dims), elem_type});
  return *this;
}
GraphBuilder& GraphBuilder::output(std::string name, std::vector<std::int64_t> dims,
                                   int elem_type) {
  outputs_.push_back({std::move(name), std::move(dims), elem_type});
  return *this;
}
GraphBuilder& GraphBuilder::initializer(std::string name, std::vector<std::int64_t> dims,
                                        std::vector<float> values) {
  inits_.push_back({std::move(name), std::move(dims), std::move(values), {}, false});
  return *this;
}
GraphBuilder& GraphBuilder::initializer_i64(std::string name, std::vector<std::int64_t> dims,
                                            std::vector<std::int64_t> values) {
  inits_.push_back({std::move(name), std::move(dims), {}, std::move(values), true});
  return *this;
}
GraphBuilder& GraphBuilder::node(std::string op, std::vector<std::string> inputs,
                                 std::vector<std::string> outputs, std::vector<Attr> attrs,
                                 std::string domain, std::string name) {
  nodes_.push_back({std::move(op), std::move(domain), std::move(name), std::move(inputs),
                    std::move(outputs), std::move(attrs)});
  return *this;
}

std::string GraphBuilder::bytes() const {
  onnx::ModelProto m;
  m.set_ir_version(8);
  m.set_producer_name("myelin-test");
  auto* os = m.add_opset_import();
  os->set_domain("");
  os->set_version(opset_);
  auto* ml = m.add_opset_import();
  ml->set_domain("ai.onnx.ml");
  ml->set_version(3);
  auto* g = m.mutable_graph();
  g->set_name("g");
  for (const Io& i : inputs_) set_type(g->add_input(), i.name, i.dims, i.elem_type);
  for (const Io& o : outputs_) set_type(g->add_output(), o.name, o.dims, o.elem_type);
  for (const Init& i : inits_) {
    auto* t = g->add_initializer();
    t->set_name(i.name);
    for (std::int64_t d : i.dims) t->add_dims(d);
    if (i.is_i64) {
      t->set_data_type(onnx::TensorProto::INT64);
      for (std::int64_t v : i.i) t->add_int64_data(v);
    } else {
      t->set_data_type(onnx::TensorProto::FLOAT);
      t->set_raw_data(
          std::string(reinterpret_cast<const char*>(i.f.data()), i.f.size() * sizeof(float)));
    }
  }
  for (const Node& n : nodes_) {
    auto* p = g->add_node();
    p->set_op_type(n.op);
    p->set_domain(n.domain);
    p->set_name(n.name);
    for (const auto& s : n.in) p->add_input(s);
    for (const auto& s : n.out) p->add_output(s);
    for (const Attr& a : n.attrs) {
      auto* at = p->add_attribute();
      at->set_name(a.name);
      switch (a.kind) {
        case Attr::kInt:
          at->set_type(onnx::AttributeProto::INT);
          at->set_i(a.i);
          break;
        case Attr::kFloat:
          at->set_type(onnx::AttributeProto::FLOAT);
          at->set_f(a.f);
          break;
        case Attr::kString:
          at->set_type(onnx::AttributeProto::STRING);
          at->set_s(a.s);
          break;
        case Attr::kInts:
          at->set_type(onnx::AttributeProto::INTS);
          for (auto v : a.ints) at->add_ints(v);
          break;
        case Attr::kFloats:
          at->set_type(onnx::AttributeProto::FLOATS);
          for (auto v : a.floats) at->add_floats(v);
          break;
        case Attr::kStrings:
          at->set_type(onnx::AttributeProto::STRINGS);
          for (const auto& v : a.strings) at->add_strings(v);
          break;
      }
    }
  }
  return m.SerializeAsString();
}

std::vector<float> random_floats(std::size_t n, std::uint64_t seed, float lo, float hi) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

std::string linear_regressor(std::size_t features, std::uint64_t seed) {
  const auto f = static_cast<std::int64_t>(features);
  return GraphBuilder()
      .input("X", {-1, f})
      .output("Y", {-1, 1})
      .node("LinearRegressor", {"X"}, {"Y"},
            {Attr::of("coefficients", random_floats(features, seed)),
             Attr::of("intercepts", std::vector<float>{0.25f})},
            "ai.onnx.ml", "linear")
      .bytes();
}

std::string mlp(const std::vector<std::size_t>& layers, std::uint64_t seed, bool softmax) {
  GraphBuilder g;
  g.input("X", {-1, static_cast<std::int64_t>(layers.front())});
  std::string cur = "X";
  for (std::size_t l = 0; l + 1 < layers.size(); ++l) {
    const auto k = static_cast<std::int64_t>(layers[l]),
               n = static_cast<std::int64_t>(layers[l + 1]);
    const std::string w = numbered("W", l), b = numbered("B", l);
    const float scale = 1.0f / static_cast<float>(std::max<std::int64_t>(1, k));
    g.initializer(w, {n, k},
                  random_floats(static_cast<std::size_t>(n * k), seed + l, -scale * 3, scale * 3));
    g.initializer(b, {n}, random_floats(static_cast<std::size_t>(n), seed + 100 + l, -0.1f, 0.1f));
    const std::string out = numbered("h", l);
    g.node("Gemm", {cur, w, b}, {out}, {Attr::of("transB", std::int64_t{1})}, "",
           numbered("gemm_", l));
    cur = out;
    if (l + 2 < layers.size()) {
      g.node("Relu", {cur}, {cur + "_relu"}, {}, "", numbered("relu_", l));
      cur += "_relu";
    }
  }
  if (softmax) {
    g.node("Softmax", {cur}, {"Y"}, {Attr::of("axis", std::int64_t{1})}, "", "softmax");
  } else {
    g.node("Identity", {cur}, {"Y"});
  }
  g.output("Y", {-1, static_cast<std::int64_t>(layers.back())});
  return g.bytes();
}

TreeSpec random_trees(std::size_t trees, std::size_t depth, std::size_t features,
                      std::uint64_t seed) {
  TreeSpec s;
  s.features = features;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> feat(0, static_cast<std::int64_t>(features) - 1);
  std::uniform_real_distribution<float> thr(-1.0f, 1.0f);
  for (std::size_t t = 0; t < trees; ++t) {
    const std::int64_t internal = (std::int64_t{1} << depth) - 1;
    const std::int64_t total = (std::int64_t{1} << (depth + 1)) - 1;
    for (std::int64_t id = 0; id < total; ++id) {
      s.tree_ids.push_back(static_cast<std::int64_t>(t));
      s.node_ids.push_back(id);
      if (id < internal) {
        s.feature_ids.push_back(feat(rng));
        s.thresholds.push_back(thr(rng));
        s.modes.push_back("BRANCH_LEQ");
        s.true_ids.push_back(2 * id + 1);
        s.false_ids.push_back(2 * id + 2);
      } else {
        s.feature_ids.push_back(0);
        s.thresholds.push_back(0);
        s.modes.push_back("LEAF");
        s.true_ids.push_back(0);
        s.false_ids.push_back(0);
        s.w_tree.push_back(static_cast<std::int64_t>(t));
        s.w_node.push_back(id);
        s.w_target.push_back(0);
        s.w_value.push_back(thr(rng) * 0.1f);
      }
      s.missing_true.push_back(0);
    }
  }
  return s;
}

std::string tree_regressor(const TreeSpec& s, float base_value, const std::string& aggregate) {
  const auto f = static_cast<std::int64_t>(s.features);
  return GraphBuilder()
      .input("X", {-1, f})
      .output("Y", {-1, 1})
      .node("TreeEnsembleRegressor", {"X"}, {"Y"},
            {Attr::of("nodes_treeids", s.tree_ids), Attr::of("nodes_nodeids", s.node_ids),
             Attr::of("nodes_featureids", s.feature_ids), Attr::of("nodes_values", s.thresholds),
             Attr::of("nodes_modes", s.modes), Attr::of("nodes_truenodeids", s.true_ids),
             Attr::of("nodes_falsenodeids", s.false_ids),
             Attr::of("nodes_missing_value_tracks_true", s.missing_true),
             Attr::of("target_treeids", s.w_tree), Attr::of("target_nodeids", s.w_node),
             Attr::of("target_ids", s.w_target), Attr::of("target_weights", s.w_value),
             Attr::of("n_targets", std::int64_t{1}), Attr::of("aggregate_function", aggregate),
             Attr::of("base_values", std::vector<float>{base_value})},
            "ai.onnx.ml", "trees")
      .bytes();
}

}  // namespace myelin::model::testing
