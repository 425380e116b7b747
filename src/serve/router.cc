// Routes of the OIP REST front end (docs/serving.md lists each with an example).
#include <array>
#include <string>
#include <string_view>

#include "src/serve/dispatch.h"
#include "src/serve/http_connection.h"
#include "src/serve/log.h"
#include "src/serve/oip.h"

#ifndef MYELIN_VERSION
#define MYELIN_VERSION "0.0.0"
#endif

namespace myelin::serve::detail {
namespace {

constexpr std::size_t kMaxSegments = 8;

struct Path {
  std::array<std::string_view, kMaxSegments> seg{};
  std::size_t n = 0;
  bool too_long = false;
};

Path split(std::string_view target) {
  Path p;
  const std::size_t q = target.find('?');
  if (q != std::string_view::npos) target = target.substr(0, q);
  std::size_t i = 0;
  while (i < target.size()) {
    while (i < target.size() && target[i] == '/') ++i;
    if (i == target.size()) break;
    std::size_t j = target.find('/', i);
    if (j == std::string_view::npos) j = target.size();
    if (p.n == kMaxSegments) {
      p.too_long = true;
      break;
    }
    p.seg[p.n++] = target.substr(i, j - i);
    i = j;
  }
  return p;
}

int status_for(const Status& s) {
  switch (s.code()) {
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kParseError:
    case ErrorCode::kOutOfRange:
      return 400;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kResourceExhausted:
    case ErrorCode::kUnavailable:
    case ErrorCode::kClosed:
      return 503;
    case ErrorCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

void reply_error(Connection& conn, std::uint64_t seq, int status, std::string_view message) {
  std::string& body = conn.context().scratch;
  body.clear();
  encode_error(message, body);
  conn.answer(seq, {status, "application/json", body, std::nullopt, false, {}});
}

void reply_json(Connection& conn, std::uint64_t seq, std::string_view body) {
  conn.answer(seq, {200, "application/json", body, std::nullopt, false, {}});
}

void reply_empty(Connection& conn, std::uint64_t seq, int status) {
  conn.answer(seq, {status, "text/plain", "", std::nullopt, false, {}});
}

bool is(llhttp_method_t m, llhttp_method_t want) { return m == want; }

void method_not_allowed(Connection& conn, std::uint64_t seq, HttpRequest& req,
                        std::string_view allowed) {
  std::string& body = conn.context().scratch;
  body.clear();
  encode_error(std::string(llhttp_method_name(req.method)) + " " + req.target +
                   ": method not allowed (use " + std::string(allowed) + ")",
               body);
  HttpResponse r{405, "application/json", body, std::nullopt, false, allowed};
  conn.answer(seq, r);
}

// Load/unload/index block (models load, batchers drain): they run on the
// admin loop, and the answer comes back to the connection's loop.
void admin(Connection& conn, std::uint64_t seq, std::function<std::string(int&)> work) {
  ServerShared& shared = *conn.context().shared;
  auto self = std::static_pointer_cast<Connection>(conn.shared_from_this());
  const bool posted = shared.admin->post([self, seq, work = std::move(work)]() mutable {
    int status = 200;
    std::string body = work(status);
    (void)self->context().loop->submit([self, seq, status, body = std::move(body)] {
      self->answer(seq, {status, "application/json", body, std::nullopt, false, {}});
    });
  });
  if (!posted) reply_error(conn, seq, 503, "the server is shutting down");
}

void repository_route(Connection& conn, std::uint64_t seq, HttpRequest& req, const Path& p) {
  ModelRepository& repo = *conn.context().shared->repository;
  if (p.n == 3 && p.seg[2] == "index") {
    if (!is(req.method, HTTP_POST) && !is(req.method, HTTP_GET)) {
      return method_not_allowed(conn, seq, req, "GET, POST");
    }
    admin(conn, seq, [&repo](int&) {
      std::string out = "[";
      bool first = true;
      for (const auto& m : repo.index()) {
        if (!first) out += ',';
        first = false;
        out += "{\"name\":";
        append_json_string(out, m.name);
        if (!m.version.empty()) {
          out += ",\"version\":";
          append_json_string(out, m.version);
        }
        out += ",\"state\":";
        append_json_string(out, to_string(m.state));
        if (!m.reason.empty()) {
          out += ",\"reason\":";
          append_json_string(out, m.reason);
        }
        out += '}';
      }
      return out + "]";
    });
    return;
  }
  if (p.n == 5 && p.seg[2] == "models" && (p.seg[4] == "load" || p.seg[4] == "unload")) {
    if (!is(req.method, HTTP_POST)) return method_not_allowed(conn, seq, req, "POST");
    const bool load = p.seg[4] == "load";
    admin(conn, seq, [&repo, name = std::string(p.seg[3]), load](int& status) {
      Status s = load ? repo.load(name) : repo.unload(name);
      if (s.ok()) return std::string("{}");
      status = s.code() == ErrorCode::kNotFound ? 404 : 400;
      std::string out;
      encode_error(s.message(), out);
      return out;
    });
    return;
  }
  reply_error(conn, seq, 404, "no route for " + req.target);
}

// Starts, once this loop tick's reads are done, everything the tick enqueued.
void schedule_flush(LoopContext& lc, const std::shared_ptr<ServedModel>& model) {
  bool listed = false;
  for (const auto& m : lc.pending_flush) listed = listed || m == model;
  if (!listed) lc.pending_flush.push_back(model);
  if (lc.flush_queued) return;
  lc.flush_queued = true;
  LoopContext* ctx = &lc;  // outlives its loop's tasks
  const Status s = lc.loop->queue_microtask([ctx] {
    ctx->flush_queued = false;
    std::vector<std::shared_ptr<ServedModel>> models;
    models.swap(ctx->pending_flush);
    for (const auto& m : models) m->batcher->flush();
    models.clear();
    if (ctx->pending_flush.empty()) ctx->pending_flush.swap(models);  // keeps the capacity
  });
  if (!s.ok()) {  // not on a loop tick (cannot happen on the loop thread): start now
    lc.flush_queued = false;
    for (const auto& m : lc.pending_flush) m->batcher->flush();
    lc.pending_flush.clear();
  }
}

void infer(Connection& conn, std::uint64_t seq, HttpRequest& req, std::string_view name,
           std::string_view version) {
  ServerShared& shared = *conn.context().shared;
  // Admitted before the body is decoded: a full queue costs no decode.
  auto admitted = admit(*shared.repository, name, version);
  if (!admitted) {
    return reply_error(conn, seq, status_for(admitted.error()), admitted.error().message());
  }
  std::shared_ptr<ServedModel> served = std::move(*admitted);
  auto request = std::make_unique<InferenceRequest>();
  request->model = std::string(name);
  request->body = std::move(req.body);
  request->received = req.received;
  const std::size_t json_length = req.inference_header_length.value_or(request->body.size());
  DecodedOptions options;
  Status s = decode_infer_request(conn.context().json, json_length, *request, options);
  if (s.ok()) {
    std::optional<Nanos> timeout;
    if (options.timeout_us) timeout = Nanos(*options.timeout_us * 1000);
    request->responder = std::static_pointer_cast<Connection>(conn.shared_from_this());
    request->tag = seq;
    s = enqueue(*shared.repository, served, request, timeout);
  }
  if (s.ok()) {
    schedule_flush(conn.context(), served);
    return;
  }
  served->metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
  reply_error(conn, seq, status_for(s),
              "model '" + std::string(name) + "': " + std::string(s.message()));
}

void model_route(Connection& conn, std::uint64_t seq, HttpRequest& req, const Path& p) {
  // /v2/models/{name}[/versions/{v}][/ready|/infer]
  const std::string_view name = p.seg[2];
  std::string_view version;
  std::size_t i = 3;
  if (p.n >= 5 && p.seg[3] == "versions") {
    version = p.seg[4];
    i = 5;
  }
  const std::string_view action = i < p.n ? p.seg[i] : std::string_view();
  if (i + (action.empty() ? 0 : 1) != p.n)
    return reply_error(conn, seq, 404, "no route for " + req.target);
  if (action == "infer") {
    if (!is(req.method, HTTP_POST)) return method_not_allowed(conn, seq, req, "POST");
    return infer(conn, seq, req, name, version);
  }
  if (!action.empty() && action != "ready") {
    return reply_error(conn, seq, 404, "no route for " + req.target);
  }
  if (!is(req.method, HTTP_GET)) return method_not_allowed(conn, seq, req, "GET");
  Lookup found = conn.context().shared->repository->find(name, version);
  if (action == "ready") {
    if (found.outcome == Lookup::kFound) return reply_empty(conn, seq, 200);
    return reply_error(conn, seq, found.outcome == Lookup::kNotReady ? 503 : 404, found.message);
  }
  if (found.outcome != Lookup::kFound) {
    return reply_error(conn, seq, found.outcome == Lookup::kNotReady ? 503 : 404, found.message);
  }
  const ServedModel& m = *found.model;
  std::string& body = conn.context().scratch;
  body.clear();
  encode_model_metadata(m.name, m.version, m.model.source() == "onnx" ? "onnx" : "myelin_mylm",
                        m.model, body);
  reply_json(conn, seq, body);
}

}  // namespace

void route(Connection& conn, std::uint64_t seq, HttpRequest& req) {
  const Path p = split(req.target);
  ServerShared& shared = *conn.context().shared;
  if (p.too_long) return reply_error(conn, seq, 404, "no route for " + req.target);
  if (p.n == 1 && p.seg[0] == "metrics") {
    if (!is(req.method, HTTP_GET)) return method_not_allowed(conn, seq, req, "GET");
    std::vector<ModelSeries> series;
    const auto ready = shared.repository->ready();
    for (const auto& m : ready) series.push_back({m->name, m->version, m->metrics.get()});
    const std::string text = render_metrics(series, shared.metrics);
    conn.answer(seq,
                {200, "text/plain; version=0.0.4; charset=utf-8", text, std::nullopt, false, {}});
    return;
  }
  if (p.n == 0 || p.seg[0] != "v2")
    return reply_error(conn, seq, 404, "no route for " + req.target);
  if (p.n == 1) {
    if (!is(req.method, HTTP_GET)) return method_not_allowed(conn, seq, req, "GET");
    return reply_json(conn, seq,
                      "{\"name\":\"myelin\",\"version\":\"" MYELIN_VERSION
                      "\",\"extensions\":[\"binary_tensor_data\",\"model_repository\"]}");
  }
  if (p.seg[1] == "health" && p.n == 3) {
    if (!is(req.method, HTTP_GET)) return method_not_allowed(conn, seq, req, "GET");
    if (p.seg[2] == "live") return reply_empty(conn, seq, 200);
    if (p.seg[2] == "ready") {
      if (shared.draining.load(std::memory_order_relaxed)) {
        return reply_error(conn, seq, 503, "the server is shutting down");
      }
      return reply_empty(conn, seq, 200);
    }
  }
  if (p.seg[1] == "models" && p.n >= 3) return model_route(conn, seq, req, p);
  if (p.seg[1] == "repository" && p.n >= 3) return repository_route(conn, seq, req, p);
  reply_error(conn, seq, 404, "no route for " + req.target);
}

void answer_inference(Connection& conn, std::unique_ptr<InferenceRequest> r) {
  ModelMetrics& metrics = *r->served->metrics;
  std::string& body = conn.context().scratch;
  body.clear();
  const std::uint64_t seq = r->tag;
  if (!r->status.ok()) {
    metrics.request_failure.fetch_add(1, std::memory_order_relaxed);
    encode_error("model '" + r->model + "': " + std::string(r->status.message()), body);
    conn.answer(seq, {status_for(r->status), "application/json", body, std::nullopt, false, {}});
    return;
  }
  const std::size_t json_length = encode_infer_response(*r, r->served->model.outputs(), body);
  const bool binary = json_length != body.size();
  metrics.ready_duration.observe(mono_now() - r->received);
  conn.answer(seq, {200,
                    binary ? "application/octet-stream" : "application/json",
                    body,
                    binary ? std::optional<std::size_t>(json_length) : std::nullopt,
                    false,
                    {}});
  metrics.request_success.fetch_add(1, std::memory_order_relaxed);
  metrics.request_duration.observe(mono_now() - r->received);
}

}  // namespace myelin::serve::detail
