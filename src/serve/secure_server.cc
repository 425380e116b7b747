// The MSC1 front end: envelopes in, the shared batcher entry, envelopes out.
#include "myelin/serve/secure_server.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "myelin/secure/server.h"
#include "myelin/serve/envelope.h"
#include "src/serve/dispatch.h"

namespace myelin::serve {
namespace {

// Longest timeout a request may ask for; longer ones are cut to it (and
// 2^64 µs would overflow the clock).
constexpr std::uint64_t kMaxTimeoutUs = 24ull * 3600 * 1000 * 1000;

void send_error(secure::Connection& conn, std::uint64_t id, ReplyCode code,
                std::string_view message) {
  ReplyEnvelope reply;
  reply.id = id;
  reply.code = code;
  reply.message = message;
  auto bytes = encode_reply(reply);
  if (bytes) (void)conn.send(*bytes);
}

// On the I/O loop: the finished request back into an envelope.
void send_result(secure::Connection& conn, InferenceRequest& r) {
  if (!r.status.ok()) {
    return send_error(conn, r.tag, reply_code_for(r.status),
                      "model '" + r.model + "': " + std::string(r.status.message()));
  }
  const auto infos = r.served->model.outputs();
  ReplyEnvelope reply;
  reply.id = r.tag;
  reply.outputs.reserve(r.output_index.size());
  for (const std::uint16_t j : r.output_index) {
    const OutputTensor& t = r.outputs[j];
    reply.outputs.push_back({infos[j].name, TensorView{t.dtype, t.shape, t.bytes}});
  }
  auto bytes = encode_reply(reply);
  if (!bytes) {
    r.served->metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
    return send_error(conn, r.tag, ReplyCode::kInternal,
                      "model '" + r.model + "': " + std::string(bytes.error().message()));
  }
  if (conn.send(*bytes).ok()) {
    r.served->metrics->request_success.fetch_add(1, std::memory_order_relaxed);
  }
}

// Where a finished request goes: back to its connection's loop, if the
// connection still exists by then.
class ReplyRoute final : public Responder {
 public:
  ReplyRoute(std::shared_ptr<EventLoop> loop, std::weak_ptr<secure::Connection> conn)
      : loop_(std::move(loop)), conn_(std::move(conn)) {}
  void complete(std::unique_ptr<InferenceRequest> request) override {
    // Once the task is queued, the loop may run it and drop the request,
    // and with it this route, before submit() returns: keep the loop alive
    // on this thread until then.
    const std::shared_ptr<EventLoop> loop = loop_;
    (void)loop->submit([conn = conn_, r = std::move(request)]() mutable {
      if (auto c = conn.lock()) send_result(*c, *r);
    });
  }

 private:
  std::shared_ptr<EventLoop> loop_;  // outlives the server while replies are in flight
  std::weak_ptr<secure::Connection> conn_;
};

}  // namespace

struct SecureInferenceServer::Impl {
  Impl(SecureServerOptions o, ModelRepository& r) : options(std::move(o)), repo(r) {}

  MonoTime now() const { return options.clock != nullptr ? options.clock->now() : mono_now(); }
  void handle(secure::Connection& conn, const std::shared_ptr<ReplyRoute>& route,
              std::span<const std::byte> message);
  void schedule_flush(const std::shared_ptr<ServedModel>& model);

  SecureServerOptions options;
  ModelRepository& repo;
  std::shared_ptr<EventLoop> loop;
  std::unique_ptr<secure::Server> server;  // used on the loop thread once it runs
  std::uint16_t port = 0;
  bool started = false;
  bool stopped = false;
  // Loop thread: the batchers this tick queued requests on, started
  // together once the tick's reads are done.
  std::vector<std::shared_ptr<ServedModel>> pending_flush;
  bool flush_queued = false;
  RequestEnvelope envelope;  // reused: decoding allocates nothing once warm
};

namespace {

class InferHandler final : public secure::ConnectionHandler {
 public:
  InferHandler(SecureInferenceServer::Impl& impl, std::shared_ptr<ReplyRoute> route)
      : impl_(impl), route_(std::move(route)) {}
  void on_message(secure::Connection& conn, std::span<const std::byte> message) override {
    impl_.handle(conn, route_, message);
  }

