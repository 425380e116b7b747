#include "bench/secure_scenarios.h"

#include <openssl/evp.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <vector>

#include "myelin/secure/channel.h"
#include "myelin/secure/session.h"

namespace myelin::bench::secure_scenarios {
namespace {

using secure::BlockingChannel;
using secure::Mode;
using secure::Role;
using secure::Session;
using secure::SessionConfig;
using secure_peers::Conn;

// The attestation setup of every myelin measurement: mutual mode, the mock
// provider and verifier (as the seed), one measured value checked by policy.
struct Attest {
  std::vector<std::byte> key = secure::to_bytes("bench-mock-key");
  secure::MockProvider server{key, "server", {{"code", secure::to_bytes("server-v1")}}};
  secure::MockProvider client{key, "client", {{"code", secure::to_bytes("client-v1")}}};
  secure::MockVerifier verifier{key};
  SessionConfig config(Role role) const {
    SessionConfig c;
    c.role = role;
    c.min_mode = c.max_mode = Mode::kMutual;
    c.provider = role == Role::kResponder ? &server : &client;
    c.verifier = &verifier;
    c.policy.rules = {
        {"code", {secure::to_bytes(role == Role::kResponder ? "client-v1" : "server-v1")}}};
    return c;
  }
};

const Attest& attest() {
  static const Attest a;
  return a;
}
}  // namespace

SessionConfig bench_config(Role role) { return attest().config(role); }

namespace {

struct NullHandler : secure::SessionHandler {
  void on_message(std::span<const std::byte>) override {}
};

Status check(bool ok, const char* what) {
  return ok ? ok_status() : internal_error(std::string("bench secure: ") + what + " failed");
}

SessionConfig with_pool(SessionConfig c, secure::KeyPool* pool) {
  c.key_pool = pool;
  return c;
}

Status refill(secure::KeyPool* pool) {
  if (pool == nullptr) return ok_status();
  return pool->refill().error();  // ok when it has a value
}

}  // namespace

Result<LatencyRecorder> myelin_handshake_one_thread(std::size_t n, secure::KeyPool* pool) {
  LatencyRecorder rec(n);
  const MonoTime now = mono_now();
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    NullHandler ih, rh;
    MYELIN_RETURN_IF_ERROR(refill(pool));
    const MonoTime t0 = mono_now();
    auto i = Session::create(with_pool(attest().config(Role::kInitiator), pool), &ih);
    auto r = Session::create(with_pool(attest().config(Role::kResponder), pool), &rh);
    if (!i || !r) return i ? r.error() : i.error();
    MYELIN_RETURN_IF_ERROR((*r)->start(now));
    MYELIN_RETURN_IF_ERROR((*i)->start(now));
    for (int step = 0; step < 3; ++step) {
      Session& from = step == 1 ? **r : **i;
      Session& to = step == 1 ? **i : **r;
      auto out = from.output();
      auto in = to.input_buffer(out.size());
      std::memcpy(in.data(), out.data(), out.size());
      from.consume_output(out.size());
      MYELIN_RETURN_IF_ERROR(to.commit_input(out.size(), now));
    }
    if (!(*i)->established() || !(*r)->established()) {
      return internal_error("bench secure: in-memory handshake did not complete");
    }
    if (k >= n / 10) rec.record_since(t0);  // the first 10% warm up
  }
  return rec;
}

Result<LatencyRecorder> myelin_handshake_two_threads(PairFactory& f, Worker& w, std::size_t n,
                                                     secure::KeyPool* pool,
                                                     std::size_t* agreed_early, ServerStart start) {
  LatencyRecorder rec(n);
  std::atomic<bool> server_ok{true};
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    MYELIN_RETURN_IF_ERROR(refill(pool));
    MYELIN_ASSIGN_OR_RETURN(Conn p, f.make());
    MYELIN_ASSIGN_OR_RETURN(auto server_stream, p.server.take_stream());
    MYELIN_ASSIGN_OR_RETURN(auto client_stream, p.client.take_stream());
    auto* ss = server_stream.release();
    auto respond = [ss, &server_ok, pool] {
      auto ch = BlockingChannel::handshake(std::unique_ptr<net::Stream>(ss),
                                           with_pool(attest().config(Role::kResponder), pool));
      if (!ch) server_ok = false;
    };
    if (start == ServerStart::kWaiting) {
      w.post_started(std::move(respond));
    } else {
      w.post(std::move(respond));
    }
    const MonoTime t0 = mono_now();
    auto ch = BlockingChannel::handshake(std::move(client_stream),
                                         with_pool(attest().config(Role::kInitiator), pool));
    const Nanos took = mono_now() - t0;
    if (!ch) return ch.error();
    if (k >= n / 10) {
      rec.record(took);
      if (agreed_early != nullptr && (*ch)->session().stats().agreed_early) ++*agreed_early;
    }
    w.wait_idle();
    if (!server_ok) return internal_error("bench secure: server handshake failed");
  }
  return rec;
}

Result<LatencyRecorder> tls_handshake_one_thread(const TlsPeer& tls, std::size_t n) {
  LatencyRecorder rec(n);
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    const MonoTime t0 = mono_now();
    MYELIN_RETURN_IF_ERROR(check(secure_peers::tls_handshake_in_memory(tls), "TLS handshake"));
    if (k >= n / 10) rec.record_since(t0);
  }
  return rec;
}

