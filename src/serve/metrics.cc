#include "myelin/serve/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace myelin::serve {
namespace {

constexpr double kDurationBounds[] = {
    1e-6,   2e-6,   3e-6,   4e-6,   5e-6, 6e-6,   8e-6, 10e-6, 15e-6, 20e-6, 30e-6, 50e-6, 75e-6,
    100e-6, 150e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1,   0.25,  1.0};
constexpr double kBatchBounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};

void put_number(std::string& out, double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void put_number(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

void put_number(std::string& out, std::int64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

// A label value: backslash, double quote and newline escaped.
void put_label(std::string& out, const std::string& v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void labels(std::string& out, const ModelSeries& s, const char* extra = nullptr) {
  out += "{model=\"";
  put_label(out, s.model);
  out += "\",version=\"";
  put_label(out, s.version);
  out += '"';
  if (extra) {
    out += ',';
    out += extra;
  }
  out += '}';
}

template <typename Get>
void model_family(std::string& out, std::span<const ModelSeries> models, const char* name,
                  const char* type, const char* help, Get get) {
  header(out, name, type, help);
  for (const auto& s : models) {
    out += name;
    labels(out, s);
    out += ' ';
    put_number(out, get(*s.metrics));
    out += '\n';
  }
}

void histogram_family(std::string& out, std::span<const ModelSeries> models, const char* name,
                      const char* help, Histogram ModelMetrics::*member) {
  header(out, name, "histogram", help);
  for (const auto& s : models) {
    const Histogram& h = s.metrics->*member;
    const auto counts = h.counts();
    const auto bounds = h.bounds();
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i <= bounds.size(); ++i) {
      cum += counts[i];
      std::string le = "le=\"";
      if (i < bounds.size()) {
        put_number(le, bounds[i]);
      } else {
        le += "+Inf";
      }
      le += '"';
      out += name;
      out += "_bucket";
      labels(out, s, le.c_str());
      out += ' ';
      put_number(out, cum);
      out += '\n';
    }
    out += name;
    out += "_sum";
    labels(out, s);
    out += ' ';
    put_number(out, h.sum());
    out += '\n';
    out += name;
    out += "_count";
    labels(out, s);
    out += ' ';
    put_number(out, cum);
    out += '\n';
  }
}

void server_value(std::string& out, const char* name, const char* type, const char* help,
                  auto value) {
  header(out, name, type, help);
  out += name;
  out += ' ';
  put_number(out, value);
  out += '\n';
}

}  // namespace

Histogram::Histogram(std::span<const double> bounds) noexcept
    : n_(std::min(bounds.size(), kMaxBuckets)) {
  std::copy_n(bounds.begin(), n_, bounds_.begin());
}

void Histogram::observe(double value) noexcept {
  const double* begin = bounds_.data();
  const std::size_t i =
      static_cast<std::size_t>(std::lower_bound(begin, begin + n_, value) - begin);
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  if (value > 0 && std::isfinite(value)) {
    sum_nano_.fetch_add(static_cast<std::uint64_t>(value * 1e9), std::memory_order_relaxed);
  }
}

std::vector<std::uint64_t> Histogram::counts() const {
  std::vector<std::uint64_t> c(n_ + 1);
  for (std::size_t i = 0; i <= n_; ++i) c[i] = counts_[i].load(std::memory_order_relaxed);
  return c;
}

double Histogram::sum() const noexcept {
  return static_cast<double>(sum_nano_.load(std::memory_order_relaxed)) * 1e-9;
}

std::span<const double> duration_bounds() noexcept { return kDurationBounds; }
std::span<const double> batch_size_bounds() noexcept { return kBatchBounds; }

std::string render_metrics(std::span<const ModelSeries> models, const ServerMetrics& server) {
  std::string out;
  out.reserve(4096 + models.size() * 8192);
  auto load = [](const auto& a) { return a.load(std::memory_order_relaxed); };
  model_family(out, models, "myelin_inference_request_success_total", "counter",
               "Inference requests answered with outputs.",
               [&](const ModelMetrics& m) { return load(m.request_success); });
  model_family(out, models, "myelin_inference_request_failure_total", "counter",
               "Inference requests answered with an error (bad input, timeout, overload).",
               [&](const ModelMetrics& m) { return load(m.request_failure); });
  model_family(out, models, "myelin_inference_count_total", "counter", "Rows (samples) computed.",
               [&](const ModelMetrics& m) { return load(m.inference_count); });
  model_family(out, models, "myelin_inference_exec_count_total", "counter",
               "Batches (model executions) run.",
               [&](const ModelMetrics& m) { return load(m.execution_count); });
  model_family(out, models, "myelin_inference_queue_depth", "gauge",
               "Requests waiting in the batcher's queue.",
               [&](const ModelMetrics& m) { return load(m.queue_depth); });
  model_family(out, models, "myelin_inference_in_flight", "gauge",
               "Requests accepted by the batcher and not answered yet.",
               [&](const ModelMetrics& m) { return load(m.in_flight); });
  histogram_family(out, models, "myelin_inference_queue_duration_seconds",
                   "Time a request waited in the queue before its batch started.",
                   &ModelMetrics::queue_duration);
  histogram_family(out, models, "myelin_inference_compute_duration_seconds",
                   "Time one batch took: gather, predict, scatter.",
                   &ModelMetrics::compute_duration);
  histogram_family(out, models, "myelin_inference_request_duration_seconds",
                   "Time from the last request byte read to the answer handed to the socket.",
                   &ModelMetrics::request_duration);
  histogram_family(out, models, "myelin_inference_response_ready_duration_seconds",
                   "Time from the last request byte read to the answer encoded, before it is "
                   "written to the socket.",
                   &ModelMetrics::ready_duration);
  histogram_family(out, models, "myelin_inference_batch_size", "Rows per batch.",
                   &ModelMetrics::batch_size);
  server_value(out, "myelin_http_open_connections", "gauge", "Open HTTP connections.",
               load(server.open_connections));
  server_value(out, "myelin_http_connections_accepted_total", "counter",
               "HTTP connections accepted.", load(server.accepted_connections));
  server_value(out, "myelin_http_connections_refused_total", "counter",
               "HTTP connections refused over the connection limit.",
               load(server.refused_connections));
  server_value(out, "myelin_http_requests_total", "counter", "HTTP requests answered.",
               load(server.http_requests));
  server_value(out, "myelin_http_error_responses_total", "counter",
               "HTTP requests answered with a 4xx or 5xx status.", load(server.http_errors));
  if (server.tls != nullptr) {
    server_value(out, "myelin_tls_handshakes_total", "counter", "TLS handshakes completed.",
                 load(server.tls->handshakes));
    server_value(out, "myelin_tls_handshake_failures_total", "counter",
                 "TLS connections dropped before their handshake completed (bad or no "
                 "handshake, plain HTTP, early close).",
                 load(server.tls->handshake_failures));
    server_value(out, "myelin_tls_plaintext_requests_total", "counter",
                 "Plain HTTP requests sent to the HTTPS port (answered 400, then closed).",
                 load(server.tls->plaintext_requests));
  }
  return out;
}

}  // namespace myelin::serve
