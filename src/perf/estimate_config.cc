#include "myelin/perf/estimate_config.h"

#include <toml++/toml.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <variant>

namespace myelin::perf {
namespace {

constexpr const char* kCalibrationSection = "calibration";

// A config value reduced to what the estimator needs, whatever the syntax.
using Value = std::variant<std::monostate /*null*/, bool, double, std::string>;

std::string type_name(const Value& v) {
  switch (v.index()) {
    case 0:
      return "null";
    case 1:
      return "a boolean";
    case 2:
      return "a number";
    default:
      return "a string";
  }
}

class Applier {
 public:
  Applier(std::string_view origin, EstimatorParams& p) : origin_(origin), p_(p) {}

  Status apply(const std::string& key, const Value& v) {
    const auto it = setters().find(key);
    if (it == setters().end()) return error(key, "unknown key");
    return it->second(*this, key, v);
  }

 private:
  using Setter = std::function<Status(Applier&, const std::string&, const Value&)>;

  Status error(const std::string& key, const std::string& why) const {
    return invalid_argument(std::string(origin_) + ": '" + key + "': " + why);
  }

  Result<double> number(const std::string& key, const Value& v) const {
    if (const double* d = std::get_if<double>(&v)) return *d;
    return error(key, "expected a number, got " + type_name(v));
  }

  Result<std::optional<double>> optional_number(const std::string& key, const Value& v) const {
    if (std::holds_alternative<std::monostate>(v)) return std::optional<double>();
    if (const auto* s = std::get_if<std::string>(&v); s && *s == "none")
      return std::optional<double>();
    if (const double* d = std::get_if<double>(&v)) return std::optional<double>(*d);
    return error(key, "expected a number or \"none\", got " + type_name(v));
  }

  Result<std::uint64_t> integer(const std::string& key, const Value& v, double max) const {
    MYELIN_ASSIGN_OR_RETURN(const double d, number(key, v));
    if (!(d >= 0) || d > max || std::floor(d) != d) {
      return error(key, "expected a whole number in [0, " +
                            std::to_string(static_cast<std::uint64_t>(max)) + "]");
    }
    return static_cast<std::uint64_t>(d);
  }

  Result<bool> boolean(const std::string& key, const Value& v) const {
    if (const bool* b = std::get_if<bool>(&v)) return *b;
    return error(key, "expected true or false, got " + type_name(v));
  }

  static Setter set_double(double EstimatorParams::*field) {
    return [field](Applier& a, const std::string& k, const Value& v) -> Status {
      MYELIN_ASSIGN_OR_RETURN(a.p_.*field, a.number(k, v));
      return {};
    };
  }
  static Setter set_optional(std::optional<double> EstimatorParams::*field) {
    return [field](Applier& a, const std::string& k, const Value& v) -> Status {
      MYELIN_ASSIGN_OR_RETURN(a.p_.*field, a.optional_number(k, v));
      return {};
    };
  }
  static Setter set_batch(std::uint64_t EstimatorParams::*field) {
    return [field](Applier& a, const std::string& k, const Value& v) -> Status {
      MYELIN_ASSIGN_OR_RETURN(a.p_.*field, a.integer(k, v, static_cast<double>(kMaxBatch)));
      return {};
    };
  }
  static Setter set_bool(bool EstimatorParams::*field) {
    return [field](Applier& a, const std::string& k, const Value& v) -> Status {
      MYELIN_ASSIGN_OR_RETURN(a.p_.*field, a.boolean(k, v));
      return {};
    };
  }

