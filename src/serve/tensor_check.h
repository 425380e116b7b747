// Binding a request to a model: inputs by name, dtype, shape and size
// checks, output selection and output sizing. Runs on the submitting thread
// (a front end's I/O loop), so the batch path only copies and computes.
#pragma once

#include <cstddef>

#include "myelin/base/status.h"
#include "myelin/model/model.h"
#include "myelin/serve/request.h"

namespace myelin::serve::detail {

// On ok: request.inputs are in the model's input order, request.rows is set
// (1 for a model without a batch dimension), request.outputs are sized for
// every model output, and request.output_index lists the outputs to return.
// Errors are invalid_argument and name the tensor and what was expected,
// e.g. "inputs[0] 'X': shape [1, 7], expected [N, 4]".
Status bind_request(const model::Model& model, std::size_t max_rows, InferenceRequest& request);

// "[N, 4]" for a model tensor (N for the batch dimension).
std::string expected_shape(const model::TensorInfo& info);

}  // namespace myelin::serve::detail
