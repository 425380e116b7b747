// Batcher: the dynamic batcher of one model version, and the worker threads
// that run its batches.
//
// Rules (docs/serving.md, "The batcher"):
//  - submit() validates a request against the model on the caller's thread
//    (inputs bound by name, dtype, shape, rows <= max_batch, output names),
//    sizes its outputs, and queues it. A full queue refuses at once
//    (resource_exhausted): load is shed at the door, never queued without
//    bound.
//  - Work-conserving: a worker that is idle takes whatever is queued at once,
//    so a lone request never waits for company; batches form only while
//    every worker is busy, or from requests a front end enqueued together.
//  - Inline runs: when a worker is idle, the flushing thread may run the
//    next batch itself in that worker's slot, if the model's measured
//    per-row compute times the batch's rows fits inline_max_compute; a
//    bigger batch goes whole to the worker. A model's first batch always
//    runs on a worker, so a model that is slow from the start never runs
//    inline.
//  - A batch is the queue's head plus the requests behind it, up to
//    max_batch rows, that arrived no later than max_delay after the head: a
//    batch stays open to newcomers for max_delay at most.
//  - A request whose deadline has passed when its batch starts is answered
//    deadline_exceeded without being computed.
//  - Rows are copied into the worker's aligned batch buffer (converted to the
//    dtype the model computes in), predicted, and copied back into each
//    request's outputs. Each worker owns its Workspace and buffers: nothing
//    on this path allocates once warmed up.
//
// Threads: submit, enqueue, flush, stats and shutdown are thread-safe.
// Completions run on a worker thread, or on the thread that called
// submit/flush for an inline run (Responder::complete). Each worker is an EventLoop, so an
// idle worker spins briefly before it parks, like every loop in myelin.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/base/status.h"
#include "myelin/model/model.h"
#include "myelin/serve/metrics.h"
#include "myelin/serve/request.h"

namespace myelin::serve {

struct BatcherOptions {
  std::size_t max_batch = 64;  // rows per batch (>= 1); 1 turns batching off
  Nanos max_delay = std::chrono::microseconds(500);
  std::size_t max_queue = 1024;  // requests waiting (>= 1)
  std::size_t workers = 1;       // threads, each with its own Workspace (>= 1)
  // Before an idle worker parks (adaptive, as EventLoop spins): long enough
  // to catch the next request of a client that sends one per round trip.
  Nanos worker_spin = std::chrono::microseconds(200);
  const Clock* clock = nullptr;  // null: the monotonic clock; must outlive the batcher
  // Inline runs: when flush() finds an idle worker and the next batch's
  // rows times the model's measured compute per row fit in this budget, the
  // calling thread runs the batch with that worker's Workspace instead of
  // waking it (a wake-up costs tens of µs on a VM; a small model computes
  // in less). The per-row figure is a moving average (1/8) of batch compute
  // / rows, seeded by the model's first batch, which runs on a worker. This
  // bounds how long a flush holds up an I/O loop. 0 turns inline runs off.
  Nanos inline_max_compute = std::chrono::microseconds(50);
};

struct BatcherStats {
  std::uint64_t batches = 0;
  std::uint64_t rows = 0;
  std::uint64_t requests = 0;        // completed, computed or not
  std::uint64_t expired = 0;         // answered deadline_exceeded without computing
  std::uint64_t refused = 0;         // queue full
  std::uint64_t inline_batches = 0;  // run on the submitting thread
  std::size_t queued = 0;
  std::size_t idle_workers = 0;  // parked or spinning, with nothing taken
};

class Batcher {
 public:
  // `metrics` may be null. Starts the workers.
  static Result<std::unique_ptr<Batcher>> create(model::Model model, BatcherOptions options,
                                                 std::shared_ptr<ModelMetrics> metrics);
  ~Batcher();  // shutdown()
  Batcher(const Batcher&) = delete;
  Batcher& operator=(const Batcher&) = delete;

  // On ok the batcher took `request` (now null) and will complete it exactly
  // once. On error `request` is left with the caller and nothing runs:
  // invalid_argument (the request does not fit the model; the message says
  // where, e.g. "inputs[0] 'X': shape [1, 7], expected [N, 4]"),
  // resource_exhausted (queue full), closed (shutting down).
  Status submit(std::unique_ptr<InferenceRequest>& request);

  // submit() in two steps, so a front end can queue every request one read
  // of its sockets produced and then start them together (one batch):
  // enqueue() binds and queues without starting anything (same errors and
  // ownership rule as submit); flush() starts the queued work, inline on
  // the calling thread when the rule above allows, else on a worker.
  Status enqueue(std::unique_ptr<InferenceRequest>& request);
  void flush();

  // The queue is full: a front end may refuse before decoding a body.
  [[nodiscard]] bool saturated() const noexcept;

  // Stops accepting, lets the workers finish everything queued, joins them.
  // Idempotent; not from a worker thread.
  void shutdown();

  [[nodiscard]] BatcherStats stats() const;
  [[nodiscard]] const model::Model& model() const noexcept;
  [[nodiscard]] const BatcherOptions& options() const noexcept;

  struct Impl;

 private:
  explicit Batcher(std::unique_ptr<Impl> impl);
  // Shared: an inline run keeps it alive while a completion it calls may
  // destroy this Batcher.
  std::shared_ptr<Impl> impl_;
};

}  // namespace myelin::serve