  static const std::map<std::string, Setter>& setters() {
    static const std::map<std::string, Setter> table = {
        {"cores",
         [](Applier& a, const std::string& k, const Value& v) -> Status {
           MYELIN_ASSIGN_OR_RETURN(const std::uint64_t c, a.integer(k, v, 1 << 20));
           a.p_.cores = static_cast<int>(c);
           return {};
         }},
        {"parallel-fraction", set_double(&EstimatorParams::parallel_fraction)},
        {"t-control-us", set_double(&EstimatorParams::t_control_us)},
        {"t-bridge-us", set_double(&EstimatorParams::t_bridge_us)},
        {"t-persist-us", set_double(&EstimatorParams::t_persist_us)},
        {"t-data-us", set_double(&EstimatorParams::t_data_us)},
        {"io-cap", set_optional(&EstimatorParams::io_cap)},
        {"nic-cap", set_optional(&EstimatorParams::nic_cap)},
        {"app-cap", set_optional(&EstimatorParams::app_cap)},
        {"latency-budget-us", set_double(&EstimatorParams::latency_budget_us)},
        {"target-ops", set_optional(&EstimatorParams::target_ops)},
        {"wait-budget-us", set_optional(&EstimatorParams::wait_budget_us)},
        {"offered-load", set_optional(&EstimatorParams::offered_load)},
        {"batch-min", set_batch(&EstimatorParams::batch_min)},
        {"batch-max", set_batch(&EstimatorParams::batch_max)},
        {"powers-of-two", set_bool(&EstimatorParams::powers_of_two)},
        {"include-1000", set_bool(&EstimatorParams::include_1000)},
        {"scaling",
         [](Applier& a, const std::string& k, const Value& v) -> Status {
           const auto* s = std::get_if<std::string>(&v);
           const auto scaling = s ? parse_scaling(*s) : std::nullopt;
           if (!scaling) return a.error(k, "expected \"amdahl\" or \"split\"");
           a.p_.scaling = *scaling;
           return {};
         }},
    };
    return table;
  }

  std::string_view origin_;
  EstimatorParams& p_;
};

Status apply_json(std::string_view text, std::string_view origin, EstimatorParams& params) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return parse_error(std::string(origin) + ": not valid JSON");
  if (!doc.is_object())
    return parse_error(std::string(origin) + ": the top level must be an object");
  Applier applier(origin, params);
  for (const auto& [key, j] : doc.items()) {
    if (key == kCalibrationSection && j.is_object()) continue;  // read_calibration_settings()
    Value v;
    if (j.is_null()) {
      v = std::monostate{};
    } else if (j.is_boolean()) {
      v = j.get<bool>();
    } else if (j.is_number()) {
      v = j.get<double>();
    } else if (j.is_string()) {
      v = j.get<std::string>();
    } else {
      return invalid_argument(std::string(origin) + ": '" + key + "': expected a scalar value");
    }
    MYELIN_RETURN_IF_ERROR(applier.apply(key, v));
  }
  return {};
}

Status apply_toml(std::string_view text, std::string_view origin, EstimatorParams& params) {
  toml::table doc;
  try {
    doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    return parse_error(std::string(origin) + ":" + std::to_string(where.line) + ":" +
                       std::to_string(where.column) + ": " + std::string(e.description()));
  }
  Applier applier(origin, params);
  for (const auto& [key, node] : doc) {
    const std::string k(key.str());
    if (k == kCalibrationSection && node.is_table()) continue;  // read_calibration_settings()
    Value v;
    if (const auto b = node.value_exact<bool>()) {
      v = *b;
    } else if (const auto i = node.value_exact<std::int64_t>()) {
      v = static_cast<double>(*i);
    } else if (const auto d = node.value_exact<double>()) {
      v = *d;
    } else if (const auto s = node.value_exact<std::string>()) {
      v = *s;
    } else {
      return invalid_argument(std::string(origin) + ": '" + k + "': expected a scalar value");
    }
    MYELIN_RETURN_IF_ERROR(applier.apply(k, v));
  }
  return {};
}

}  // namespace

Status apply_estimate_config(std::string_view text, ConfigSyntax syntax, std::string_view origin,
                             EstimatorParams& params) {
  return syntax == ConfigSyntax::kJson ? apply_json(text, origin, params)
                                       : apply_toml(text, origin, params);
}

Result<EstimatorParams> load_estimate_config(const std::string& path, EstimatorParams base) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error(path + ": cannot read config file");
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  MYELIN_RETURN_IF_ERROR(apply_estimate_config(
      text.str(), json ? ConfigSyntax::kJson : ConfigSyntax::kToml, path, base));
  return base;
}

