#include "bench/inference_peers.h"

#include <xgboost/c_api.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "bench/harness/process.h"

namespace myelin::bench {

using harness::shell_quote;

namespace {

namespace fs = std::filesystem;
using model::testing::Attr;
using model::testing::GraphBuilder;

// XGBoost's JSON dump → ONNX TreeEnsembleRegressor. XGBoost sends x < t to
// "yes" and a missing value to "missing", i.e. BRANCH_LT with
// missing_value_tracks_true when missing == yes.
void add_tree(const nlohmann::json& n, std::int64_t tree, model::testing::TreeSpec& s) {
  s.tree_ids.push_back(tree);
  s.node_ids.push_back(n.at("nodeid").get<std::int64_t>());
  if (n.contains("leaf")) {
    s.feature_ids.push_back(0);
    s.thresholds.push_back(0);
    s.modes.push_back("LEAF");
    s.true_ids.push_back(0);
    s.false_ids.push_back(0);
    s.missing_true.push_back(0);
    s.w_tree.push_back(tree);
    s.w_node.push_back(n.at("nodeid").get<std::int64_t>());
    s.w_target.push_back(0);
    s.w_value.push_back(n.at("leaf").get<float>());
    return;
  }
  const std::string split = n.at("split").get<std::string>();
  s.feature_ids.push_back(std::stoll(split.substr(1)));  // "f12"
  s.thresholds.push_back(n.at("split_condition").get<float>());
  s.modes.push_back("BRANCH_LT");
  const auto yes = n.at("yes").get<std::int64_t>();
  s.true_ids.push_back(yes);
  s.false_ids.push_back(n.at("no").get<std::int64_t>());
  s.missing_true.push_back(n.at("missing").get<std::int64_t>() == yes ? 1 : 0);
  for (const auto& c : n.at("children")) add_tree(c, tree, s);
}

}  // namespace

Result<XgbModel> train_xgboost(std::size_t trees, std::size_t depth, std::size_t features,
                               std::size_t rows) {
  XgbModel m;
  m.trees = trees;
  m.depth = depth;
  m.features = features;
  m.rows = rows;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  m.x_train.resize(rows * features);
  for (float& v : m.x_train) v = nd(rng);
  m.y_train.resize(rows);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* x = m.x_train.data() + r * features;
    m.y_train[r] = std::sin(x[0]) + x[1] * x[2] + (x[3] > 0 ? 1.0f : -0.5f) + 0.1f * nd(rng);
  }
  DMatrixHandle d = nullptr;
  BoosterHandle b = nullptr;
  auto check = [](int rc, const char* what) -> Status {
    if (rc == 0) return {};
    return unavailable(std::string("XGBoost ") + what + ": " + XGBGetLastError());
  };
  MYELIN_RETURN_IF_ERROR(
      check(XGDMatrixCreateFromMat(m.x_train.data(), rows, features, NAN, &d), "DMatrix"));
  MYELIN_RETURN_IF_ERROR(
      check(XGDMatrixSetFloatInfo(d, "label", m.y_train.data(), rows), "labels"));
  MYELIN_RETURN_IF_ERROR(check(XGBoosterCreate(&d, 1, &b), "booster"));
  const std::string depth_s = std::to_string(depth);
  for (auto [k, v] : {std::pair<const char*, const char*>{"objective", "reg:squarederror"},
                      {"max_depth", depth_s.c_str()},
                      {"eta", "0.1"},
                      {"base_score", "0.5"},
                      {"nthread", "1"},
                      {"tree_method", "hist"},
                      {"verbosity", "0"}}) {
    MYELIN_RETURN_IF_ERROR(check(XGBoosterSetParam(b, k, v), "param"));
  }
  for (std::size_t i = 0; i < trees; ++i)
    MYELIN_RETURN_IF_ERROR(check(XGBoosterUpdateOneIter(b, static_cast<int>(i), d), "train"));
  XGDMatrixFree(d);
  bst_ulong n = 0;
  const char** dump = nullptr;
  MYELIN_RETURN_IF_ERROR(check(XGBoosterDumpModelEx(b, "", 0, "json", &n, &dump), "dump"));
  model::testing::TreeSpec spec;
  spec.features = features;
  for (bst_ulong t = 0; t < n; ++t)
    add_tree(nlohmann::json::parse(dump[t]), static_cast<std::int64_t>(t), spec);
  m.onnx =
      GraphBuilder()
          .input("X", {-1, static_cast<std::int64_t>(features)})
          .output("Y", {-1, 1})
          .node("TreeEnsembleRegressor", {"X"}, {"Y"},
                {Attr::of("nodes_treeids", spec.tree_ids), Attr::of("nodes_nodeids", spec.node_ids),
                 Attr::of("nodes_featureids", spec.feature_ids),
                 Attr::of("nodes_values", spec.thresholds), Attr::of("nodes_modes", spec.modes),
                 Attr::of("nodes_truenodeids", spec.true_ids),
                 Attr::of("nodes_falsenodeids", spec.false_ids),
                 Attr::of("nodes_missing_value_tracks_true", spec.missing_true),
                 Attr::of("target_treeids", spec.w_tree), Attr::of("target_nodeids", spec.w_node),
                 Attr::of("target_ids", spec.w_target), Attr::of("target_weights", spec.w_value),
                 Attr::of("n_targets", std::int64_t{1}),
                 Attr::of("base_values", std::vector<float>{0.5f})},
                "ai.onnx.ml", "xgboost_trees")
          .bytes();
  m.booster = b;
  return m;
}

