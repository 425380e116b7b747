#include "myelin/serve/model_repository.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "src/serve/log.h"

namespace myelin::serve {
namespace fs = std::filesystem;
namespace {

bool valid_name(std::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

bool numeric(std::string_view s) {
  return !s.empty() && s.size() < 19 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

nlohmann::json tensor_list(std::span<const model::TensorInfo> infos) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& i : infos) a.push_back(i.name + " " + i.to_string());
  return a;
}

}  // namespace

std::string_view to_string(ModelState state) noexcept {
  return state == ModelState::kReady ? "READY" : "UNAVAILABLE";
}

Result<std::unique_ptr<ModelRepository>> ModelRepository::create(RepositoryOptions options) {
  if (!options.root.empty()) {
    std::error_code ec;
    if (!fs::is_directory(options.root, ec)) {
      return invalid_argument("--repository: '" + options.root + "' is not a directory");
    }
  }
  for (const auto& [name, path] : options.files) {
    if (!valid_name(name)) {
      return invalid_argument("--model: '" + name +
                              "' is not a model name (letters, digits, '_', '-', '.')");
    }
    if (path.empty()) return invalid_argument("--model " + name + "=: empty path");
  }
  return std::unique_ptr<ModelRepository>(new ModelRepository(std::move(options)));
}

ModelRepository::~ModelRepository() { shutdown(); }

void ModelRepository::log(const std::string& line) const {
  if (options_.log) {
    options_.log(line);
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
}

std::vector<std::string> ModelRepository::source_names() const {
  std::vector<std::string> names;
  for (const auto& [name, path] : options_.files) names.push_back(name);
  if (!options_.root.empty()) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(options_.root, ec)) {
      const std::string n = e.path().filename().string();
      if (e.is_directory(ec) && valid_name(n)) names.push_back(n);
    }
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

Result<ModelRepository::Source> ModelRepository::resolve(const std::string& name) const {
  for (const auto& [n, path] : options_.files) {
    if (n == name) return Source{name, "1", path, ""};
  }
  if (options_.root.empty() || !valid_name(name)) {
    return not_found("no model named '" + name + "' in the repository");
  }
  const fs::path dir = fs::path(options_.root) / name;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return not_found("no model named '" + name + "' in the repository (" + dir.string() +
                     " is not a directory)");
  }
  std::int64_t best = -1;
  fs::path best_file;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string v = e.path().filename().string();
    if (!e.is_directory(ec) || !numeric(v)) continue;
    for (const char* f : {"model.mylm", "model.onnx"}) {
      if (fs::is_regular_file(e.path() / f, ec) && std::stoll(v) > best) {
        best = std::stoll(v);
        best_file = e.path() / f;
        break;
      }
    }
  }
  if (best < 0) {
    return not_found(dir.string() + ": no version directory holds model.onnx or model.mylm");
  }
  Source s{name, std::to_string(best), best_file.string(), ""};
  if (fs::is_regular_file(dir / "config.toml", ec)) s.config_path = (dir / "config.toml").string();
  return s;
}

Result<std::shared_ptr<ServedModel>> ModelRepository::load_source(const Source& source) const {
  const MonoTime t0 = mono_now();
  ModelConfig config = options_.defaults;
  if (!source.config_path.empty()) {
    std::ifstream in(source.config_path);
    if (!in) return io_error("cannot read " + source.config_path);
    std::stringstream text;
    text << in.rdbuf();
    MYELIN_ASSIGN_OR_RETURN(config,
                            parse_model_config(text.str(), source.config_path, options_.defaults));
  }
  model::LoadOptions lo;
  lo.max_model_bytes = config.max_model_mb << 20;
  lo.max_request_bytes = config.max_request_mb << 20;
  auto m = model::Model::load(source.path, lo);
  if (!m) return std::move(m).error();
  auto served = std::make_shared<ServedModel>(
      ServedModel{source.name, source.version, source.path, *m, config,
                  std::make_shared<ModelMetrics>(), nullptr, Nanos{0}});
  BatcherOptions bo;
  bo.max_batch = config.max_batch;
  bo.max_delay = config.max_delay;
  bo.max_queue = config.max_queue;
  bo.workers = config.workers;
  bo.inline_max_compute = config.inline_max_compute;
  MYELIN_ASSIGN_OR_RETURN(served->batcher, Batcher::create(*m, bo, served->metrics));
  served->load_time = mono_now() - t0;
  return served;
}

std::size_t ModelRepository::load_all() {
  std::size_t ready = 0;
  for (const auto& name : source_names()) ready += load(name).ok() ? 1 : 0;
  return ready;
}

