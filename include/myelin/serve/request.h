// InferenceRequest: the one request type every front end decodes into and the
// batcher consumes (HTTP today; the secure channel and RabbitMQ plug in the
// same way).
//
// Ownership: a front end allocates a request, fills the inputs (whose bytes
// it owns in `InputTensor::owned` or in `body`), and hands it to
// Batcher::submit. From then on the batcher owns it until it calls
// `responder->complete(std::move(request))` exactly once, on a worker
// thread, with `status` and `outputs` set. The responder decides where the
// answer goes (typically: submit a task to the connection's loop). Input
// views may be unaligned (they point into a request body): the batcher
// copies rows into its own aligned batch buffer, and only that reaches a
// kernel.
//
// Not thread-safe: a request is used by one thread at a time, handed over by
// submit() and complete().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/status.h"
#include "myelin/base/tensor.h"

namespace myelin::serve {

struct InferenceRequest;
struct ServedModel;  // model_repository.h

// Where a finished request goes. complete() runs on a batcher worker thread
// and must not block: hand the request to the thread that answers.
class Responder {
 public:
  virtual ~Responder() = default;
  virtual void complete(std::unique_ptr<InferenceRequest> request) = 0;
};

struct InputTensor {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  std::span<const std::byte> data;  // into `owned` or into the request's `body`
  std::vector<std::byte> owned;
};

// An owned output; the batcher sizes it at submit time.
struct OutputTensor {
  DType dtype = DType::kF32;
  Shape shape;
  std::vector<std::byte> bytes;
};

struct InferenceRequest {
  // --- filled by the front end ---
  std::string model;
  std::string version;  // empty: the served version
  std::string id;       // echoed in the answer
  std::vector<InputTensor> inputs;
  // Names of the outputs to return; empty means every output.
  std::vector<std::string> requested_outputs;
  MonoTime deadline = MonoTime::max();  // past it the request is answered without computing
  std::string body;                     // bytes the input views may point into
  std::shared_ptr<Responder> responder;
  std::uint64_t tag = 0;  // the front end's own reference (e.g. a pipeline slot)
  // Bit k set: requested output k goes back as raw bytes (the Open Inference
  // Protocol's binary tensor data extension); a front end's own business.
  std::uint64_t binary_outputs = 0;
  std::shared_ptr<ServedModel> served;  // the model version serving it, kept alive meanwhile
  MonoTime received{};                  // when the front end had the whole request

  // --- filled by the batcher ---
  // Model output index of each entry of `requested_outputs` (all outputs, in
  // model order, when none were named).
  std::vector<std::uint16_t> output_index;
  std::vector<OutputTensor> outputs;  // one per model output
  std::size_t rows = 0;               // batch rows this request carries
  Status status;                      // ok, deadline_exceeded, internal, ...
  MonoTime enqueued{};
  Nanos queue_time{0};         // enqueued -> its batch started
  Nanos compute_time{0};       // its batch's gather + predict + scatter
  std::size_t batch_size = 0;  // rows in the batch that computed it
};

}  // namespace myelin::serve
