// The shared entry into the batcher (dispatch.h).
#include "src/serve/dispatch.h"

#include <string>

namespace myelin::serve::detail {

Result<std::shared_ptr<ServedModel>> admit(const ModelRepository& repo, std::string_view name,
                                           std::string_view version) {
  Lookup found = repo.find(name, version);
  if (found.outcome == Lookup::kNotReady) return unavailable(found.message);
  if (found.outcome != Lookup::kFound) return not_found(found.message);
  if (found.model->batcher->saturated()) {
    found.model->metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
    return resource_exhausted("model '" + std::string(name) + "': queue full (" +
                              std::to_string(found.model->config.max_queue) +
                              " requests waiting); retry later");
  }
  return std::move(found.model);
}

Status enqueue(const ModelRepository& repo, std::shared_ptr<ServedModel>& served,
               std::unique_ptr<InferenceRequest>& request, std::optional<Nanos> timeout) {
  const Nanos t = timeout.value_or(served->config.default_timeout);
  if (t.count() > 0) request->deadline = request->received + t;
  request->version = served->version;
  request->served = served;
  Status s = served->batcher->enqueue(request);
  if (s.code() == ErrorCode::kClosed) {
    // Swapped out by a reload between admit() and here: the new version
    // takes it.
    Lookup again = repo.find(request->model, {});
    if (again.outcome == Lookup::kFound && again.model != served) {
      served = std::move(again.model);
      request->served = served;
      request->version = served->version;
      s = served->batcher->enqueue(request);
    }
  }
  return s;
}

}  // namespace myelin::serve::detail
