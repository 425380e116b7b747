// The RabbitMQ front end: envelopes from a queue per model, the shared
// batcher entry, replies to reply_to with confirms, ack after the confirm.
#include "myelin/serve/amqp_server.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "myelin/amqp/connection.h"
#include "myelin/serve/envelope.h"
#include "src/serve/dispatch.h"

namespace myelin::serve {
namespace {

constexpr std::uint64_t kMaxTimeoutUs = 24ull * 3600 * 1000 * 1000;  // as the MSC1 front end
// reply_to of a client on RabbitMQ's direct reply-to (amq.rabbitmq.reply-to
// as the client set it, with a token the broker appends).
constexpr std::string_view kDirectReplyToPrefix = "amq.rabbitmq.reply-to";

}  // namespace

struct AmqpInferenceServer::State {
  State(AmqpServerOptions o, ModelRepository& r) : options(std::move(o)), repo(r) {}

  MonoTime now() const { return options.clock != nullptr ? options.clock->now() : mono_now(); }

  // A delivery thread: one request in.
  void handle(const std::shared_ptr<State>& self, amqp::Delivery&& d);
  // Any thread: the reply out; the request is settled when it is confirmed.
  void reply(const std::shared_ptr<State>& self, std::uint64_t delivery_tag,
             const std::string& reply_to, const std::string& correlation_id,
             const ReplyEnvelope& envelope, bool served_ok, bool unservable,
             std::shared_ptr<ModelMetrics> metrics);
  void reply_error(const std::shared_ptr<State>& self, const amqp::Delivery& d, std::uint64_t id,
                   ReplyCode code, std::string_view message);
  // Ack, or (for a request that cannot be served as sent, when there is a
  // dead-letter exchange) reject without requeue; then count it settled.
  void settle(std::uint64_t delivery_tag, bool unservable);
  void settled();

  AmqpServerOptions options;
  ModelRepository& repo;
  std::shared_ptr<amqp::Connection> connection;
  std::shared_ptr<amqp::Channel> channel;
  std::vector<std::string> queues;
  std::vector<std::string> consumer_tags;
  bool started = false;
  bool stopped = false;

  std::atomic<std::uint64_t> requests{0}, replies{0}, error_replies{0}, rejected{0}, unroutable{0},
      reply_failures{0};
  std::mutex mu;
  std::condition_variable idle;
  std::uint64_t in_flight = 0;  // guarded by mu
};

namespace {

// Where a finished request goes: its reply, from the worker that computed
// it. Holds the server state weakly: a reply after shutdown is dropped and
// its request left to the broker, which requeues it with the connection.
class ReplyRoute final : public Responder {
 public:
  ReplyRoute(std::weak_ptr<AmqpInferenceServer::State> state, std::uint64_t delivery_tag,
             std::string reply_to, std::string correlation_id)
      : state_(std::move(state)),
        delivery_tag_(delivery_tag),
        reply_to_(std::move(reply_to)),
        correlation_id_(std::move(correlation_id)) {}

  void complete(std::unique_ptr<InferenceRequest> r) override {
    const auto state = state_.lock();
    if (!state) return;
    ReplyEnvelope reply;
    reply.id = r->tag;
    std::string message;
    if (!r->status.ok()) {
      reply.code = reply_code_for(r->status);
      message = "model '" + r->model + "': " + std::string(r->status.message());
      reply.message = message;
    } else {
      const auto infos = r->served->model.outputs();
      reply.outputs.reserve(r->output_index.size());
      for (const std::uint16_t j : r->output_index) {
        const OutputTensor& t = r->outputs[j];
        reply.outputs.push_back({infos[j].name, TensorView{t.dtype, t.shape, t.bytes}});
      }
    }
    state->reply(state, delivery_tag_, reply_to_, correlation_id_, reply, r->status.ok(),
                 /*unservable=*/false, r->served->metrics);
  }

