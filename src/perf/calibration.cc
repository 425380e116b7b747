#include "myelin/perf/calibration.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iomanip>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace myelin::perf {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Reads fields of one JSON object, naming the path in every error.
class Fields {
 public:
  Fields(std::string_view origin, std::string path, const nlohmann::json& obj)
      : origin_(origin), path_(std::move(path)), obj_(obj) {}

  Status error(const std::string& field, const std::string& why) const {
    return invalid_argument(std::string(origin_) + ": " + where(field) + ": " + why);
  }
  [[nodiscard]] std::string where(const std::string& field) const {
    return path_.empty() ? field : path_ + "." + field;
  }

  Result<const nlohmann::json*> member(const std::string& field) const {
    const auto it = obj_.find(field);
    if (it == obj_.end()) return error(field, "missing");
    return &*it;
  }
  Result<double> number(const std::string& field, double min) const {
    MYELIN_ASSIGN_OR_RETURN(const nlohmann::json* j, member(field));
    if (!j->is_number())
      return error(field, "expected a number, got " + std::string(j->type_name()));
    const double v = j->get<double>();
    if (!std::isfinite(v) || v < min) {
      std::ostringstream s;
      s << "expected a finite number >= " << min << ", got " << v;
      return error(field, s.str());
    }
    return v;
  }
  Result<int> integer(const std::string& field, int min) const {
    MYELIN_ASSIGN_OR_RETURN(const nlohmann::json* j, member(field));
    if (!j->is_number_integer())
      return error(field, "expected an integer, got " + std::string(j->type_name()));
    const auto v = j->get<std::int64_t>();
    if (v < min || v > 1 << 20)
      return error(field, "expected an integer in [" + std::to_string(min) + ", 1048576], got " +
                              std::to_string(v));
    return static_cast<int>(v);
  }

 private:
  std::string_view origin_;
  std::string path_;
  const nlohmann::json& obj_;
};

// The mean batch of a worker that takes everything queued whenever it goes
// idle: the requests that arrive during one batch's service,
// b = lambda * T(b), solved for b and clamped to [1, max_batch].
double open_loop_batch(const BatchCostFit& f, double per_worker_per_us, double max_batch) {
  const double denom = 1 - per_worker_per_us * f.per_row_us;
  if (denom <= 0) return max_batch;
  return std::clamp(per_worker_per_us * f.fixed_us / denom, 1.0, max_batch);
}

}  // namespace

Result<BatchCostFit> fit_batch_cost(std::span<const BatchCostSample> samples) {
  std::set<double> sizes;
  for (std::size_t i = 0; i < samples.size(); ++i) {
    const auto& s = samples[i];
    if (!std::isfinite(s.n) || !std::isfinite(s.us) || s.n < 1 || s.us < 0) {
      std::ostringstream m;
      m << "batch cost sample " << i << ": expected batch >= 1 and time >= 0, got batch " << s.n
        << ", " << s.us << " us";
      return invalid_argument(m.str());
    }
    sizes.insert(s.n);
  }
  if (sizes.size() < 2)
    return invalid_argument("batch cost fit: needs samples at two or more batch sizes, got " +
                            std::to_string(sizes.size()));
  const double k = static_cast<double>(samples.size());
  double mean_n = 0, mean_t = 0;
  for (const auto& s : samples) {
    mean_n += s.n / k;
    mean_t += s.us / k;
  }
  double sxx = 0, sxy = 0, syy = 0;
  for (const auto& s : samples) {
    sxx += (s.n - mean_n) * (s.n - mean_n);
    sxy += (s.n - mean_n) * (s.us - mean_t);
    syy += (s.us - mean_t) * (s.us - mean_t);
  }
  BatchCostFit f;
  f.per_row_us = sxy / sxx;
  f.fixed_us = mean_t - f.per_row_us * mean_n;
  double sse = 0;
  for (const auto& s : samples) sse += (s.us - f.at(s.n)) * (s.us - f.at(s.n));
  f.r2 = syy > 0 ? 1 - sse / syy : 1;
  return f;
}

double md1_queue_wait_us(double arrival_per_us, double service_us) noexcept {
  if (arrival_per_us <= 0 || service_us <= 0) return 0;
  const double rho = arrival_per_us * service_us;
  if (rho >= 1) return kInf;
  return rho * service_us / (2 * (1 - rho));
}

