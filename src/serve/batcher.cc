#include "myelin/serve/batcher.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "myelin/loop/event_loop.h"
#include "src/serve/batch_queue.h"
#include "src/serve/tensor_check.h"

namespace myelin::serve {
namespace {

constexpr std::size_t kAlign = 64;

struct FreeAligned {
  void operator()(std::byte* p) const noexcept { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<std::byte[], FreeAligned>;

AlignedBuffer aligned_buffer(std::size_t bytes) {
  const std::size_t size = std::max<std::size_t>(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
  return AlignedBuffer(static_cast<std::byte*>(std::aligned_alloc(kAlign, size)));
}

std::uint64_t elements(const Shape& s) { return s.element_count().value_or(0); }

// Shape `dims` with the first dimension replaced by `rows`.
Shape with_rows(const Shape& s, std::size_t rows) {
  std::array<std::int64_t, kMaxRank> d{};
  for (std::size_t i = 0; i < s.rank(); ++i) d[i] = s[i];
  if (s.rank() > 0) d[0] = static_cast<std::int64_t>(rows);
  return Shape::from(std::span<const std::int64_t>(d.data(), s.rank())).value();
}

// Copies `src` (dtype `from`) into `dst` as dtype `to`; only f64 -> f32
// converts, every other pair was checked equal at submit.
void copy_converting(std::byte* dst, DType to, std::span<const std::byte> src, DType from) {
  if (to == from) {
    std::memcpy(dst, src.data(), src.size());
    return;
  }
  const std::size_t n = src.size() / sizeof(double);
  auto* out = reinterpret_cast<float*>(dst);
  for (std::size_t i = 0; i < n; ++i) {
    double v;
    std::memcpy(&v, src.data() + i * sizeof(double), sizeof(double));
    out[i] = static_cast<float>(v);
  }
}

}  // namespace

struct Batcher::Impl {
  struct Worker {
    Impl* impl = nullptr;
    std::unique_ptr<EventLoop> loop;
    model::Workspace workspace;
    std::vector<AlignedBuffer> in_buffers, out_buffers;
    std::vector<TensorView> in_views;
    std::vector<MutableTensorView> out_views;
    std::vector<std::unique_ptr<InferenceRequest>> batch, expired;

    void drain();
    // Takes one batch from the queue (under the lock); false when it was empty.
    bool take_batch();
    // take_batch() when the caller holds the lock.
    void take_locked();
    // Answers the expired requests and runs the batch take_batch() took.
    void run_taken();
    void run_batch(MonoTime start);
    void finish(std::unique_ptr<InferenceRequest>& r);
  };

  model::Model model;
  BatcherOptions options;
  std::shared_ptr<ModelMetrics> metrics;
  MonotonicClock monotonic;
  const Clock* clock = nullptr;
  bool batched = true;  // every input has a batch dimension
  std::size_t max_rows = 1;
  std::vector<std::size_t> in_row_bytes, out_row_bytes;  // per row, in the compute dtype

  std::mutex mu;
  detail::BatchQueue queue;
  std::vector<Worker*> idle;
  bool closed = false;
  std::vector<std::unique_ptr<Worker>> workers;

  std::atomic<std::uint64_t> n_batches{0}, n_rows{0}, n_requests{0}, n_expired{0}, n_refused{0},
      n_inline{0};
  std::atomic<std::size_t> queued{0};  // queue.size(), readable without the lock
  // The model's compute per row, measured: an exponential moving average
  // (1/8) of batch compute / rows, seeded by the first batch. -1 until then.
  std::atomic<std::int64_t> row_cost_ns{-1};

  [[nodiscard]] bool on_worker_thread() const {
    for (const auto& w : workers) {
      if (w->loop->in_loop_thread()) return true;
    }
    return false;
  }

  // The most rows an inline run may compute: as many as the measured
  // per-row compute fits in `inline_max_compute`; 0 when inline runs are
  // off or the model has not been measured yet (its first batch runs on a
  // worker).
  [[nodiscard]] std::size_t inline_rows() const {
    const std::int64_t limit = options.inline_max_compute.count();
    const std::int64_t per_row = row_cost_ns.load(std::memory_order_relaxed);
    if (limit <= 0 || per_row < 0) return 0;
    if (per_row == 0) return max_rows;
    return std::min<std::size_t>(max_rows, static_cast<std::size_t>(limit / per_row));
  }

  // Hands `w` its queue work on its own thread.
  static void wake(Worker* w) {
    if (!w->loop->submit([w] { w->drain(); }).ok()) w->drain();  // stopping: finish here
  }

  Impl(model::Model m, BatcherOptions o, std::shared_ptr<ModelMetrics> mm)
      : model(std::move(m)), options(o), metrics(std::move(mm)), queue(o.max_queue) {
    clock = options.clock ? options.clock : &monotonic;
  }

  void shutdown();
};

void Batcher::Impl::Worker::drain() {
  while (take_batch()) run_taken();
}

bool Batcher::Impl::Worker::take_batch() {
  std::lock_guard lock(impl->mu);
  if (impl->queue.empty()) {
    impl->idle.push_back(this);
    return false;
  }
  take_locked();
  return true;
}

void Batcher::Impl::Worker::take_locked() {
  impl->queue.take(impl->clock->now(), impl->max_rows, impl->options.max_delay, batch, expired);
  impl->queued.store(impl->queue.size(), std::memory_order_relaxed);
  if (impl->metrics) {
    impl->metrics->queue_depth.store(static_cast<std::int64_t>(impl->queue.size()),
                                     std::memory_order_relaxed);
  }
}

void Batcher::Impl::Worker::run_taken() {
  const MonoTime start = impl->clock->now();
  for (auto& r : expired) {
    r->queue_time = start - r->enqueued;
    r->status = deadline_exceeded("request timed out after waiting " +
                                  std::to_string(r->queue_time.count() / 1000) +
                                  " us in the queue of model '" + r->model + "'");
    impl->n_expired.fetch_add(1, std::memory_order_relaxed);
    finish(r);
  }
  expired.clear();
  if (!batch.empty()) run_batch(start);
  batch.clear();
}

void Batcher::Impl::Worker::run_batch(MonoTime start) {
  const auto in_infos = impl->model.inputs();
  const auto out_infos = impl->model.outputs();
  std::size_t rows = 0;
  for (const auto& r : batch) rows += r->rows;

  Status status;
  if (impl->batched) {
    for (std::size_t j = 0; j < in_infos.size(); ++j) {
      std::byte* dst = in_buffers[j].get();
      const DType to = in_infos[j].dtype;
      for (const auto& r : batch) {
        const InputTensor& in = r->inputs[j];
        copy_converting(dst, to, in.data, in.dtype);
        dst += r->rows * impl->in_row_bytes[j];
      }
      in_views[j] = {to,
                     with_rows(batch.front()->inputs[j].shape, rows),
                     {in_buffers[j].get(), rows * impl->in_row_bytes[j]}};
    }
  } else {  // one request, shapes as given
    const auto& r = batch.front();
    for (std::size_t j = 0; j < in_infos.size(); ++j) {
      const InputTensor& in = r->inputs[j];
      copy_converting(in_buffers[j].get(), in_infos[j].dtype, in.data, in.dtype);
      in_views[j] = {in_infos[j].dtype,
                     in.shape,
                     {in_buffers[j].get(), elements(in.shape) * dtype_size(in_infos[j].dtype)}};
    }
  }
  for (std::size_t j = 0; j < out_infos.size(); ++j) {
    const Shape shape = impl->model.output_shape(j, rows).value();
    out_views[j] = {out_infos[j].dtype,
                    shape,
                    {out_buffers[j].get(), elements(shape) * dtype_size(out_infos[j].dtype)}};
  }
  status = impl->model.predict(in_views, out_views, workspace);

  // Scatter: each request's rows of each output.
  std::size_t row = 0;
  for (auto& r : batch) {
    for (std::size_t j = 0; j < out_infos.size() && status.ok(); ++j) {
      OutputTensor& o = r->outputs[j];
      if (impl->batched && out_infos[j].batched) {
        std::memcpy(o.bytes.data(), out_views[j].data.data() + row * impl->out_row_bytes[j],
                    o.bytes.size());
      } else {
        std::memcpy(o.bytes.data(), out_views[j].data.data(), o.bytes.size());
      }
    }
    row += r->rows;
  }
  const MonoTime end = impl->clock->now();
  const Nanos compute = end - start;
  // Per-row compute, a moving average (1/8) seeded by the first batch:
  // decides how many rows an inline run may take (Impl::inline_rows). Two
  // workers may race here; either update is a fair sample.
  const std::int64_t sample =
      compute.count() / static_cast<std::int64_t>(std::max<std::size_t>(rows, 1));
  const std::int64_t est = impl->row_cost_ns.load(std::memory_order_relaxed);
  impl->row_cost_ns.store(est < 0 ? sample : est + (sample - est) / 8, std::memory_order_relaxed);
  impl->n_batches.fetch_add(1, std::memory_order_relaxed);
  impl->n_rows.fetch_add(rows, std::memory_order_relaxed);
  if (ModelMetrics* m = impl->metrics.get()) {
    m->execution_count.fetch_add(1, std::memory_order_relaxed);
    m->inference_count.fetch_add(rows, std::memory_order_relaxed);
    m->compute_duration.observe(compute);
    m->batch_size.observe(static_cast<double>(rows));
  }
  for (auto& r : batch) {
    r->queue_time = start - r->enqueued;
    r->compute_time = compute;
    r->batch_size = rows;
    if (!status.ok()) r->status = status;
    if (impl->metrics) impl->metrics->queue_duration.observe(r->queue_time);
    finish(r);
  }
}

void Batcher::Impl::Worker::finish(std::unique_ptr<InferenceRequest>& r) {
  impl->n_requests.fetch_add(1, std::memory_order_relaxed);
  if (impl->metrics) impl->metrics->in_flight.fetch_sub(1, std::memory_order_relaxed);
  Responder* responder = r->responder.get();
  if (responder == nullptr) {
    r.reset();
    return;
  }
  // The request owns the responder; complete() takes both.
  responder->complete(std::move(r));
}

void Batcher::Impl::shutdown() {
  {
    std::lock_guard lock(mu);
    if (closed) return;
    closed = true;
  }
  // A non-empty queue always has a worker draining it (submit wakes an idle
  // one; a worker goes idle only on an empty queue), so stopping each loop
  // after its queued tasks finishes every request.
  for (auto& w : workers) (void)w->loop->shutdown();
}

Batcher::Batcher(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Batcher::~Batcher() {
  if (!impl_) return;
  bool on_worker = false;
  for (const auto& w : impl_->workers) on_worker = on_worker || w->loop->in_loop_thread();
  if (!on_worker) {
    impl_->shutdown();
    return;
  }
  // Destroyed from a completion on one of our own workers: that worker is
  // still inside drain(), using the Impl. A thread of its own stops the
  // workers (waiting for that drain to return) and frees the Impl after.
  std::thread([impl = std::move(impl_)] { impl->shutdown(); }).detach();
}

Result<std::unique_ptr<Batcher>> Batcher::create(model::Model model, BatcherOptions options,
                                                 std::shared_ptr<ModelMetrics> metrics) {
  if (options.max_batch < 1) return invalid_argument("max batch size must be >= 1");
  if (options.max_queue < 1) return invalid_argument("max queue size must be >= 1");
  if (options.workers < 1) return invalid_argument("workers must be >= 1");
  if (options.max_delay.count() < 0) return invalid_argument("max queue delay must be >= 0");
  auto impl = std::make_unique<Impl>(std::move(model), options, std::move(metrics));
  Impl& im = *impl;
  const auto in_infos = im.model.inputs();
  const auto out_infos = im.model.outputs();
  for (const auto& info : in_infos) im.batched = im.batched && info.batched;
  im.max_rows = im.batched ? options.max_batch : 1;
  const std::size_t ws_batch = im.batched ? options.max_batch : 1;

  // Per-row bytes in the compute dtype (batched), or whole-tensor bytes.
  for (const auto& info : in_infos) {
    std::size_t row = dtype_size(info.dtype);
    for (std::size_t d = info.batched ? 1 : 0; d < info.dims.size(); ++d) {
      row *= static_cast<std::size_t>(std::max<std::int64_t>(info.dims[d], 1));
    }
    im.in_row_bytes.push_back(row);
  }
  for (std::size_t j = 0; j < out_infos.size(); ++j) {
    const Shape one = im.model.output_shape(j, 1).value();
    im.out_row_bytes.push_back(elements(one) * dtype_size(out_infos[j].dtype));
  }
  for (std::size_t w = 0; w < options.workers; ++w) {
    auto worker = std::make_unique<Impl::Worker>();
    worker->impl = &im;
    MYELIN_ASSIGN_OR_RETURN(worker->workspace, im.model.make_workspace(ws_batch));
    for (std::size_t j = 0; j < in_infos.size(); ++j) {
      worker->in_buffers.push_back(aligned_buffer(im.in_row_bytes[j] * ws_batch));
    }
    for (std::size_t j = 0; j < out_infos.size(); ++j) {
      const Shape full = im.model.output_shape(j, ws_batch).value();
      worker->out_buffers.push_back(
          aligned_buffer(elements(full) * dtype_size(out_infos[j].dtype)));
    }
    worker->in_views.resize(in_infos.size());
    worker->out_views.resize(out_infos.size());
    worker->batch.reserve(options.max_queue);
    worker->expired.reserve(options.max_queue);
    EventLoopOptions lo;
    lo.spin_before_sleep = options.worker_spin;
    MYELIN_ASSIGN_OR_RETURN(worker->loop, EventLoop::create(lo));
    im.idle.push_back(worker.get());
    im.workers.push_back(std::move(worker));
  }
  for (auto& w : im.workers) MYELIN_RETURN_IF_ERROR(w->loop->start());
  return std::unique_ptr<Batcher>(new Batcher(std::move(impl)));
}

Status Batcher::enqueue(std::unique_ptr<InferenceRequest>& request) {
  Impl& im = *impl_;
  MYELIN_RETURN_IF_ERROR(
      detail::bind_request(im.model, im.batched ? im.options.max_batch : 1, *request));
  std::lock_guard lock(im.mu);
  if (im.closed) return closed("model '" + request->model + "' is shutting down");
  if (!im.queue.push(request, im.clock->now())) {
    im.n_refused.fetch_add(1, std::memory_order_relaxed);
    return resource_exhausted("model '" + request->model + "': queue full (" +
                              std::to_string(im.queue.capacity()) +
                              " requests waiting); retry later");
  }
  im.queued.store(im.queue.size(), std::memory_order_relaxed);
  if (im.metrics) {
    im.metrics->in_flight.fetch_add(1, std::memory_order_relaxed);
    im.metrics->queue_depth.store(static_cast<std::int64_t>(im.queue.size()),
                                  std::memory_order_relaxed);
  }
  return {};
}

void Batcher::flush() {
  // An inline run calls completions on this thread, and one of them may
  // destroy this Batcher: the Impl lives on until this call returns.
  const std::shared_ptr<Impl> keep = impl_;
  Impl& im = *keep;
  Impl::Worker* w = nullptr;
  bool here = false;
  {
    std::lock_guard lock(im.mu);
    if (im.queue.empty() || im.idle.empty()) return;  // a busy worker will get to it
    w = im.idle.back();
    im.idle.pop_back();
    // Inline: the claimed worker's slot (Workspace, buffers) runs the next
    // batch on this thread (no hand-off, no wake-up) when the model's
    // measured compute for it fits the budget. A batch over it goes whole
    // to the worker: splitting it would cost a second batch and a wake-up.
    // A worker thread never runs inline (it has its own slot).
    const std::size_t budget_rows = im.inline_rows();
    if (budget_rows > 0 &&
        im.queue.next_batch_rows(im.max_rows, im.options.max_delay) <= budget_rows &&
        !im.on_worker_thread()) {
      w->take_locked();
      here = true;
    }
  }
  if (here) {
    im.n_inline.fetch_add(1, std::memory_order_relaxed);
    w->run_taken();
    std::lock_guard lock(im.mu);
    if (im.queue.empty()) {
      im.idle.push_back(w);
      return;
    }
  }
  Impl::wake(w);  // whatever is queued now goes to the worker's own thread
}

Status Batcher::submit(std::unique_ptr<InferenceRequest>& request) {
  MYELIN_RETURN_IF_ERROR(enqueue(request));
  flush();  // may destroy *this (see flush): touch nothing after it
  return {};
}

bool Batcher::saturated() const noexcept {
  return impl_->queued.load(std::memory_order_relaxed) >= impl_->options.max_queue;
}

void Batcher::shutdown() { impl_->shutdown(); }

BatcherStats Batcher::stats() const {
  BatcherStats s;
  s.batches = impl_->n_batches.load(std::memory_order_relaxed);
  s.rows = impl_->n_rows.load(std::memory_order_relaxed);
  s.requests = impl_->n_requests.load(std::memory_order_relaxed);
  s.expired = impl_->n_expired.load(std::memory_order_relaxed);
  s.refused = impl_->n_refused.load(std::memory_order_relaxed);
  s.inline_batches = impl_->n_inline.load(std::memory_order_relaxed);
  std::lock_guard lock(impl_->mu);
  s.queued = impl_->queue.size();
  s.idle_workers = impl_->idle.size();
  return s;
}

const model::Model& Batcher::model() const noexcept { return impl_->model; }
const BatcherOptions& Batcher::options() const noexcept { return impl_->options; }

}  // namespace myelin::serve
