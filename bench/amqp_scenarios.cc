#include "bench/amqp_scenarios.h"

#include <atomic>
#include <barrier>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "myelin/amqp/channel_pool.h"

namespace myelin::bench::amqp_scenarios {
namespace {

using namespace std::chrono_literals;

std::string fresh_queue(const std::string& stem) {
  static std::atomic<int> n{0};
  return "myelin-bench-" + stem + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(n.fetch_add(1));
}

double seconds_between(MonoTime a, MonoTime b) {
  return std::chrono::duration<double>(b - a).count();
}

// Polls the depth of `queue` until it reaches `expect` (or 10 s pass);
// returns the last depth seen and when it was seen.
std::pair<std::size_t, MonoTime> settled_depth(amqp::Channel& ch, const std::string& queue,
                                               std::size_t expect) {
  std::size_t last = 0;
  const MonoTime give_up = mono_now() + 10s;
  amqp::QueueOptions passive;
  passive.passive = true;
  for (;;) {
    auto info = ch.queue_declare(queue, passive).get();
    const MonoTime now = mono_now();
    if (!info) return {last, now};
    last = info->message_count;
    if (last >= expect || now > give_up) return {last, now};
    std::this_thread::sleep_for(200us);
  }
}

}  // namespace

Result<PublishResult> publish(std::shared_ptr<amqp::Connection> connection, std::size_t threads,
                              std::size_t per_thread, bool confirms, std::size_t pool_size) {
  MYELIN_ASSIGN_OR_RETURN(auto admin, connection->open_channel());
  const std::string queue = fresh_queue("publish");
  {
    auto declared = admin->queue_declare(queue).get();
    if (!declared) return declared.error();
  }
  amqp::ChannelPoolOptions po;
  po.size = pool_size;
  po.open_eagerly = pool_size;
  po.confirm_window = confirms ? 4096 : 0;
  MYELIN_ASSIGN_OR_RETURN(auto pool, amqp::ChannelPool::create(std::move(connection), po));

  const std::size_t total = threads * per_thread;
  // Shared with the publish callbacks, which may outlive this frame when the
  // scenario gives up waiting for them.
  struct Tally {
    explicit Tally(std::size_t n) : latency_ns(n, 0) {}
    std::vector<std::int64_t> latency_ns;
    std::atomic<std::size_t> settled{0};
    std::atomic<std::size_t> failed{0};
    std::promise<MonoTime> all_settled;
  };
  auto tally = std::make_shared<Tally>(total);
  MonoTime start{};
  std::barrier gate(static_cast<std::ptrdiff_t>(threads), [&]() noexcept { start = mono_now(); });
  const std::string body(kMessageBytes, 'm');

  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      gate.arrive_and_wait();
      for (std::size_t i = 0; i < per_thread; ++i) {
        const std::size_t slot = t * per_thread + i;
        const MonoTime t0 = mono_now();
        auto settle = [tally, total, slot, t0](const Status& s) {
          const MonoTime now = mono_now();
          tally->latency_ns[slot] = (now - t0).count();
          if (!s.ok()) tally->failed.fetch_add(1, std::memory_order_relaxed);
          if (tally->settled.fetch_add(1, std::memory_order_acq_rel) + 1 == total) {
            tally->all_settled.set_value(now);
          }
        };
        auto lease = pool->acquire(30s);
        if (!lease) {
          settle(lease.error());
          continue;
        }
        const Status st = (*lease)->publish("", queue, amqp::Message{{}, body}, settle);
        lease->reset();
        if (!st.ok()) settle(st);  // the callback never runs when publish fails
      }
    });
  }
  for (auto& w : workers) w.join();
  auto f = tally->all_settled.get_future();
  if (f.wait_for(120s) != std::future_status::ready) {
    return deadline_exceeded("publish " + std::to_string(threads) + "x" +
                             std::to_string(per_thread) + ": only " +
                             std::to_string(tally->settled.load()) + " of " +
                             std::to_string(total) + " publishes settled within 120 s");
  }
  const MonoTime end = f.get();
  PublishResult r;
  r.threads = threads;
  r.per_thread = per_thread;
  r.confirms = confirms;
  r.seconds = seconds_between(start, end);
  r.msgs_per_s = static_cast<double>(total) / r.seconds;
  LatencyRecorder rec(total);
  for (std::int64_t ns : tally->latency_ns) rec.record(Nanos(ns));
  r.latency = rec.summarize();
  r.failed = tally->failed.load();
  const auto [depth, when] = settled_depth(*admin, queue, total);
  r.in_queue = depth;
  r.broker_seconds = seconds_between(start, when);
  r.broker_msgs_per_s = static_cast<double>(depth) / r.broker_seconds;
  (void)admin->queue_delete(queue).get();
  return r;
}

