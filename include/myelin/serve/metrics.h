// Serving metrics, rendered in Prometheus' text exposition format (0.0.4).
//
// ModelMetrics holds the counters and histograms of one model version; the
// batcher and the front ends update them with relaxed atomics (no lock, no
// allocation), and GET /metrics reads them. Duration histograms have fixed
// bounds in seconds, fine at the low end where serving overhead lives (1 µs
// steps up to 6 µs). Everything here is thread-safe; a rendering is not an
// atomic snapshot across series.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/net/tls.h"

namespace myelin::serve {

class Histogram {
 public:
  static constexpr std::size_t kMaxBuckets = 32;
  // `bounds`: strictly increasing upper bounds (the +Inf bucket is implicit).
  explicit Histogram(std::span<const double> bounds) noexcept;

  void observe(double value) noexcept;
  void observe(Nanos d) noexcept { observe(static_cast<double>(d.count()) * 1e-9); }

  [[nodiscard]] std::span<const double> bounds() const noexcept { return {bounds_.data(), n_}; }
  // Per bucket (not cumulative); the last is +Inf.
  [[nodiscard]] std::vector<std::uint64_t> counts() const;
  [[nodiscard]] double sum() const noexcept;

 private:
  std::array<double, kMaxBuckets> bounds_{};
  std::size_t n_ = 0;
  std::array<std::atomic<std::uint64_t>, kMaxBuckets + 1> counts_{};
  std::atomic<std::uint64_t> sum_nano_{0};  // sum * 1e9, so integral atomics suffice
};

// Bounds, in seconds, of the duration histograms; and of batch sizes, in rows.
std::span<const double> duration_bounds() noexcept;
std::span<const double> batch_size_bounds() noexcept;

struct ModelMetrics {
  ModelMetrics()
      : queue_duration(duration_bounds()),
        compute_duration(duration_bounds()),
        request_duration(duration_bounds()),
        ready_duration(duration_bounds()),
        batch_size(batch_size_bounds()) {}

  std::atomic<std::uint64_t> request_success{0};
  std::atomic<std::uint64_t> request_failure{0};
  std::atomic<std::uint64_t> inference_count{0};  // rows computed
  std::atomic<std::uint64_t> execution_count{0};  // batches run
  std::atomic<std::int64_t> queue_depth{0};       // requests waiting in the batcher
  std::atomic<std::int64_t> in_flight{0};         // accepted by the batcher, not yet answered
  Histogram queue_duration;                       // per request: enqueued -> its batch started
  Histogram compute_duration;                     // per batch: gather + predict + scatter
  Histogram request_duration;  // per request: whole request read -> answer written
  // Per request: whole request read -> answer encoded, before the write. The
  // difference to request_duration is the kernel's send (on loopback it runs
  // the client's receive path too), so the two split server work from it.
  Histogram ready_duration;
  Histogram batch_size;  // rows per batch
};

struct ServerMetrics {
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::uint64_t> accepted_connections{0};
  std::atomic<std::uint64_t> refused_connections{0};  // over the connection limit
  std::atomic<std::uint64_t> http_requests{0};
  std::atomic<std::uint64_t> http_errors{0};  // answered with a 4xx or 5xx status
  const net::TlsStats* tls = nullptr;         // HTTPS only: the TLS layer's counters
};

struct ModelSeries {
  std::string model;
  std::string version;
  const ModelMetrics* metrics = nullptr;
};

// The whole exposition: every family once, its series grouped under it.
std::string render_metrics(std::span<const ModelSeries> models, const ServerMetrics& server);

}  // namespace myelin::serve