Status ModelRepository::load(const std::string& name) {
  std::lock_guard load_lock(load_mu_);
  auto source = resolve(name);
  if (!source) {
    log(detail::log_line("error", "model_load_failed",
                         {{"model", name}, {"error", std::string(source.error().message())}}));
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    if (it != entries_.end() && !it->second.served) {
      it->second.status.reason = std::string(source.error().message());
    }
    return std::move(source).error();
  }
  auto loaded = load_source(*source);
  if (!loaded) {
    const std::string reason = loaded.error().to_string();
    log(detail::log_line("error", "model_load_failed",
                         {{"model", name},
                          {"version", source->version},
                          {"path", source->path},
                          {"error", reason}}));
    std::lock_guard lock(mu_);
    Entry& e = entries_[name];
    if (!e.served) {  // a version already served keeps serving
      e.status = {name, source->version, source->path, ModelState::kUnavailable, reason};
    }
    return Status(loaded.error().code(), "model '" + name + "' (" + source->path +
                                             "): " + std::string(loaded.error().message()));
  }
  const std::shared_ptr<ServedModel>& m = *loaded;
  log(detail::log_line("info", "model_loaded",
                       {{"model", name},
                        {"version", m->version},
                        {"path", m->path},
                        {"inputs", tensor_list(m->model.inputs())},
                        {"outputs", tensor_list(m->model.outputs())},
                        {"max_batch_size", m->config.max_batch},
                        {"max_queue_delay_us", m->config.max_delay.count() / 1000},
                        {"max_queue_size", m->config.max_queue},
                        {"workers", m->config.workers},
                        {"load_ms", static_cast<double>(m->load_time.count()) / 1e6}}));
  std::shared_ptr<ServedModel> old;
  {
    std::lock_guard lock(mu_);
    Entry& e = entries_[name];
    old = std::move(e.served);
    e.served = m;
    e.status = {name, m->version, m->path, ModelState::kReady, ""};
  }
  retire(std::move(old));
  return {};
}

Status ModelRepository::unload(const std::string& name) {
  std::lock_guard load_lock(load_mu_);
  std::shared_ptr<ServedModel> old;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || !it->second.served) {
      return not_found("model '" + name + "' is not loaded");
    }
    old = std::move(it->second.served);
    it->second.status.state = ModelState::kUnavailable;
    it->second.status.reason = "unloaded";
  }
  log(detail::log_line("info", "model_unloaded", {{"model", name}, {"version", old->version}}));
  retire(std::move(old));
  return {};
}

void ModelRepository::retire(std::shared_ptr<ServedModel> old) {
  // Requests that found `old` before the swap are still queued or about to
  // be: shutdown() answers every queued one; a late submit gets `closed` and
  // the front end looks the model up again.
  if (old && old->batcher) old->batcher->shutdown();
}

std::vector<ModelStatus> ModelRepository::index() const {
  std::vector<ModelStatus> out;
  std::map<std::string, ModelStatus> all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, e] : entries_) all[name] = e.status;
  }
  for (const auto& name : source_names()) {
    if (all.count(name) == 0) {
      auto s = resolve(name);
      all[name] = {name, s ? s->version : "", s ? s->path : "", ModelState::kUnavailable,
                   "not loaded"};
    }
  }
  for (auto& [name, s] : all) out.push_back(std::move(s));
  return out;
}

Lookup ModelRepository::find(std::string_view name, std::string_view version) const {
  Lookup r;
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    r.outcome = Lookup::kUnknownModel;
    r.message = "unknown model '" + std::string(name) + "'";
    return r;
  }
  const Entry& e = it->second;
  if (!e.served) {
    r.outcome = Lookup::kNotReady;
    r.message = "model '" + std::string(name) + "' is not ready: " + e.status.reason;
    return r;
  }
  if (!version.empty() && version != e.served->version) {
    r.outcome = Lookup::kUnknownVersion;
    r.message = "model '" + std::string(name) + "' has no version '" + std::string(version) +
                "' (serving version " + e.served->version + ")";
    return r;
  }
  r.outcome = Lookup::kFound;
  r.model = e.served;
  return r;
}

std::vector<std::shared_ptr<ServedModel>> ModelRepository::ready() const {
  std::vector<std::shared_ptr<ServedModel>> out;
  std::lock_guard lock(mu_);
  for (const auto& [name, e] : entries_) {
    if (e.served) out.push_back(e.served);
  }
  return out;
}

void ModelRepository::shutdown() {
  std::vector<std::shared_ptr<ServedModel>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [name, e] : entries_) {
      if (e.served) all.push_back(e.served);
    }
  }
  for (auto& m : all) m->batcher->shutdown();
}

}  // namespace myelin::serve
