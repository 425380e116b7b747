// Fuzzes the Open Inference Protocol infer-request decoder (src/serve/oip.cc)
// and what an I/O thread runs behind it: binding the request to a model
// (tensor_check.cc) and encoding the answer.
//
// Input: byte 0 is flags, the rest is the request body.
//   bits 0-1  the model: 0 linear [N,4] -> [N,1]; 1 classifier [N,4] ->
//             label INT64 [N] + prob [N,3]; 2 two inputs a,b [N,2] -> [N,2];
//             3 fixed shape [2,3] (no batch dimension).
//   bit 2     bytes 1-2 (little-endian) are the JSON length, as the
//             Inference-Header-Content-Length header gives it, and the body
//             bytes after the JSON are binary tensor data; a length past the
//             body is taken modulo (body size + 1). Clear: the body is JSON.
//   bits 3-4  the max batch rows bind_request allows: 1, 2, 4 or 64.
// The outputs bind_request sizes are filled with bytes of the input, so the
// encoder also sees NaN, infinities and denormals.
//
// Invariants (abort on violation):
//  - decoded: every input's data is its own bytes or lies in the body's
//    binary part, and the binary inputs claim that part exactly, in order.
//  - bound: inputs in model order, each exactly elements * dtype-size bytes
//    of an accepted dtype and shape; rows within max rows; outputs sized for
//    the rows; output_index names valid outputs.
//  - encoded: the JSON part is valid JSON naming the model and exactly the
//    requested outputs (name, datatype, shape; values that read back as the
//    same numbers, null for non-finite; or binary_data_size), followed by
//    exactly the binary outputs' bytes.
#include <simdjson.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "myelin/model/model.h"
#include "myelin/serve/request.h"
#include "src/model/test_models.h"
#include "src/serve/oip.h"
#include "src/serve/tensor_check.h"