Result<PoolResult> pool_churn(std::shared_ptr<amqp::Connection> connection, std::size_t threads,
                              std::size_t ops_per_thread, std::size_t pool_size) {
  amqp::ChannelPoolOptions po;
  po.size = pool_size;
  po.open_eagerly = pool_size;
  MYELIN_ASSIGN_OR_RETURN(auto pool, amqp::ChannelPool::create(std::move(connection), po));
  std::vector<LatencyRecorder> per_thread(threads, LatencyRecorder(ops_per_thread));
  std::atomic<std::size_t> errors{0};
  MonoTime start{};
  std::barrier gate(static_cast<std::ptrdiff_t>(threads), [&]() noexcept { start = mono_now(); });
  std::vector<std::thread> workers;
  for (std::size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      gate.arrive_and_wait();
      for (std::size_t i = 0; i < ops_per_thread; ++i) {
        const MonoTime t0 = mono_now();
        auto lease = pool->acquire(30s);
        if (!lease) {
          errors.fetch_add(1);
          continue;
        }
        lease->reset();
        per_thread[t].record_since(t0);
      }
    });
  }
  for (auto& w : workers) w.join();
  const MonoTime end = mono_now();
  if (errors.load() != 0) {
    return internal_error("pool churn: " + std::to_string(errors.load()) + " acquires failed");
  }
  LatencyRecorder all(threads * ops_per_thread);
  for (const auto& r : per_thread) all.merge(r);
  PoolResult r;
  r.threads = threads;
  r.ops = threads * ops_per_thread;
  r.ops_per_s = static_cast<double>(r.ops) / seconds_between(start, end);
  r.latency = all.summarize();
  return r;
}

Result<ConsumersResult> consumers(amqp::Connection& connection, std::size_t n_consumers,
                                  std::size_t messages, double offered_per_s) {
  MYELIN_ASSIGN_OR_RETURN(auto producer, connection.open_channel());
  const std::string queue = fresh_queue("consumers");
  {
    auto declared = producer->queue_declare(queue).get();
    if (!declared) return declared.error();
  }
  // Shared with the handlers: a late delivery (after a timeout) must not
  // touch this frame.
  struct Tally {
    explicit Tally(std::size_t n) : seen(n), e2e(n) {}
    std::vector<std::atomic<std::uint8_t>> seen;
    std::atomic<std::size_t> received{0};
    std::atomic<std::size_t> duplicates{0};
    std::atomic<std::int64_t> last_ns{0};
    std::mutex lat_mu;
    LatencyRecorder e2e;
    std::promise<void> all_in;
  };
  auto tally = std::make_shared<Tally>(messages);

  const MonoTime t_start = mono_now();
  std::vector<std::shared_ptr<amqp::Channel>> channels;
  channels.reserve(n_consumers);
  std::vector<std::future<Result<std::string>>> tags;
  for (std::size_t i = 0; i < n_consumers; ++i) {
    MYELIN_ASSIGN_OR_RETURN(auto ch, connection.open_channel());
    MYELIN_RETURN_IF_ERROR(ch->qos(10).get());
    std::weak_ptr<amqp::Channel> weak = ch;
    tags.push_back(ch->consume(queue, [tally, weak, messages](amqp::Delivery&& d) {
      const MonoTime now = mono_now();
      std::uint64_t sent = 0;
      std::uint64_t seq = 0;
      if (d.body.size() >= 16) {
        std::memcpy(&sent, d.body.data(), 8);
        std::memcpy(&seq, d.body.data() + 8, 8);
      }
      if (auto channel = weak.lock()) (void)channel->ack(d.delivery_tag);
      Tally& t = *tally;
      if (seq >= messages) return;
      if (t.seen[seq].exchange(1) != 0) {
        t.duplicates.fetch_add(1);
        return;
      }
      {
        std::lock_guard lock(t.lat_mu);
        t.e2e.record(now - MonoTime(Nanos(sent)));
      }
      t.last_ns.store(now.time_since_epoch().count(), std::memory_order_relaxed);
      if (t.received.fetch_add(1) + 1 == messages) t.all_in.set_value();
    }));
    channels.push_back(std::move(ch));
  }
  for (auto& t : tags) {
    auto r = t.get();
    if (!r) return r.error();
  }
  const MonoTime t_ready = mono_now();

  std::string body(kMessageBytes, 'c');
  const MonoTime t_publish = mono_now();
  for (std::size_t seq = 0; seq < messages; ++seq) {
    if (offered_per_s > 0) {  // open loop: message seq leaves at seq / rate
      const MonoTime due =
          t_publish +
          Nanos(static_cast<std::int64_t>(1e9 * static_cast<double>(seq) / offered_per_s));
      // Sleep, don't spin: the broker and the consumers need both cores.
      if (mono_now() < due) std::this_thread::sleep_until(due);
    }
    const std::uint64_t now = static_cast<std::uint64_t>(mono_now().time_since_epoch().count());
    std::memcpy(body.data(), &now, 8);
    std::memcpy(body.data() + 8, &seq, 8);
    MYELIN_RETURN_IF_ERROR(producer->publish("", queue, amqp::Message{{}, body}));
  }
  auto f = tally->all_in.get_future();
  (void)f.wait_for(60s);  // a loss shows as received < published below

  ConsumersResult r;
  r.consumers = n_consumers;
  r.offered_per_s = offered_per_s;
  r.published = messages;
  r.received = tally->received.load();
  r.duplicates = tally->duplicates.load();
  r.loss_pct = 100.0 * static_cast<double>(messages - r.received) / static_cast<double>(messages);
  const MonoTime last(Nanos(tally->last_ns.load()));
  r.consume_msgs_per_s = static_cast<double>(r.received) / seconds_between(t_publish, last);
  r.startup_ms = seconds_between(t_start, t_ready) * 1000.0;
  {
    std::lock_guard lock(tally->lat_mu);
    r.e2e = tally->e2e.summarize();
  }
  for (auto& ch : channels) (void)ch->close().get();
  (void)producer->queue_delete(queue).get();
  return r;
}

}  // namespace myelin::bench::amqp_scenarios
