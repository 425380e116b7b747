#include "src/model/conformance/conformance.h"

#include <onnx/onnx_pb.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "myelin/model/model.h"
#include "src/model/onnx_import.h"

namespace myelin::model::conformance {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool read_tensor(const fs::path& p, onnx::TensorProto& t) {
  const std::string bytes = slurp(p);
  return t.ParseFromString(bytes);
}

std::vector<fs::path> numbered(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (int i = 0;; ++i) {
    const fs::path p = dir / (prefix + std::to_string(i) + ".pb");
    if (!fs::exists(p)) break;
    out.push_back(p);
  }
  return out;
}

}  // namespace

CaseResult run_case(const std::string& dir, double rtol, double atol) {
  CaseResult r;
  onnx::ModelProto m;
  if (!m.ParseFromString(slurp(fs::path(dir) / "model.onnx"))) {
    r.load_error = "cannot parse model.onnx";
    return r;
  }
  const fs::path data = fs::path(dir) / "test_data_set_0";
  const auto in_files = numbered(data, "input_");
  const auto out_files = numbered(data, "output_");
  // ONNX's node tests feed shape-like int64 tensors (Reshape's shape) as
  // graph inputs; myelin needs them constant, so they become initializers
  // with the case's own values (the values are unchanged).
  std::vector<detail::ConstTensor> inputs;
  std::vector<std::string> input_names;
  onnx::GraphProto* g = m.mutable_graph();
  std::vector<int> keep;
  for (int i = 0; i < g->input_size() && i < static_cast<int>(in_files.size()); ++i) {
    onnx::TensorProto t;
    if (!read_tensor(in_files[static_cast<std::size_t>(i)], t)) {
      r.load_error = "cannot parse " + in_files[static_cast<std::size_t>(i)].string();
      return r;
    }
    if (t.data_type() == onnx::TensorProto::INT64) {
      t.set_name(g->input(i).name());
      *g->add_initializer() = t;
      continue;
    }
    auto c = detail::parse_tensor(t);
    if (!c) {
      r.load_error = c.error().to_string();
      return r;
    }
    inputs.push_back(std::move(*c));
    input_names.push_back(g->input(i).name());
  }
  const std::string bytes = m.SerializeAsString();
  auto model = Model::load(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()),
      {}, dir);
  if (!model) {
    r.load_error = model.error().to_string();
    return r;
  }
  r.loaded = true;
  std::vector<TensorView> views;
  for (const auto& c : inputs) {
    auto shape = Shape::from(c.dims);
    if (!shape) {
      r.mismatch = shape.error().to_string();
      return r;
    }
    views.push_back(TensorView::of<float>(std::span<const float>(c.f), *shape));
  }
  auto out = model->predict(views);
  if (!out) {
    r.mismatch = "predict: " + out.error().to_string();
    return r;
  }
  if (out->size() != out_files.size()) {
    r.mismatch = "output count differs";
    return r;
  }
  for (std::size_t o = 0; o < out_files.size(); ++o) {
    onnx::TensorProto t;
    read_tensor(out_files[o], t);
    auto want = detail::parse_tensor(t);
    if (!want) {
      r.mismatch = "expected output: " + want.error().to_string();
      return r;
    }
    const Tensor& got = (*out)[o];
    if (got.shape.dims().size() != want->dims.size() ||
        !std::equal(want->dims.begin(), want->dims.end(), got.shape.dims().begin())) {
      r.mismatch = "output " + std::to_string(o) + " shape " + got.shape.to_string() + " differs";
      return r;
    }
    for (std::size_t i = 0; i < want->count(); ++i) {
      ++r.compared;
      if (want->dtype == DType::kI64) {
        if (got.dtype != DType::kI64 || got.as<std::int64_t>()[i] != want->i[i]) {
          r.mismatch = "output " + std::to_string(o) + "[" + std::to_string(i) + "] differs";
          return r;
        }
        continue;
      }
      const double w = want->f[i], v = got.as<float>()[i];
      const bool both_nan = std::isnan(w) && std::isnan(v);
      if (!both_nan && !(std::fabs(v - w) <= atol + rtol * std::fabs(w))) {
        r.mismatch = "output " + std::to_string(o) + "[" + std::to_string(i) +
                     "] = " + std::to_string(v) + ", expected " + std::to_string(w);
        return r;
      }
    }
  }
  return r;
}

}  // namespace myelin::model::conformance