Result<ServeCalibration> parse_calibration(std::string_view json_text, std::string_view origin,
                                           std::string_view model) {
  nlohmann::json doc = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return parse_error(std::string(origin) + ": not valid JSON");
  if (!doc.is_object()) return invalid_argument(std::string(origin) + ": expected a JSON object");
  std::string path = "calibration";
  const nlohmann::json* cal = nullptr;
  if (auto d = doc.find("data"); d != doc.end() && d->is_object() && d->contains("calibration")) {
    cal = &(*d)["calibration"];
    path = "data.calibration";
  } else if (doc.contains("calibration")) {
    cal = &doc["calibration"];
  } else {
    return invalid_argument(std::string(origin) +
                            ": data.calibration: missing (run `myelin bench serve` to write it)");
  }
  if (!cal->is_object())
    return invalid_argument(std::string(origin) + ": " + path + ": expected an object");
  const Fields top(origin, path, *cal);
  ServeCalibration c;
  c.origin = std::string(origin);
  MYELIN_ASSIGN_OR_RETURN(c.cores, top.integer("cores", 1));
  MYELIN_ASSIGN_OR_RETURN(c.workers, top.integer("workers", 1));
  MYELIN_ASSIGN_OR_RETURN(const nlohmann::json* models, top.member("models"));
  if (!models->is_object() || models->empty())
    return top.error("models", "expected a non-empty object of model names");
  if (model.empty()) {
    if (models->size() != 1) {
      std::string names;
      for (const auto& [name, v] : models->items()) names += (names.empty() ? "" : ", ") + name;
      return top.error("models", "holds several models (" + names + "): choose one with --model");
    }
    c.model = models->begin().key();
  } else {
    c.model = std::string(model);
    if (!models->contains(c.model)) {
      std::string names;
      for (const auto& [name, v] : models->items()) names += (names.empty() ? "" : ", ") + name;
      return top.error("models." + c.model, "missing (the file has: " + names + ")");
    }
  }
  const std::string mpath = path + ".models." + c.model;
  const nlohmann::json& m = (*models)[c.model];
  if (!m.is_object())
    return invalid_argument(std::string(origin) + ": " + mpath + ": expected an object");
  const Fields mf(origin, mpath, m);
  MYELIN_ASSIGN_OR_RETURN(c.frontend_us, mf.number("frontend_us", 0));
  MYELIN_ASSIGN_OR_RETURN(c.frontend_cpu_us, mf.number("frontend_cpu_us", 0));
  MYELIN_ASSIGN_OR_RETURN(c.client_cpu_us, mf.number("client_cpu_us", 0));
  MYELIN_ASSIGN_OR_RETURN(const nlohmann::json* bc, mf.member("batch_compute"));
  if (!bc->is_array()) return mf.error("batch_compute", "expected an array");
  for (std::size_t i = 0; i < bc->size(); ++i) {
    const auto& e = (*bc)[i];
    const std::string epath = mpath + ".batch_compute[" + std::to_string(i) + "]";
    if (!e.is_object())
      return invalid_argument(std::string(origin) + ": " + epath + ": expected an object");
    const Fields ef(origin, epath, e);
    BatchCostSample s;
    MYELIN_ASSIGN_OR_RETURN(s.n, ef.number("batch", 1));
    MYELIN_ASSIGN_OR_RETURN(s.us, ef.number("us", 0));
    c.batch_compute.push_back(s);
  }
  auto fit = fit_batch_cost(c.batch_compute);
  if (!fit) return fit.error().with_context(std::string(origin) + ": " + mpath + ".batch_compute");
  // Every prediction divides by T(n): it must be positive for every n >= 1.
  if (!(fit->per_row_us >= 0) || !(fit->at(1) > 0)) {
    std::ostringstream msg;
    msg << origin << ": " << mpath << ".batch_compute: the fitted cost T(n) = " << fit->fixed_us
        << " + " << fit->per_row_us << " n us is not positive for every batch n >= 1 "
        << "(the times do not grow with the batch size)";
    return invalid_argument(msg.str());
  }
  c.fit = *fit;
  return c;
}

Result<ServeCalibration> load_calibration(const std::string& path, std::string_view model) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found(path + ": cannot open calibration file (run `myelin bench serve`)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error(path + ": cannot read calibration file");
  return parse_calibration(text.str(), path, model);
}