 private:
  std::weak_ptr<AmqpInferenceServer::State> state_;
  std::uint64_t delivery_tag_;
  std::string reply_to_;
  std::string correlation_id_;
};

}  // namespace

void AmqpInferenceServer::State::settled() {
  std::lock_guard lock(mu);
  --in_flight;
  if (in_flight == 0) idle.notify_all();
}

void AmqpInferenceServer::State::settle(std::uint64_t delivery_tag, bool unservable) {
  // Failing here means the channel is gone: the broker requeues the
  // delivery by itself, and nothing is left to settle.
  if (unservable && !options.dead_letter_exchange.empty()) {
    rejected.fetch_add(1, std::memory_order_relaxed);
    (void)channel->reject(delivery_tag, /*requeue=*/false);
  } else {
    (void)channel->ack(delivery_tag);
  }
  settled();
}

void AmqpInferenceServer::State::reply(const std::shared_ptr<State>& self,
                                       std::uint64_t delivery_tag, const std::string& reply_to,
                                       const std::string& correlation_id,
                                       const ReplyEnvelope& envelope, bool served_ok,
                                       bool unservable, std::shared_ptr<ModelMetrics> metrics) {
  auto bytes = encode_reply(envelope);
  ReplyEnvelope fallback;
  if (!bytes) {  // an output too large for the envelope: say so instead
    fallback.id = envelope.id;
    fallback.code = ReplyCode::kInternal;
    const std::string why = std::string(bytes.error().message());
    fallback.message = why;
    bytes = encode_reply(fallback);
    served_ok = false;
    if (!bytes) {
      settle(delivery_tag, true);
      return;
    }
  }
  const bool is_error = !served_ok || envelope.code != ReplyCode::kOk;
  amqp::Message m;
  m.properties.content_type = std::string(kEnvelopeContentType);
  m.properties.correlation_id = correlation_id;
  m.body.assign(reinterpret_cast<const char*>(bytes->data()), bytes->size());
  std::weak_ptr<State> weak = self;
  const Status s = channel->publish(
      "", reply_to, std::move(m),
      [weak, delivery_tag, is_error, unservable,
       metrics = std::move(metrics)](const Status& outcome) {
        const auto state = weak.lock();
        if (!state) return;
        if (outcome.ok() || outcome.code() == ErrorCode::kNotFound) {
          if (outcome.ok()) {
            state->replies.fetch_add(1, std::memory_order_relaxed);
            if (is_error) state->error_replies.fetch_add(1, std::memory_order_relaxed);
          } else {
            state->unroutable.fetch_add(1, std::memory_order_relaxed);
          }
          if (metrics) {
            (is_error ? metrics->request_failure : metrics->request_success)
                .fetch_add(1, std::memory_order_relaxed);
          }
          state->settle(delivery_tag, unservable);
          return;
        }
        // Nacked, or the channel died: the request goes back to the queue
        // for another try (requeued by the broker when the channel is gone).
        state->reply_failures.fetch_add(1, std::memory_order_relaxed);
        (void)state->channel->nack(delivery_tag, false, /*requeue=*/true);
        state->settled();
      },
      // Mandatory, so a reply queue that is gone is seen (and counted) rather
      // than dropped; not for RabbitMQ's direct reply-to, whose mandatory
      // replies Debian's RabbitMQ 3.10 returned as unroutable although it
      // had delivered them (seen in amqp_server_test).
      amqp::PublishOptions{.mandatory = !reply_to.starts_with(kDirectReplyToPrefix)});
  if (!s.ok()) {
    reply_failures.fetch_add(1, std::memory_order_relaxed);
    (void)channel->nack(delivery_tag, false, true);
    settled();
  }
}

void AmqpInferenceServer::State::reply_error(const std::shared_ptr<State>& self,
                                             const amqp::Delivery& d, std::uint64_t id,
                                             ReplyCode code, std::string_view message) {
  ReplyEnvelope e;
  e.id = id;
  e.code = code;
  e.message = message;
  // Malformed or misaddressed: dead-lettered when there is somewhere to.
  const bool unservable = code == ReplyCode::kBadRequest || code == ReplyCode::kNotFound;
  reply(self, d.delivery_tag, *d.properties.reply_to, d.properties.correlation_id.value_or(""), e,
        false, unservable, nullptr);
}

void AmqpInferenceServer::State::handle(const std::shared_ptr<State>& self, amqp::Delivery&& d) {
  const MonoTime received = now();
  requests.fetch_add(1, std::memory_order_relaxed);
  {
    std::lock_guard lock(mu);
    ++in_flight;
  }
  const auto message = std::as_bytes(std::span(d.body.data(), d.body.size()));
  if (!d.properties.reply_to || d.properties.reply_to->empty()) {
    // Nobody to answer: say so in the log, and never requeue it.
    std::fprintf(stderr,
                 "{\"level\":\"warn\",\"event\":\"amqp_request_without_reply_to\",\"queue\":"
                 "\"%s\",\"request_id\":%llu}\n",
                 d.routing_key.c_str(), static_cast<unsigned long long>(request_id_of(message)));
    rejected.fetch_add(1, std::memory_order_relaxed);
    if (!options.dead_letter_exchange.empty()) {
      (void)channel->reject(d.delivery_tag, false);
    } else {
      (void)channel->ack(d.delivery_tag);
    }
    settled();
    return;
  }
  RequestEnvelope env;
  if (Status s = decode_request(message, env); !s.ok()) {
    return reply_error(self, d, request_id_of(message), ReplyCode::kBadRequest, s.message());
  }
  // The envelope names the model (the queue it came through need not:
  // any exchange and binding may route requests here).
  auto admitted = detail::admit(repo, env.model, env.version);
  if (!admitted) {
    return reply_error(self, d, env.id, reply_code_for(admitted.error()),
                       admitted.error().message());
  }
  std::shared_ptr<ServedModel> served = std::move(*admitted);
  auto request = std::make_unique<InferenceRequest>();
  request->model = std::string(env.model);
  request->id = std::to_string(env.id);
  request->tag = env.id;
  request->received = received;
  request->requested_outputs.assign(env.outputs.begin(), env.outputs.end());
  // The inputs are views into the delivery's body; the request takes the
  // body (a move keeps the bytes where they are, but re-base the views on
  // the new owner rather than rely on it).
  const std::byte* old_base = message.data();
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  spans.reserve(env.inputs.size());
  for (const secure::NamedTensor& t : env.inputs) {
    spans.emplace_back(static_cast<std::size_t>(t.tensor.data.data() - old_base),
                       t.tensor.data.size());
  }
  std::optional<Nanos> timeout;
  if (env.timeout_us != 0) {
    timeout = std::chrono::microseconds(std::min(env.timeout_us, kMaxTimeoutUs));
  }
  const std::uint64_t id = env.id;
  request->inputs.reserve(env.inputs.size());
  for (std::size_t i = 0; i < env.inputs.size(); ++i) {
    InputTensor in;
    in.name = std::string(env.inputs[i].name);
    in.dtype = env.inputs[i].tensor.dtype;
    in.shape = env.inputs[i].tensor.shape;
    request->inputs.push_back(std::move(in));
  }
  request->body = std::move(d.body);
  const auto* base = reinterpret_cast<const std::byte*>(request->body.data());
  for (std::size_t i = 0; i < spans.size(); ++i) {
    request->inputs[i].data = {base + spans[i].first, spans[i].second};
  }
  request->responder = std::make_shared<ReplyRoute>(self, d.delivery_tag, *d.properties.reply_to,
                                                    d.properties.correlation_id.value_or(""));
  if (Status s = detail::enqueue(repo, served, request, timeout); !s.ok()) {
    served->metrics->request_failure.fetch_add(1, std::memory_order_relaxed);
    return reply_error(self, d, id, reply_code_for(s),
                       "model '" + std::string(served->name) + "': " + std::string(s.message()));
  }
  served->batcher->flush();
}

AmqpInferenceServer::AmqpInferenceServer(std::shared_ptr<State> state) : state_(std::move(state)) {}

AmqpInferenceServer::~AmqpInferenceServer() { (void)shutdown(mono_now()); }

Result<std::unique_ptr<AmqpInferenceServer>> AmqpInferenceServer::create(
    AmqpServerOptions options, ModelRepository& repository) {
  if (options.prefetch == 0) {
    return invalid_argument("amqp front end: prefetch must be at least 1");
  }
  return std::unique_ptr<AmqpInferenceServer>(
      new AmqpInferenceServer(std::make_shared<State>(std::move(options), repository)));
}

Status AmqpInferenceServer::start() {
  State& s = *state_;
  if (s.started) return failed_precondition("amqp front end: already started");
  s.started = true;
  const std::string where = "amqp front end (" + s.options.connection.host + ":" +
                            std::to_string(s.options.connection.port) + ")";
  auto conn = amqp::Connection::connect(s.options.connection);
  if (!conn) return Status(conn.error().code(), where + ": " + std::string(conn.error().message()));
  s.connection = std::move(*conn);
  auto ch = s.connection->open_channel();
  if (!ch) return Status(ch.error().code(), where + ": " + std::string(ch.error().message()));
  s.channel = std::move(*ch);
  if (Status st = s.channel->confirm_select().get(); !st.ok()) {
    return Status(st.code(), where + ": confirm.select: " + std::string(st.message()));
  }
  if (Status st = s.channel->qos(s.options.prefetch).get(); !st.ok()) {
    return Status(st.code(), where + ": basic.qos: " + std::string(st.message()));
  }
  std::vector<std::string> names;
  for (const ModelStatus& m : s.repo.index()) {
    if (std::find(names.begin(), names.end(), m.name) == names.end()) names.push_back(m.name);
  }
  const std::weak_ptr<State> weak = state_;
  for (const std::string& name : names) {
    const std::string queue = s.options.queue_prefix + name;
    amqp::QueueOptions qo;
    qo.durable = true;
    if (!s.options.dead_letter_exchange.empty()) {
      qo.arguments = amqp::FieldTable{
          {"x-dead-letter-exchange", amqp::FieldValue(s.options.dead_letter_exchange)}};
    }
    auto declared = s.channel->queue_declare(queue, qo).get();
    if (!declared) {
      return Status(declared.error().code(),
                    where + ": queue '" + queue + "': " + std::string(declared.error().message()));
    }
    auto tag = s.channel
                   ->consume(queue,
                             [weak](amqp::Delivery&& d) {
                               if (auto state = weak.lock()) state->handle(state, std::move(d));
                             })
                   .get();
    if (!tag) {
      return Status(tag.error().code(),
                    where + ": consume '" + queue + "': " + std::string(tag.error().message()));
    }
    s.queues.push_back(queue);
    s.consumer_tags.push_back(*tag);
  }
  return {};
}

std::vector<std::string> AmqpInferenceServer::queues() const { return state_->queues; }

AmqpServerStats AmqpInferenceServer::stats() const {
  const State& s = *state_;
  AmqpServerStats out;
  out.requests = s.requests.load();
  out.replies = s.replies.load();
  out.error_replies = s.error_replies.load();
  out.rejected = s.rejected.load();
  out.unroutable = s.unroutable.load();
  out.reply_failures = s.reply_failures.load();
  if (s.connection) out.recoveries = s.connection->stats().recoveries;
  {
    std::lock_guard lock(state_->mu);
    out.in_flight = s.in_flight;
  }
  return out;
}

Status AmqpInferenceServer::shutdown(MonoTime deadline) {
  State& s = *state_;
  if (s.stopped) return {};
  s.stopped = true;
  if (!s.channel) return {};
  for (const std::string& tag : s.consumer_tags) (void)s.channel->cancel(tag).get();
  bool drained = false;
  {
    std::unique_lock lock(s.mu);
    drained = s.idle.wait_until(lock, deadline, [&] { return s.in_flight == 0; });
  }
  const std::uint64_t left = stats().in_flight;
  (void)s.channel->close().get();
  (void)s.connection->close();
  if (!drained) {
    return deadline_exceeded("amqp front end: " + std::to_string(left) +
                             " requests still unanswered at shutdown; the broker requeues them");
  }
  return {};
}

}  // namespace myelin::serve