namespace {

// A TOML node as JSON (scalars and arrays; tables are nested objects), so
// one reader serves both syntaxes.
nlohmann::json toml_to_json(const toml::node& node) {
  if (const auto b = node.value_exact<bool>()) return *b;
  if (const auto i = node.value_exact<std::int64_t>()) return *i;
  if (const auto d = node.value_exact<double>()) return *d;
  if (const auto s = node.value_exact<std::string>()) return *s;
  if (const auto* a = node.as_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : *a) out.push_back(toml_to_json(e));
    return out;
  }
  if (const auto* t = node.as_table()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : *t) out[std::string(k.str())] = toml_to_json(v);
    return out;
  }
  return nullptr;  // dates and times: reported as the wrong type
}

Status apply_calibration_section(const nlohmann::json& sec, std::string_view origin,
                                 CalibrationSettings& s) {
  const auto err = [&](const std::string& key, const std::string& why) {
    return invalid_argument(std::string(origin) + ": " + kCalibrationSection + "." + key + ": " +
                            why);
  };
  const auto positive = [&](const std::string& key, const nlohmann::json& j) -> Result<double> {
    if (!j.is_number()) return err(key, std::string("expected a number, got ") + j.type_name());
    const double v = j.get<double>();
    if (!std::isfinite(v) || v <= 0) return err(key, "expected a number > 0");
    return v;
  };
  for (const auto& [key, j] : sec.items()) {
    if (key == "file" || key == "model") {
      if (!j.is_string()) return err(key, std::string("expected a string, got ") + j.type_name());
      (key == "file" ? s.file : s.model) = j.get<std::string>();
    } else if (key == "connections") {
      MYELIN_ASSIGN_OR_RETURN(s.connections, positive(key, j));
    } else if (key == "offered-load") {
      MYELIN_ASSIGN_OR_RETURN(s.offered_load, positive(key, j));
    } else if (key == "latency-budget-us") {
      MYELIN_ASSIGN_OR_RETURN(s.latency_budget_us, positive(key, j));
    } else if (key == "max-batch" || key == "max-delay-us") {
      if (!j.is_array() || j.empty()) return err(key, "expected a non-empty array of numbers");
      std::vector<double> values;
      for (std::size_t i = 0; i < j.size(); ++i) {
        const std::string at = key + "[" + std::to_string(i) + "]";
        if (!j[i].is_number())
          return err(at, std::string("expected a number, got ") + j[i].type_name());
        const double v = j[i].get<double>();
        if (key == "max-batch" && (!(v >= 1) || v > 1 << 20 || std::floor(v) != v))
          return err(at, "expected a whole number in [1, 1048576]");
        if (key == "max-delay-us" && (!std::isfinite(v) || v < 0))
          return err(at, "expected a number >= 0");
        values.push_back(v);
      }
      if (key == "max-delay-us") {
        s.max_delays_us = values;
      } else {
        s.max_batches.assign(values.size(), 0);
        for (std::size_t i = 0; i < values.size(); ++i)
          s.max_batches[i] = static_cast<std::uint64_t>(values[i]);
      }
    } else {
      return err(key, "unknown key");
    }
  }
  return {};
}

}  // namespace

Status apply_calibration_config(std::string_view text, ConfigSyntax syntax, std::string_view origin,
                                CalibrationSettings& settings) {
  nlohmann::json doc;
  if (syntax == ConfigSyntax::kJson) {
    doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) return parse_error(std::string(origin) + ": not valid JSON");
  } else {
    try {
      doc = toml_to_json(toml::parse(text, origin));
    } catch (const toml::parse_error& e) {
      const auto& where = e.source().begin;
      return parse_error(std::string(origin) + ":" + std::to_string(where.line) + ":" +
                         std::to_string(where.column) + ": " + std::string(e.description()));
    }
  }
  if (!doc.is_object())
    return parse_error(std::string(origin) + ": the top level must be an object");
  const auto it = doc.find(kCalibrationSection);
  if (it == doc.end()) return {};
  if (!it->is_object())
    return invalid_argument(std::string(origin) + ": calibration: expected a table");
  return apply_calibration_section(*it, origin, settings);
}

Result<CalibrationSettings> load_calibration_settings(const std::string& path,
                                                      CalibrationSettings base) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return io_error(path + ": cannot open config file");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return io_error(path + ": cannot read config file");
  const bool json = path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0;
  MYELIN_RETURN_IF_ERROR(apply_calibration_config(
      text.str(), json ? ConfigSyntax::kJson : ConfigSyntax::kToml, path, base));
  return base;
}

}  // namespace myelin::perf