SaturationPrediction predict_saturation(const ServeCalibration& c, BatcherSetting s,
                                        double connections, bool include_client) {
  SaturationPrediction p;
  p.setting = s;
  p.include_client = include_client;
  const double workers = std::max(1, c.workers);
  const double max_batch = static_cast<double>(std::max<std::uint64_t>(1, s.max_batch));
  // Each worker holds a batch in service while the other requests queue, so
  // a batch takes at most the share connections / (workers + 1).
  p.batch = std::clamp(connections / (workers + 1), 1.0, max_batch);
  const double t = c.fit.at(p.batch);
  const double cpu_per_request =
      c.frontend_cpu_us + t / p.batch + (include_client ? c.client_cpu_us : 0);
  const double cpu_rate = cpu_per_request > 0 ? c.cores * 1e6 / cpu_per_request : kInf;
  const double worker_rate = t > 0 ? workers * 1e6 * p.batch / t : kInf;
  p.cpu_bound = cpu_rate <= worker_rate;
  p.throughput = std::min(cpu_rate, worker_rate);
  p.p50_us = p.throughput > 0 ? connections / p.throughput * 1e6 : kInf;
  return p;
}

WaitPrediction predict_wait(const ServeCalibration& c, BatcherSetting s, double offered) {
  WaitPrediction w;
  w.setting = s;
  w.offered = offered;
  const double workers = std::max(1, c.workers);
  const double max_batch = static_cast<double>(std::max<std::uint64_t>(1, s.max_batch));
  const double per_worker = std::max(0.0, offered) / 1e6 / workers;  // requests per µs
  w.batch = open_loop_batch(c.fit, per_worker, max_batch);
  w.service_us = c.fit.at(w.batch);
  w.utilisation = per_worker * w.service_us / w.batch;
  w.keeps_up = w.utilisation < 1 || (w.batch < max_batch && max_batch > 1);
  if (max_batch <= 1 || w.batch >= max_batch) {
    // Every batch is full (or one row): requests queue behind whole
    // batches, an M/D/1 queue of batches arriving at per_worker / batch.
    w.queue_us = md1_queue_wait_us(per_worker / w.batch, w.service_us);
  } else {
    // The next batch takes everything queued, so a request waits for the
    // batch in progress only: its mean residual T(b)/2, met with
    // probability min(1, utilisation).
    w.queue_us = std::min(1.0, w.utilisation) * w.service_us / 2;
  }
  w.keeps_up = w.keeps_up && std::isfinite(w.queue_us);
  w.wait_us = w.keeps_up ? c.frontend_us + w.queue_us + w.service_us : kInf;
  return w;
}

Result<Recommendation> recommend(const ServeCalibration& c,
                                 std::span<const BatcherSetting> candidates, double budget_us,
                                 std::optional<double> offered) {
  if (candidates.empty()) return invalid_argument("recommend: no candidate batcher settings");
  if (!(budget_us > 0)) return invalid_argument("--latency-budget-us: must be > 0");
  // Ascending, so that a tie goes to the smaller batch (and delay).
  std::vector<BatcherSetting> sorted(candidates.begin(), candidates.end());
  std::sort(sorted.begin(), sorted.end(), [](const BatcherSetting& a, const BatcherSetting& b) {
    return a.max_batch != b.max_batch ? a.max_batch < b.max_batch : a.max_delay_us < b.max_delay_us;
  });
  std::optional<Recommendation> best;
  double lowest_wait = kInf;
  for (const BatcherSetting& s : sorted) {
    // Capacity with full batches: enough clients to fill every worker's batch.
    const double full = static_cast<double>(std::max(1, c.workers) + 1) *
                        static_cast<double>(std::max<std::uint64_t>(1, s.max_batch));
    const SaturationPrediction sat = predict_saturation(c, s, full, /*include_client=*/false);
    const double load = offered.value_or(0.8 * sat.throughput);
    const WaitPrediction w = predict_wait(c, s, load);
    lowest_wait = std::min(lowest_wait, w.wait_us);
    if (!(w.wait_us <= budget_us)) continue;
    if (best && sat.throughput <= best->saturation.throughput) continue;
    best = Recommendation{s, w, sat, ""};
  }
  std::ostringstream why;
  why << std::fixed << std::setprecision(1);
  if (!best) {
    why << c.model << ": no batcher setting keeps the predicted wait within " << budget_us
        << " us (smallest predicted: " << lowest_wait << " us)";
    return failed_precondition(why.str());
  }
  why << c.model << ": max batch " << best->setting.max_batch << " (delay "
      << best->setting.max_delay_us << " us) has the highest predicted capacity, "
      << std::setprecision(0) << best->saturation.throughput << " req/s, among settings whose "
      << "predicted wait at " << best->wait.offered << std::setprecision(1) << " req/s is within "
      << budget_us << " us (" << best->wait.wait_us << " us; T(n) = " << c.fit.fixed_us << " + "
      << c.fit.per_row_us << " n us, from " << c.origin << ")";
  best->why = why.str();
  return *best;
}

}  // namespace myelin::perf
