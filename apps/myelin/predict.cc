// `myelin predict --model FILE [--input FILE]`: runs a model on JSON inputs.
//
// Input JSON (stdin or --input): {"X": [[...], ...]} keyed by input name, or
// a bare nested array for a single-input model. Numbers become f64 and are
// converted to f32 by the model. Output JSON: {"Y": {"dtype": "f32",
// "shape": [...], "data": [...]}} per output, flat row-major data.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/myelin/commands.h"
#include "apps/myelin/model_cli.h"
#include "myelin/model/model.h"

namespace myelin::cli {
namespace {

struct PredictFlags {
  std::string model;
  std::string input = "-";
  std::string isa = "auto";
};

int usage(const std::string& msg) {
  std::fprintf(stderr, "myelin predict: %s\n", msg.c_str());
  return kExitUsage;
}

int run_predict(const PredictFlags& f) {
  const auto isa = parse_isa(f.isa);
  if (!isa) return usage("--isa: expected auto, scalar, avx2 or avx512, got '" + f.isa + "'");
  auto m = model::Model::load(f.model, model::LoadOptions{*isa});
  if (!m) {
    std::fprintf(stderr, "myelin predict: %s\n", m.error().to_string().c_str());
    return m.error().code() == ErrorCode::kIoError ? kExitFailure : kExitUsage;
  }
  std::string text;
  if (f.input == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(f.input);
    if (!in) return usage("--input: cannot read " + f.input);
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded()) return usage("input is not valid JSON");
  const auto infos = m->inputs();
  std::vector<std::vector<double>> data(infos.size());
  std::vector<TensorView> views;
  for (std::size_t i = 0; i < infos.size(); ++i) {
    const nlohmann::json* j = nullptr;
    if (doc.is_object()) {
      auto it = doc.find(infos[i].name);
      if (it == doc.end())
        return usage("input '" + infos[i].name + "' missing from the JSON object");
      j = &*it;
    } else if (infos.size() == 1) {
      j = &doc;
    } else {
      return usage("the model has " + std::to_string(infos.size()) +
                   " inputs: pass an object keyed by name");
    }
    std::vector<std::int64_t> dims;
    if (Status s = flatten_json(*j, dims, 0, data[i]); !s.ok())
      return usage("input '" + infos[i].name + "': " + std::string(s.message()));
    auto shape = Shape::from(dims);
    if (!shape) return usage(shape.error().to_string());
    views.push_back(TensorView::of<double>(std::span<const double>(data[i]), *shape));
  }
  auto out = m->predict(views);
  if (!out) return usage(std::string(out.error().message()));
  nlohmann::json result = nlohmann::json::object();
  for (std::size_t i = 0; i < out->size(); ++i) {
    const model::Tensor& t = (*out)[i];
    nlohmann::json values = nlohmann::json::array();
    if (t.dtype == DType::kI64) {
      for (auto v : t.as<std::int64_t>()) values.push_back(v);
    } else {
      for (auto v : t.as<float>()) values.push_back(v);
    }
    result[escape_name(m->outputs()[i].name)] = {
        {"dtype", std::string(to_string(t.dtype))},
        {"shape", std::vector<std::int64_t>(t.shape.dims().begin(), t.shape.dims().end())},
        {"data", values}};
  }
  std::printf("%s\n", result.dump().c_str());
  return kExitOk;
}

}  // namespace

std::string escape_name(std::string_view name) {
  std::string out;
  std::size_t i = 0;
  while (i < name.size()) {
    const auto c = static_cast<unsigned char>(name[i]);
    // The length of a well-formed UTF-8 sequence starting with c (RFC 3629), else 0.
    std::size_t len = c < 0x80                   ? 1
                      : (c >= 0xC2 && c <= 0xDF) ? 2
                      : (c >= 0xE0 && c <= 0xEF) ? 3
                      : (c >= 0xF0 && c <= 0xF4) ? 4
                                                 : 0;
    if (len > 1 && i + len <= name.size()) {
      const auto c1 = static_cast<unsigned char>(name[i + 1]);
      const unsigned char lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
      const unsigned char hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
      bool ok = c1 >= lo && c1 <= hi;
      for (std::size_t k = 2; ok && k < len; ++k)
        ok = (static_cast<unsigned char>(name[i + k]) & 0xC0) == 0x80;
      if (!ok) len = 0;
    } else if (len > 1) {
      len = 0;
    }
    if (len == 0) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      ++i;
      continue;
    }
    out.append(name.substr(i, len));
    i += len;
  }
  return out;
}

// Flattens a nested array; the shape comes from the first element at each level.
Status flatten_json(const nlohmann::json& j, std::vector<std::int64_t>& dims, std::size_t depth,
                    std::vector<double>& out) {
  if (j.is_number()) {
    if (depth != dims.size()) return invalid_argument("ragged array");
    out.push_back(j.get<double>());
    return {};
  }
  if (!j.is_array()) return invalid_argument("expected numbers or arrays");
  if (depth == dims.size()) {
    if (depth >= 8) return invalid_argument("more than 8 dimensions");
    dims.push_back(static_cast<std::int64_t>(j.size()));
  } else if (dims[depth] != static_cast<std::int64_t>(j.size())) {
    return invalid_argument("ragged array: a row has " + std::to_string(j.size()) +
                            " entries, expected " + std::to_string(dims[depth]));
  }
  for (const auto& e : j) MYELIN_RETURN_IF_ERROR(flatten_json(e, dims, depth + 1, out));
  return {};
}

void register_predict(CLI::App& app, Context& ctx) {
  auto flags = std::make_shared<PredictFlags>();
  CLI::App* cmd = app.add_subcommand("predict", "Run a model (ONNX or .mylm) on JSON inputs");
  cmd->add_option("--model", flags->model, "ONNX or .mylm file")->required();
  cmd->add_option("--input", flags->input, "JSON file with the inputs ('-': stdin)")
      ->capture_default_str();
  cmd->add_option("--isa", flags->isa, "Kernels: auto, scalar, avx2, avx512")
      ->capture_default_str();
  cmd->callback([flags, &ctx] { ctx.exit_code = run_predict(*flags); });
}

}  // namespace myelin::cli
