// The entry every front end shares on its way into the batcher: find the
// model a request names, shed load at the door, then enqueue the decoded
// request (its deadline set, one retry across a reload).
//
// HTTP calls admit() before it decodes a body (a full queue costs no
// decode); the message front ends decode first, since the model name is
// inside the message. Both then call enqueue() and, once their loop tick
// has queued what it read, flush the batchers they touched.
// Thread-safe as ModelRepository and Batcher are.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/serve/model_repository.h"
#include "myelin/serve/request.h"

namespace myelin::serve::detail {

// The model version that serves `name` (`version`, or the one served), or:
// not_found (no such model or version), unavailable (not ready), or
// resource_exhausted (its queue is full; counted as a failed request).
Result<std::shared_ptr<ServedModel>> admit(const ModelRepository& repo, std::string_view name,
                                           std::string_view version);

// Sets the request's version, model reference and deadline (`timeout` from
// request->received, else the model's default timeout, else none) and
// queues it on `served`'s batcher without starting it. If a reload swapped
// the version out in the meantime, the new version takes it and `served`
// is updated. On error the request stays with the caller: invalid_argument
// (it does not fit the model; the message says where), resource_exhausted,
// closed.
Status enqueue(const ModelRepository& repo, std::shared_ptr<ServedModel>& served,
               std::unique_ptr<InferenceRequest>& request, std::optional<Nanos> timeout);

}  // namespace myelin::serve::detail
