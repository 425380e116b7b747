#include "src/serve/tensor_check.h"

#include <string>
#include <utility>

namespace myelin::serve::detail {
namespace {

std::string name_list(std::span<const model::TensorInfo> infos) {
  std::string s;
  for (const auto& i : infos) {
    if (!s.empty()) s += ", ";
    s += i.name;
  }
  return s;
}

// The Open Inference Protocol's names ("FP32"): what clients of every front
// end see in their datatype fields.
std::string_view dtype_name(DType d) {
  switch (d) {
    case DType::kF32:
      return "FP32";
    case DType::kF64:
      return "FP64";
    case DType::kF16:
      return "FP16";
    case DType::kBF16:
      return "BF16";
    case DType::kI32:
      return "INT32";
    case DType::kI64:
      return "INT64";
    case DType::kU8:
      return "UINT8";
    case DType::kU32:
      return "UINT32";
  }
  return "UNKNOWN";
}

bool dtype_accepted(DType model_dtype, DType given) {
  if (model_dtype == given) return true;
  return model_dtype == DType::kF32 && given == DType::kF64;  // converted on gather
}

}  // namespace

std::string expected_shape(const model::TensorInfo& info) {
  std::string s = "[";
  for (std::size_t d = 0; d < info.dims.size(); ++d) {
    if (d) s += ", ";
    if (info.dims[d] < 0) {
      s += d == 0 && info.batched ? "N" : "?";
    } else {
      s += std::to_string(info.dims[d]);
    }
  }
  return s + "]";
}

Status bind_request(const model::Model& model, std::size_t max_rows, InferenceRequest& request) {
  const auto infos = model.inputs();
  auto& inputs = request.inputs;
  // Unknown or repeated names first: they explain a missing input best.
  for (std::size_t k = 0; k < inputs.size(); ++k) {
    bool known = false;
    for (const auto& info : infos) known = known || info.name == inputs[k].name;
    if (!known) {
      return invalid_argument("inputs[" + std::to_string(k) + "]: unknown input '" +
                              inputs[k].name + "'; model '" + request.model +
                              "' has inputs: " + name_list(infos));
    }
    for (std::size_t m = 0; m < k; ++m) {
      if (inputs[m].name == inputs[k].name) {
        return invalid_argument("inputs[" + std::to_string(k) + "]: input '" + inputs[k].name +
                                "' given twice");
      }
    }
  }
  if (inputs.size() != infos.size()) {
    for (const auto& info : infos) {
      bool found = false;
      for (const auto& in : inputs) found = found || in.name == info.name;
      if (!found) {
        return invalid_argument("missing input '" + info.name + "'; model '" + request.model +
                                "' has inputs: " + name_list(infos));
      }
    }
  }
  // Model order from here on.
  for (std::size_t j = 0; j < infos.size(); ++j) {
    for (std::size_t k = j; k < inputs.size(); ++k) {
      if (inputs[k].name == infos[j].name) {
        std::swap(inputs[j], inputs[k]);
        break;
      }
    }
  }
  std::size_t rows = 0;
  for (std::size_t j = 0; j < infos.size(); ++j) {
    const model::TensorInfo& info = infos[j];
    const InputTensor& in = inputs[j];
    // Messages are built only on failure: the success path allocates nothing.
    auto label = [&] { return "input '" + in.name + "'"; };
    if (!dtype_accepted(info.dtype, in.dtype)) {
      return invalid_argument(label() + ": datatype " + std::string(dtype_name(in.dtype)) +
                              ", expected " + std::string(dtype_name(info.dtype)) +
                              (info.dtype == DType::kF32 ? " or FP64" : ""));
    }
    bool fits = in.shape.rank() == info.dims.size();
    for (std::size_t d = 0; fits && d < info.dims.size(); ++d) {
      if (info.dims[d] >= 0 && in.shape[d] != info.dims[d]) fits = false;
      if (in.shape[d] < (d == 0 && info.batched ? 1 : 0)) fits = false;
    }
    if (!fits) {
      return invalid_argument(label() + ": shape " + in.shape.to_string() + ", expected " +
                              expected_shape(info));
    }
    const std::size_t r = info.batched ? static_cast<std::size_t>(in.shape[0]) : 1;
    if (j > 0 && r != rows) {
      return invalid_argument(label() + ": " + std::to_string(r) + " rows, but input '" +
                              inputs[0].name + "' has " + std::to_string(rows));
    }
    rows = r;
    auto elems = in.shape.element_count();
    if (!elems) return invalid_argument(label() + ": " + std::string(elems.error().message()));
    const std::uint64_t want = *elems * dtype_size(in.dtype);
    if (in.data.size() != want) {
      return invalid_argument(label() + ": " + std::to_string(in.data.size()) +
                              " bytes of data for shape " + in.shape.to_string() + " " +
                              std::string(dtype_name(in.dtype)) + " (" + std::to_string(want) +
                              " bytes)");
    }
  }
  if (rows > max_rows) {
    return invalid_argument("input '" + inputs[0].name + "': " + std::to_string(rows) +
                            " rows exceed the max batch size of model '" + request.model + "' (" +
                            std::to_string(max_rows) + ")");
  }
  request.rows = rows;

  const auto outs = model.outputs();
  request.output_index.clear();
  if (request.requested_outputs.empty()) {
    for (std::size_t j = 0; j < outs.size(); ++j) {
      request.output_index.push_back(static_cast<std::uint16_t>(j));
    }
  } else {
    for (std::size_t k = 0; k < request.requested_outputs.size(); ++k) {
      const std::string& name = request.requested_outputs[k];
      std::size_t j = 0;
      while (j < outs.size() && outs[j].name != name) ++j;
      if (j == outs.size()) {
        return invalid_argument("outputs[" + std::to_string(k) + "]: unknown output '" + name +
                                "'; model '" + request.model + "' has outputs: " + name_list(outs));
      }
      request.output_index.push_back(static_cast<std::uint16_t>(j));
    }
  }
  request.outputs.resize(outs.size());
  for (std::size_t j = 0; j < outs.size(); ++j) {
    OutputTensor& o = request.outputs[j];
    o.dtype = outs[j].dtype;
    o.shape = model.output_shape(j, rows).value();
    o.bytes.resize(o.shape.element_count().value_or(0) * dtype_size(o.dtype));
  }
  return {};
}

}  // namespace myelin::serve::detail