void free_xgboost(XgbModel& m) {
  if (m.booster) XGBoosterFree(m.booster);
  m.booster = nullptr;
}

XgbPredictor make_xgb_predictor(const XgbModel& m, const float* x, std::size_t rows) {
  XgbPredictor p{m.booster, "", "", rows};
  p.array_interface = "{\"data\": [" + std::to_string(reinterpret_cast<std::uintptr_t>(x)) +
                      ", true], \"shape\": [" + std::to_string(rows) + ", " +
                      std::to_string(m.features) + "], \"typestr\": \"<f4\", \"version\": 3}";
  p.config =
      "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, \"iteration_end\": 0, "
      "\"strict_shape\": false, \"missing\": NaN, \"cache_id\": 0}";
  return p;
}

const float* XgbPredictor::run() const {
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  if (XGBoosterPredictFromDense(booster, array_interface.c_str(), config.c_str(), nullptr, &shape,
                                &dim, &out) != 0)
    return nullptr;
  return out;
}

std::map<std::string, PeerResult> run_peer(const std::string& kind,
                                           const std::vector<PeerCase>& cases, std::string& error,
                                           std::string& version) {
  std::map<std::string, PeerResult> results;
  nlohmann::json spec = nlohmann::json::array();
  for (const PeerCase& c : cases) {
    spec.push_back({{"name", c.name},
                    {"model", c.model},
                    {"shape", c.shape},
                    {"samples", c.samples},
                    {"block", c.block},
                    {"cold_reps", c.cold_reps},
                    {"extra", c.extra}});
  }
  const fs::path dir = fs::temp_directory_path();
  const fs::path spec_path =
      dir / ("myelin_peer_" + kind + "_" + std::to_string(::getpid()) + ".json");
  std::ofstream(spec_path) << spec.dump();
  const char* src = std::getenv("MYELIN_SOURCE_DIR");
  const fs::path root = src ? fs::path(src) : fs::current_path();
  std::string cmd;
  if (kind == "ort") {
    const char* ort = std::getenv("MYELIN_ORT_NODE_DIR");
    const fs::path mod = ort ? fs::path(ort) : root / "build/model-npm/node_modules";
    if (!fs::exists(mod / "onnxruntime-node")) {
      error = "onnxruntime-node not installed at " + mod.string() +
              " (run: mkdir -p build/model-npm && cd build/model-npm && npm install "
              "onnxruntime-node --ignore-scripts)";
      return results;
    }
    cmd = "NODE_PATH=" + shell_quote(mod.string()) + " node " +
          shell_quote((root / "bench/inference_ort.js").string());
  } else {
    cmd = "/usr/bin/python3 " + shell_quote((root / "bench/inference_sklearn.py").string());
  }
  cmd += " " + shell_quote(spec_path.string());
  // A peer that hangs is killed at the deadline (a full run takes minutes).
  harness::CommandOptions options;
  options.timeout = std::chrono::minutes(30);
  auto run = harness::run_command(cmd, options);
  fs::remove(spec_path);
  if (!run) {
    error = "cannot start: " + cmd + ": " + run.error().to_string();
    return results;
  }
  const std::string& out = run->output;
  const int rc = run->timed_out ? -1 : run->exit_code;
  const auto brace = out.rfind("\n{");
  const nlohmann::json doc = nlohmann::json::parse(
      brace == std::string::npos ? out : out.substr(brace + 1), nullptr, false);
  if (rc != 0 || doc.is_discarded() || !doc.is_object()) {
    error = kind + " peer failed (exit " + std::to_string(rc) + "): " + out.substr(0, 400);
    return results;
  }
  version = doc.value("version", "");
  for (const auto& [name, r] : doc.at("results").items()) {
    PeerResult& pr = results[name];
    if (r.contains("error")) {
      pr.error = r["error"].get<std::string>();
      continue;
    }
    for (double v : r.value("per_call_ns", std::vector<double>{})) pr.per_call.record_value(v);
    for (double v : r.value("cold_ns", std::vector<double>{})) pr.cold.record_value(v);
  }
  return results;
}

}  // namespace myelin::bench
