// The Open Inference Protocol (KServe v2 / Triton) REST bodies: decoding an
// infer request (JSON, optionally followed by binary tensor data) into an
// InferenceRequest, and encoding answers, metadata and errors.
// docs/serving.md gives every field; the protocol is KServe's "Open
// Inference Protocol" with Triton's binary tensor data extension.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "myelin/base/status.h"
#include "myelin/base/tensor.h"
#include "myelin/model/model.h"
#include "myelin/serve/request.h"

namespace myelin::serve::detail {

// "FP32" <-> DType::kF32, ...; nullopt for a name myelin cannot serve.
std::optional<DType> parse_oip_datatype(std::string_view name) noexcept;
std::string_view oip_datatype(DType dtype) noexcept;

struct DecodedOptions {
  std::optional<std::int64_t> timeout_us;  // request parameter "timeout"
};

// Decodes request.body (moved in by the caller): its first `json_length`
// bytes are the JSON object, the rest binary tensor data. request.body must
// have SIMDJSON_PADDING bytes of capacity beyond its size. Fills id, inputs
// (views into the body or owned), requested_outputs and binary_outputs.
// Errors are invalid_argument and say which field: "inputs[0].shape: ...".
Status decode_infer_request(simdjson::dom::parser& parser, std::size_t json_length,
                            InferenceRequest& request, DecodedOptions& options);

// Appends the answer to `out`: the JSON object, then binary outputs. Returns
// the JSON part's length (the Inference-Header-Content-Length when binary
// outputs follow).
std::size_t encode_infer_response(const InferenceRequest& request,
                                  std::span<const model::TensorInfo> outputs, std::string& out);

// {"error":"<message>"}
void encode_error(std::string_view message, std::string& out);
// Model metadata: name, versions, platform, inputs, outputs.
void encode_model_metadata(std::string_view name, std::string_view version,
                           std::string_view platform, const model::Model& model, std::string& out);
// A JSON string literal, quotes included.
void append_json_string(std::string& out, std::string_view s);

}  // namespace myelin::serve::detail