 private:
  SecureInferenceServer::Impl& impl_;
  std::shared_ptr<ReplyRoute> route_;
};

}  // namespace

void SecureInferenceServer::Impl::handle(secure::Connection& conn,
                                         const std::shared_ptr<ReplyRoute>& route,
                                         std::span<const std::byte> message) {
  const MonoTime received = now();
  RequestEnvelope& env = envelope;
  if (Status s = decode_request(message, env); !s.ok()) {
    return send_error(conn, request_id_of(message), ReplyCode::kBadRequest, s.message());
  }
  auto admitted = detail::admit(repo, env.model, env.version);
  if (!admitted) {
    return send_error(conn, env.id, reply_code_for(admitted.error()), admitted.error().message());
  }
  std::shared_ptr<ServedModel> served = std::move(*admitted);
  auto request = std::make_unique<InferenceRequest>();
  request->model = std::string(env.model);
  request->id = std::to_string(env.id);
  request->tag = env.id;
  request->received = received;
  request->responder = route;
  // The message lives only during this call: the request keeps a copy, and
  // its inputs are views into that copy (unaligned; the batcher gathers
  // them into its aligned batch buffer).
  request->body.assign(reinterpret_cast<const char*>(message.data()), message.size());
  const auto* base = reinterpret_cast<const std::byte*>(request->body.data());
  request->inputs.reserve(env.inputs.size());
  for (const secure::NamedTensor& t : env.inputs) {
    InputTensor in;
    in.name = std::string(t.name);
    in.dtype = t.tensor.dtype;
    in.shape = t.tensor.shape;
    in.data = {base + (t.tensor.data.data() - message.data()), t.tensor.data.size()};
    request->inputs.push_back(std::move(in));
  }
  request->requested_outputs.assign(env.outputs.begin(), env.outputs.end());
  std::optional<Nanos> timeout;
  if (env.timeout_us != 0) {
    timeout = std::chrono::microseconds(std::min(env.timeout_us, kMaxTimeoutUs));
  }
  const std::uint64_t id = env.id;
  if (Status s = detail::enqueue(repo, served, request, timeout); !s.ok()) {
    served->metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
    return send_error(conn, id, reply_code_for(s),
                      "model '" + request->model + "': " + std::string(s.message()));
  }
  schedule_flush(served);
}

void SecureInferenceServer::Impl::schedule_flush(const std::shared_ptr<ServedModel>& model) {
  if (std::find(pending_flush.begin(), pending_flush.end(), model) == pending_flush.end()) {
    pending_flush.push_back(model);
  }
  if (flush_queued) return;
  flush_queued = true;
  const Status s = loop->queue_microtask([this] {
    flush_queued = false;
    auto models = std::move(pending_flush);
    pending_flush.clear();
    for (const auto& m : models) m->batcher->flush();
  });
  if (!s.ok()) {  // not inside a loop tick: start now
    flush_queued = false;
    auto models = std::move(pending_flush);
    pending_flush.clear();
    for (const auto& m : models) m->batcher->flush();
  }
}

SecureInferenceServer::SecureInferenceServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SecureInferenceServer::~SecureInferenceServer() { (void)shutdown(); }

Result<std::unique_ptr<SecureInferenceServer>> SecureInferenceServer::create(
    SecureServerOptions options, ModelRepository& repository) {
  if (!options.port && options.unix_path.empty()) {
    return invalid_argument(
        "secure server: neither a TCP port nor a Unix socket path to listen on");
  }
  auto impl = std::make_unique<Impl>(std::move(options), repository);
  MYELIN_ASSIGN_OR_RETURN(std::unique_ptr<EventLoop> loop, EventLoop::create());
  impl->loop = std::shared_ptr<EventLoop>(std::move(loop));
  Impl* self = impl.get();
  secure::ServerOptions so;
  so.session = impl->options.session;
  so.max_connections = impl->options.max_connections;
  MYELIN_ASSIGN_OR_RETURN(
      impl->server,
      secure::Server::create(*impl->loop, std::move(so), [self](secure::Connection& c) {
        auto route = std::make_shared<ReplyRoute>(self->loop, c.weak());
        return std::make_unique<InferHandler>(*self, std::move(route));
      }));
  return std::unique_ptr<SecureInferenceServer>(new SecureInferenceServer(std::move(impl)));
}

Status SecureInferenceServer::start() {
  Impl& s = *impl_;
  if (s.started) return failed_precondition("secure server: started twice");
  if (s.options.port) {
    MYELIN_ASSIGN_OR_RETURN(s.port, s.server->listen_tcp(s.options.host, *s.options.port));
  }
  if (!s.options.unix_path.empty())
    MYELIN_RETURN_IF_ERROR(s.server->listen_unix(s.options.unix_path));
  MYELIN_RETURN_IF_ERROR(s.loop->start());
  s.started = true;
  return ok_status();
}

std::uint16_t SecureInferenceServer::port() const noexcept { return impl_->port; }

Status SecureInferenceServer::shutdown() {
  Impl& s = *impl_;
  if (s.stopped) return ok_status();
  s.stopped = true;
  if (!s.started) {
    s.server.reset();
    return ok_status();
  }
  Impl* self = impl_.get();
  (void)s.loop->submit([self] { self->server.reset(); });
  return s.loop->shutdown();
}

}  // namespace myelin::serve
