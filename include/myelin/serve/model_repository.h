// ModelRepository: the models a server serves, where they come from, and
// their state.
//
// Sources: a Triton-style directory (DIR/<name>/<version>/model.onnx or
// model.mylm, plus an optional DIR/<name>/config.toml) and single files
// given as NAME=PATH (served as version 1). A name's served version is its
// highest numeric version directory. Each served model version owns a
// Batcher (with its workers) and its metrics.
//
// A model that fails to load is recorded with its error and is not ready;
// the others serve. load() (re)loads a model and swaps it in only once the
// new version is ready; the version it replaces stops taking requests, and
// retire happens after everything already queued was answered, so no
// request in flight fails. unload() does the same without a successor.
//
// Thread-safety: every method is thread-safe. find() is the hot one (a lock
// held for a map lookup and a shared_ptr copy). load(), unload(),
// load_all() and shutdown() block while models load or drain: call them off
// the I/O threads.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/model/model.h"
#include "myelin/serve/batcher.h"
#include "myelin/serve/metrics.h"

namespace myelin::serve {

// One model's serving settings: the server-wide defaults, overridden per
// model by DIR/<name>/config.toml (docs/serving.md lists the keys).
struct ModelConfig {
  std::size_t max_batch = 64;
  Nanos max_delay = std::chrono::microseconds(500);
  std::size_t max_queue = 1024;
  Nanos default_timeout{0};  // 0: none
  std::size_t workers = 1;
  // Inline runs (BatcherOptions::inline_max_compute): the most of the
  // model's measured compute an I/O thread runs itself; 0 turns them off.
  Nanos inline_max_compute = std::chrono::microseconds(50);
  // Memory budgets (model::LoadOptions), in MiB: the plan's weights plus one
  // sample's workspace, and one batch's workspace (max_batch rows).
  std::uint64_t max_model_mb = 2048;
  std::uint64_t max_request_mb = 1024;
};

// Parses config.toml text over `defaults`. Keys: max_batch_size,
// max_queue_delay_us, max_queue_size, default_timeout_ms, workers,
// inline_max_compute_us, max_model_mb, max_request_mb. An
// unknown key, a wrong type or a value out of range is an error naming the
// file (`origin`), the key and the line.
Result<ModelConfig> parse_model_config(std::string_view text, std::string_view origin,
                                       const ModelConfig& defaults);

enum class ModelState : std::uint8_t { kReady, kUnavailable };
std::string_view to_string(ModelState state) noexcept;  // "READY", "UNAVAILABLE"

struct ServedModel {
  std::string name;
  std::string version;
  std::string path;
  model::Model model;
  ModelConfig config;
  std::shared_ptr<ModelMetrics> metrics;
  std::unique_ptr<Batcher> batcher;
  Nanos load_time{0};
};

struct ModelStatus {
  std::string name;
  std::string version;  // empty when no version could be found
  std::string path;
  ModelState state = ModelState::kUnavailable;
  std::string reason;  // why it is unavailable
};

struct Lookup {
  enum Outcome : std::uint8_t { kFound, kUnknownModel, kUnknownVersion, kNotReady };
  Outcome outcome = kUnknownModel;
  std::shared_ptr<ServedModel> model;
  std::string message;  // for everything but kFound
};

struct RepositoryOptions {
  std::string root;                                        // a Triton-style directory, or empty
  std::vector<std::pair<std::string, std::string>> files;  // NAME=PATH
  ModelConfig defaults;
  // One structured log line (JSON, no newline) per event; null: stderr.
  std::function<void(const std::string&)> log;
};

class ModelRepository {
 public:
  // Checks the options (a root that is not a directory, a bad name); loads
  // nothing yet.
  static Result<std::unique_ptr<ModelRepository>> create(RepositoryOptions options);
  ~ModelRepository();  // shutdown()
  ModelRepository(const ModelRepository&) = delete;
  ModelRepository& operator=(const ModelRepository&) = delete;

  // Loads every model the sources name. Returns how many are ready; each
  // failure is logged and recorded in index().
  std::size_t load_all();
  // (Re)loads `name` from its source; on error the version already served
  // (if any) keeps serving. not_found when no source names it.
  Status load(const std::string& name);
  // Stops serving `name` once its queued requests are answered.
  Status unload(const std::string& name);
  // Every model the sources name, and every model loaded, with its state.
  [[nodiscard]] std::vector<ModelStatus> index() const;
  [[nodiscard]] Lookup find(std::string_view name, std::string_view version = {}) const;
  [[nodiscard]] std::vector<std::shared_ptr<ServedModel>> ready() const;
  // Stops every batcher after its queued requests are answered.
  void shutdown();

  struct Source {
    std::string name, version, path, config_path;
  };

 private:
  explicit ModelRepository(RepositoryOptions options) : options_(std::move(options)) {}
  Result<Source> resolve(const std::string& name) const;
  std::vector<std::string> source_names() const;
  Result<std::shared_ptr<ServedModel>> load_source(const Source& source) const;
  void retire(std::shared_ptr<ServedModel> old);
  void log(const std::string& line) const;

  struct Entry {
    std::shared_ptr<ServedModel> served;
    ModelStatus status;
  };
  RepositoryOptions options_;
  std::mutex load_mu_;  // one load/unload at a time
  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace myelin::serve
