// The peers of `myelin bench inference`, measured in the same run:
// XGBoost's C API (libxgboost), ONNX Runtime through npm's onnxruntime-node
// (a Node.js child process), and scikit-learn (a python3 child process).
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "myelin/base/latency_recorder.h"
#include "myelin/base/result.h"
#include "src/model/test_models.h"

namespace myelin::bench {

// A tree ensemble trained by XGBoost, and the same trees as ONNX.
struct XgbModel {
  void* booster = nullptr;  // BoosterHandle
  std::string onnx;         // TreeEnsembleRegressor with BRANCH_LT + missing tracking
  std::size_t trees = 0, depth = 0, features = 0;
  std::vector<float> x_train, y_train;  // the training data (for scikit-learn)
  std::size_t rows = 0;
};
Result<XgbModel> train_xgboost(std::size_t trees, std::size_t depth, std::size_t features,
                               std::size_t rows);
void free_xgboost(XgbModel& m);
// XGBoosterPredictFromDense on `rows` rows (single thread); returns its output.
struct XgbPredictor {
  void* booster;
  std::string array_interface, config;
  std::size_t rows;
  const float* run() const;  // null on error
};
XgbPredictor make_xgb_predictor(const XgbModel& m, const float* x, std::size_t rows);

// One timed case for an external peer.
struct PeerCase {
  std::string name;
  std::string model;  // ONNX path (ORT) or a kind for scikit-learn
  std::vector<std::int64_t> shape;
  std::size_t samples = 0, block = 1, cold_reps = 0;
  std::map<std::string, std::string> extra;  // scikit-learn: weight files etc.
};
struct PeerResult {
  LatencyRecorder per_call;  // ns per call
  LatencyRecorder cold;      // ns, create + first run
  std::string error;
};
// Runs `node inference_ort.js` / `python3 inference_sklearn.py` with the cases;
// `error` explains a peer that could not run.
std::map<std::string, PeerResult> run_peer(const std::string& kind,
                                           const std::vector<PeerCase>& cases, std::string& error,
                                           std::string& version);

}  // namespace myelin::bench