Result<LatencyRecorder> tls_handshake_two_threads(const TlsPeer& tls, PairFactory& f, Worker& w,
                                                  std::size_t n) {
  LatencyRecorder rec(n);
  std::atomic<bool> server_ok{true};
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    MYELIN_ASSIGN_OR_RETURN(Conn p, f.make());
    SSL* s = tls.new_server();
    SSL* c = tls.new_client();
    if (s == nullptr || c == nullptr || !p.server.attach(s) || !p.client.attach(c)) {
      SSL_free(s);
      SSL_free(c);
      return internal_error("bench secure: TLS setup failed");
    }
    w.post_started([s, &server_ok] {
      if (SSL_accept(s) != 1) server_ok = false;
    });
    const MonoTime t0 = mono_now();
    const int r = SSL_connect(c);
    const Nanos took = mono_now() - t0;
    w.wait_idle();
    SSL_free(s);
    SSL_free(c);
    if (r != 1 || !server_ok) return internal_error("bench secure: TLS handshake failed");
    if (k >= n / 10) rec.record(took);
  }
  return rec;
}

Result<LatencyRecorder> x25519_floor(std::size_t n, bool with_keygen) {
  LatencyRecorder rec(n);
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    MonoTime t0 = mono_now();
    EVP_PKEY* a = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
    EVP_PKEY* b = EVP_PKEY_Q_keygen(nullptr, nullptr, "X25519");
    if (!with_keygen) t0 = mono_now();
    bool ok = a != nullptr && b != nullptr;
    for (auto [mine, peer] : {std::pair{a, b}, std::pair{b, a}}) {
      EVP_PKEY_CTX* ctx = ok ? EVP_PKEY_CTX_new(mine, nullptr) : nullptr;
      unsigned char out[32];
      std::size_t len = sizeof(out);
      ok = ok && ctx != nullptr && EVP_PKEY_derive_init(ctx) == 1 &&
           EVP_PKEY_derive_set_peer(ctx, peer) == 1 && EVP_PKEY_derive(ctx, out, &len) == 1;
      EVP_PKEY_CTX_free(ctx);
    }
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
    if (!ok) return internal_error("bench secure: X25519 floor failed");
    if (k >= n / 10) rec.record_since(t0);
  }
  return rec;
}

// --- round trips -------------------------------------------------------------------

Result<LatencyRecorder> plain_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n) {
  MYELIN_ASSIGN_OR_RETURN(Conn p, f.make());
  // Both ends watch for the echo before blocking, as MSC1's channel does.
  p.client.set_read_spin(std::chrono::microseconds(50));
  p.server.set_read_spin(std::chrono::microseconds(50));
  w.post([&server = p.server] {
    std::vector<std::byte> buf;
    for (;;) {
      const long m = secure_peers::plain_recv(server, buf);
      if (m < 0 || !secure_peers::plain_send(server, {buf.data(), static_cast<std::size_t>(m)}))
        return;
    }
  });
  std::vector<std::byte> msg(size, std::byte{1}), back;
  LatencyRecorder rec(n);
  bool ok = true;
  for (std::size_t k = 0; k < n + n / 10 && ok; ++k) {
    const MonoTime t0 = mono_now();
    ok = secure_peers::plain_send(p.client, msg) && secure_peers::plain_recv(p.client, back) >= 0;
    if (ok && k >= n / 10) rec.record_since(t0);
  }
  p.client.shutdown();  // the echo ends (it uses p.server, which must outlive it)
  w.wait_idle();
  if (!ok) return internal_error("bench secure: plaintext echo failed");
  return rec;
}

Result<LatencyRecorder> secure_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n) {
  MYELIN_ASSIGN_OR_RETURN(Conn p, f.make());
  MYELIN_ASSIGN_OR_RETURN(auto server_stream, p.server.take_stream());
  MYELIN_ASSIGN_OR_RETURN(auto client_stream, p.client.take_stream());
  auto* ss = server_stream.release();
  w.post([ss] {
    auto ch = BlockingChannel::handshake(std::unique_ptr<net::Stream>(ss),
                                         attest().config(Role::kResponder));
    if (!ch) return;
    BlockingChannel& c = **ch;
    const std::function<void(std::span<const std::byte>)> echo =
        [&c](std::span<const std::byte> m) { (void)c.send(m); };
    while (c.receive(echo, std::chrono::seconds(30))) {
    }
  });
  auto ch = BlockingChannel::handshake(std::move(client_stream), attest().config(Role::kInitiator));
  if (!ch) return ch.error();
  std::vector<std::byte> msg(size, std::byte{1});
  std::size_t got = 0;
  const std::function<void(std::span<const std::byte>)> sink =
      [&got](std::span<const std::byte> m) { got += m.size(); };
  LatencyRecorder rec(n);
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    const MonoTime t0 = mono_now();
    MYELIN_RETURN_IF_ERROR((*ch)->send(msg));
    got = 0;
    while (got < size) MYELIN_RETURN_IF_ERROR((*ch)->receive(sink).error());
    if (k >= n / 10) rec.record_since(t0);
  }
  (void)(*ch)->close();
  ch->reset();
  w.wait_idle();
  return rec;
}

}  // namespace myelin::bench::secure_scenarios