namespace {

using namespace myelin;
using namespace myelin::serve;
using model::testing::Attr;
using model::testing::GraphBuilder;

[[noreturn]] void fail(const char* what, int line) {
  std::fprintf(stderr, "oip_decode_fuzz.cc:%d: invariant violated: %s\n", line, what);
  std::abort();
}
#define CHECK(cond)                     \
  do {                                  \
    if (!(cond)) fail(#cond, __LINE__); \
  } while (0)

struct NamedModel {
  const char* name;
  model::Model model;
};

model::Model load(const std::string& onnx, const char* name) {
  auto m = model::Model::load(
      std::span<const std::byte>(reinterpret_cast<const std::byte*>(onnx.data()), onnx.size()), {},
      name);
  if (!m) {
    std::fprintf(stderr, "oip_decode_fuzz: model %s: %s\n", name, m.error().to_string().c_str());
    std::abort();
  }
  return *std::move(m);
}

const std::vector<NamedModel>& models() {
  static const std::vector<NamedModel> all = [] {
    std::vector<NamedModel> v;
    v.push_back({"linear", load(model::testing::linear_regressor(4, 7), "linear")});
    v.push_back(
        {"classifier",
         load(GraphBuilder()
                  .input("X", {-1, 4})
                  .output("label", {-1}, 7)
                  .output("prob", {-1, 3})
                  .node("LinearClassifier", {"X"}, {"label", "prob"},
                        {Attr::of("coefficients", model::testing::random_floats(12, 3)),
                         Attr::of("classlabels_ints", std::vector<std::int64_t>{10, 20, 30}),
                         Attr::of("post_transform", std::string("SOFTMAX"))},
                        "ai.onnx.ml", "lc")
                  .bytes(),
              "classifier")});
    v.push_back({"pair", load(GraphBuilder()
                                  .input("a", {-1, 2})
                                  .input("b", {-1, 2})
                                  .output("Y", {-1, 2})
                                  .node("Add", {"a", "b"}, {"Y"}, {}, "", "add")
                                  .bytes(),
                              "pair")});
    v.push_back({"fixed", load(GraphBuilder()
                                   .input("X", {2, 3})
                                   .output("Y", {2, 3})
                                   .node("Relu", {"X"}, {"Y"}, {}, "", "relu")
                                   .bytes(),
                               "fixed")});
    return v;
  }();
  return all;
}

bool inside(std::span<const std::byte> part, const std::string& body, std::size_t from) {
  if (part.empty()) return true;
  const auto* b = reinterpret_cast<const std::byte*>(body.data());
  return part.data() >= b + from && part.data() + part.size() <= b + body.size();
}

void check_decoded(const InferenceRequest& r, std::size_t json_length) {
  CHECK(!r.inputs.empty());
  CHECK(r.requested_outputs.size() <= 64);
  std::size_t binary = 0;
  const std::byte* next = reinterpret_cast<const std::byte*>(r.body.data()) + json_length;
  for (const InputTensor& in : r.inputs) {
    CHECK(!in.name.empty());
    const bool owned = in.data.data() == in.owned.data() && in.data.size() == in.owned.size();
    if (owned && !in.owned.empty()) continue;
    if (in.data.empty() && in.owned.empty()) continue;  // no values, either way
    // Binary data: the next bytes after the JSON and earlier binary inputs.
    CHECK(in.owned.empty());
    CHECK(inside(in.data, r.body, json_length));
    CHECK(in.data.data() == next);
    next += in.data.size();
    binary += in.data.size();
  }
  CHECK(binary == r.body.size() - json_length);
}

void check_bound(const model::Model& m, std::size_t max_rows, const InferenceRequest& r) {
  const auto infos = m.inputs();
  CHECK(r.inputs.size() == infos.size());
  CHECK(r.rows <= max_rows);
  for (std::size_t j = 0; j < infos.size(); ++j) {
    const InputTensor& in = r.inputs[j];
    CHECK(in.name == infos[j].name);
    CHECK(in.dtype == infos[j].dtype || (infos[j].dtype == DType::kF32 && in.dtype == DType::kF64));
    CHECK(in.shape.rank() == infos[j].dims.size());
    for (std::size_t d = 0; d < in.shape.rank(); ++d) {
      if (infos[j].dims[d] >= 0) CHECK(in.shape[d] == infos[j].dims[d]);
    }
    if (infos[j].batched) CHECK(r.rows == static_cast<std::size_t>(in.shape[0]) && r.rows >= 1);
    auto elems = in.shape.element_count();
    CHECK(elems.has_value());
    CHECK(in.data.size() == *elems * dtype_size(in.dtype));
  }
  const auto outs = m.outputs();
  CHECK(r.outputs.size() == outs.size());
  if (r.requested_outputs.empty()) {
    CHECK(r.output_index.size() == outs.size());
  } else {
    CHECK(r.output_index.size() == r.requested_outputs.size());
  }
  for (std::size_t k = 0; k < r.output_index.size(); ++k) CHECK(r.output_index[k] < outs.size());
  for (std::size_t j = 0; j < outs.size(); ++j) {
    const OutputTensor& o = r.outputs[j];
    CHECK(o.dtype == outs[j].dtype);
    CHECK(o.shape == m.output_shape(j, r.rows).value());
    CHECK(o.bytes.size() == o.shape.element_count().value_or(~0ull) * dtype_size(o.dtype));
  }
}

// The i-th value of `t` as it must read back from the JSON.
template <typename T>
T value_at(const OutputTensor& t, std::size_t i) {
  T v;
  std::memcpy(&v, t.bytes.data() + i * sizeof(T), sizeof(T));
  return v;
}

void check_values(simdjson::dom::array data, const OutputTensor& t) {
  const std::size_t n = t.bytes.size() / dtype_size(t.dtype);
  CHECK(data.size() == n);
  std::size_t i = 0;
  for (simdjson::dom::element e : data) {
    if (t.dtype == DType::kF32 || t.dtype == DType::kF64) {
      const double want =
          t.dtype == DType::kF32 ? double{value_at<float>(t, i)} : value_at<double>(t, i);
      if (!std::isfinite(want)) {
        CHECK(e.is_null());
      } else {
        double got;
        CHECK(!e.get_double().get(got));
        if (t.dtype == DType::kF32) {
          CHECK(static_cast<float>(got) == static_cast<float>(want));
        } else {
          CHECK(got == want);
        }
      }
    } else if (t.dtype == DType::kI64) {
      std::int64_t got;
      CHECK(!e.get_int64().get(got));
      CHECK(got == value_at<std::int64_t>(t, i));
    }
    ++i;
  }
}

void check_encoded(const InferenceRequest& r, std::span<const model::TensorInfo> outs,
                   const std::string& out, std::size_t json_length) {
  CHECK(json_length <= out.size());
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const simdjson::padded_string json(out.data(), json_length);
  if (auto e = parser.parse(json).get(doc)) {
    std::fprintf(stderr, "%s\n%.*s\n", simdjson::error_message(e), static_cast<int>(json_length),
                 out.data());
    fail("the answer's JSON part does not parse", __LINE__);
  }
  std::string_view s;
  CHECK(!doc["model_name"].get_string().get(s) && s == r.model);
  CHECK(!doc["model_version"].get_string().get(s) && s == r.version);
  if (!r.id.empty()) CHECK(!doc["id"].get_string().get(s) && s == r.id);
  simdjson::dom::array list;
  CHECK(!doc["outputs"].get_array().get(list));
  CHECK(list.size() == r.output_index.size());
  std::size_t k = 0, binary = 0;
  for (simdjson::dom::element o : list) {
    const std::size_t j = r.output_index[k];
    const OutputTensor& t = r.outputs[j];
    CHECK(!o["name"].get_string().get(s) && s == outs[j].name);
    CHECK(!o["datatype"].get_string().get(s) && s == serve::detail::oip_datatype(t.dtype));
    simdjson::dom::array shape;
    CHECK(!o["shape"].get_array().get(shape));
    CHECK(shape.size() == t.shape.rank());
    std::size_t d = 0;
    for (simdjson::dom::element v : shape) {
      std::int64_t x;
      CHECK(!v.get_int64().get(x) && x == t.shape[d]);
      ++d;
    }
    if (k < 64 && ((r.binary_outputs >> k) & 1) != 0) {
      std::uint64_t size;
      CHECK(!o["parameters"]["binary_data_size"].get_uint64().get(size));
      CHECK(size == t.bytes.size());
      CHECK(o["data"].error() == simdjson::NO_SUCH_FIELD);
      binary += t.bytes.size();
    } else {
      simdjson::dom::array data;
      CHECK(!o["data"].get_array().get(data));
      check_values(data, t);
    }
    ++k;
  }
  CHECK(out.size() - json_length == binary);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static simdjson::dom::parser parser;  // reused, as an I/O loop reuses its own
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const NamedModel& nm = models()[flags & 3];
  static constexpr std::size_t kMaxRows[] = {1, 2, 4, 64};
  const std::size_t max_rows = kMaxRows[(flags >> 3) & 3];
  std::size_t at = 1;
  std::optional<std::size_t> split;
  if ((flags & 4) != 0) {
    if (size < 3) return 0;
    split = std::size_t{data[1]} | std::size_t{data[2]} << 8;
    at = 3;
  }
  const std::size_t body_size = size - at;
  std::size_t json_length = body_size;
  if (split) json_length = *split <= body_size ? *split : *split % (body_size + 1);

  InferenceRequest request;
  // Moved in: GCC 12 warns (-Wrestrict, falsely) on assigning a literal here.
  request.model = std::string(nm.name);
  request.version = std::string("1");
  request.body.reserve(body_size + simdjson::SIMDJSON_PADDING);
  request.body.assign(reinterpret_cast<const char*>(data + at), body_size);
  serve::detail::DecodedOptions options;
  static const bool verbose =
      std::getenv("MYELIN_FUZZ_VERBOSE") != nullptr;  // decode and bind outcomes
  const Status decoded = serve::detail::decode_infer_request(parser, json_length, request, options);
  if (verbose) std::fprintf(stderr, "decode: %s\n", decoded.to_string().c_str());
  if (!decoded.ok()) return 0;
  check_decoded(request, json_length);
  if (options.timeout_us) CHECK(*options.timeout_us > 0);

  const Status bound = serve::detail::bind_request(nm.model, max_rows, request);
  if (verbose) std::fprintf(stderr, "bind %s: %s\n", nm.name, bound.to_string().c_str());
  if (!bound.ok()) return 0;
  check_bound(nm.model, max_rows, request);

  // Output values: the input's bytes, over and over.
  std::size_t src = 0;
  for (OutputTensor& o : request.outputs) {
    for (std::byte& b : o.bytes) {
      b = static_cast<std::byte>(data[src]);
      src = (src + 1) % size;
    }
  }
  std::string out = "prefix";  // the encoder appends
  const std::size_t json_length_out =
      serve::detail::encode_infer_response(request, nm.model.outputs(), out);
  CHECK(out.compare(0, 6, "prefix") == 0);
  check_encoded(request, nm.model.outputs(), out.substr(6), json_length_out);
  return 0;
}
