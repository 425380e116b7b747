#include "bench/secure_scenarios.h"

#include <openssl/evp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
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
using secure_peers::FdPair;

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

struct NullHandler : secure::SessionHandler {
  void on_message(std::span<const std::byte>) override {}
};

Result<std::unique_ptr<net::Stream>> adopt(int& fd) {
  const int f = fd;
  fd = -1;
  return net::Stream::adopt(f, "bench");
}

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
                                                     std::size_t* agreed_early) {
  LatencyRecorder rec(n);
  std::atomic<bool> server_ok{true};
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    MYELIN_RETURN_IF_ERROR(refill(pool));
    MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
    MYELIN_ASSIGN_OR_RETURN(auto server_stream, adopt(p.server));
    MYELIN_ASSIGN_OR_RETURN(auto client_stream, adopt(p.client));
    auto* ss = server_stream.release();
    w.post([ss, &server_ok, pool] {
      auto ch = BlockingChannel::handshake(std::unique_ptr<net::Stream>(ss),
                                           with_pool(attest().config(Role::kResponder), pool));
      if (!ch) server_ok = false;
    });
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
    MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
    SSL* s = tls.new_server();
    SSL* c = tls.new_client();
    SSL_set_fd(s, p.server);
    SSL_set_fd(c, p.client);
    w.post([s, &server_ok] {
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
  MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
  const int sfd = p.server;
  w.post([sfd] {
    std::vector<std::byte> buf;
    for (;;) {
      const long m = secure_peers::plain_recv(sfd, buf);
      if (m < 0 || !secure_peers::plain_send(sfd, {buf.data(), static_cast<std::size_t>(m)}))
        return;
    }
  });
  std::vector<std::byte> msg(size, std::byte{1}), back;
  LatencyRecorder rec(n);
  for (std::size_t k = 0; k < n + n / 10; ++k) {
    const MonoTime t0 = mono_now();
    if (!secure_peers::plain_send(p.client, msg) || secure_peers::plain_recv(p.client, back) < 0) {
      return internal_error("bench secure: plaintext echo failed");
    }
    if (k >= n / 10) rec.record_since(t0);
  }
  ::shutdown(p.client, SHUT_WR);
  w.wait_idle();
  return rec;
}

Result<LatencyRecorder> secure_rtt(PairFactory& f, Worker& w, std::size_t size, std::size_t n) {
  MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
  MYELIN_ASSIGN_OR_RETURN(auto server_stream, adopt(p.server));
  MYELIN_ASSIGN_OR_RETURN(auto client_stream, adopt(p.client));
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

// --- throughput ----------------------------------------------------------------------

namespace {
double mb_per_s(std::size_t bytes, Nanos took) {
  return static_cast<double>(bytes) / 1e6 / (static_cast<double>(took.count()) / 1e9);
}

// The calling thread's CPU time so far, user and system, in ns.
struct ThreadCpu {
  double user_ns = 0;
  double sys_ns = 0;
  static ThreadCpu now() {
    rusage ru{};
    (void)::getrusage(RUSAGE_THREAD, &ru);
    const auto ns = [](const timeval& tv) {
      return static_cast<double>(tv.tv_sec) * 1e9 + static_cast<double>(tv.tv_usec) * 1e3;
    };
    return {ns(ru.ru_utime), ns(ru.ru_stime)};
  }
  ThreadCpu operator-(const ThreadCpu& o) const { return {user_ns - o.user_ns, sys_ns - o.sys_ns}; }
  ThreadCpu& operator+=(const ThreadCpu& o) {
    user_ns += o.user_ns;
    sys_ns += o.sys_ns;
    return *this;
  }
  [[nodiscard]] SideCpu per_byte(double bytes) const { return {user_ns / bytes, sys_ns / bytes}; }
};

// The receiver's CPU clock after each burst, read by the sender once the
// burst's acknowledgement arrived (the receiver records before it acks).
class ReceiverCpuLog {
 public:
  void record() {
    const ThreadCpu c = ThreadCpu::now();
    std::lock_guard lock(mu_);
    after_burst_.push_back(c);
  }
  // CPU from the end of burst `first` to the end of burst `last`.
  [[nodiscard]] ThreadCpu between(std::size_t first, std::size_t last) const {
    std::lock_guard lock(mu_);
    if (last >= after_burst_.size() || first > last) return {};
    return after_burst_[last] - after_burst_[first];
  }

 private:
  mutable std::mutex mu_;
  std::vector<ThreadCpu> after_burst_;
};

// Sender-side accounting over the timed samples (sample 0 warms up).
struct SenderCpu {
  ThreadCpu total;
  ThreadCpu at_start;
  void start() { at_start = ThreadCpu::now(); }
  void stop() { total += ThreadCpu::now() - at_start; }
  void report(ThroughputCpu* out, const ReceiverCpuLog& log, std::size_t samples,
              double bytes) const {
    if (out == nullptr) return;
    out->sender = total.per_byte(bytes);
    out->receiver = log.between(0, samples).per_byte(bytes);
  }
};
}  // namespace

Result<LatencyRecorder> plain_throughput(PairFactory& f, Worker& w, std::size_t size,
                                         std::size_t burst, std::size_t samples, Writes writes,
                                         ThroughputCpu* cpu) {
  MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
  const int sfd = p.server;
  auto log = std::make_shared<ReceiverCpuLog>();
  w.post([sfd, burst, log] {
    secure_peers::PlainReader reader(sfd);
    std::span<const std::byte> m;
    for (;;) {
      for (std::size_t i = 0; i < burst; ++i) {
        if (!reader.next(m)) return;
      }
      log->record();
      const char ack = 1;
      if (!secure_peers::write_all(sfd, &ack, 1)) return;
    }
  });
  std::vector<std::byte> msg(size, std::byte{2});
  secure_peers::PlainWriter writer(p.client);
  LatencyRecorder rec(samples);
  SenderCpu sender;
  for (std::size_t s = 0; s <= samples; ++s) {  // sample 0 warms up
    if (s > 0) sender.start();
    const MonoTime t0 = mono_now();
    bool ok = true;
    for (std::size_t i = 0; i < burst && ok; ++i) {
      ok = writes == Writes::kCoalesced ? writer.queue(msg)
                                        : secure_peers::plain_send(p.client, msg);
    }
    if (ok && writes == Writes::kCoalesced) ok = writer.flush();
    if (!ok) return internal_error("plaintext send failed");
    char ack = 0;
    if (!secure_peers::read_all(p.client, &ack, 1)) return internal_error("plaintext ack failed");
    if (s > 0) {
      rec.record_value(mb_per_s(size * burst, mono_now() - t0));
      sender.stop();
    }
  }
  sender.report(cpu, *log, samples, static_cast<double>(size * burst * samples));
  ::shutdown(p.client, SHUT_WR);
  w.wait_idle();
  return rec;
}

Result<LatencyRecorder> secure_throughput(PairFactory& f, Worker& w, std::size_t size,
                                          std::size_t burst, std::size_t samples, Writes writes,
                                          const std::function<Status()>& between,
                                          ThroughputCpu* cpu) {
  MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
  MYELIN_ASSIGN_OR_RETURN(auto server_stream, adopt(p.server));
  MYELIN_ASSIGN_OR_RETURN(auto client_stream, adopt(p.client));
  auto* ss = server_stream.release();
  auto log = std::make_shared<ReceiverCpuLog>();
  w.post([ss, burst, log] {
    auto ch = BlockingChannel::handshake(std::unique_ptr<net::Stream>(ss),
                                         attest().config(Role::kResponder));
    if (!ch) return;
    std::size_t count = 0;
    const std::function<void(std::span<const std::byte>)> sink =
        [&count](std::span<const std::byte>) { ++count; };
    const std::byte ack{1};
    for (;;) {
      while (count < burst) {
        if (!(*ch)->receive(sink, std::chrono::seconds(30))) return;
      }
      count -= burst;
      log->record();
      if (!(*ch)->send({&ack, 1}).ok()) return;
    }
  });
  auto ch = BlockingChannel::handshake(std::move(client_stream), attest().config(Role::kInitiator));
  if (!ch) return ch.error();
  std::vector<std::byte> msg(size, std::byte{2});
  std::size_t acks = 0;
  const std::function<void(std::span<const std::byte>)> sink = [&acks](std::span<const std::byte>) {
    ++acks;
  };
  LatencyRecorder rec(samples);
  SenderCpu sender;
  for (std::size_t s = 0; s <= samples; ++s) {
    if (s > 0) sender.start();
    const MonoTime t0 = mono_now();
    if (writes == Writes::kCoalesced) {
      for (std::size_t i = 0; i < burst; ++i) MYELIN_RETURN_IF_ERROR((*ch)->queue(msg));
      MYELIN_RETURN_IF_ERROR((*ch)->flush());
    } else {
      for (std::size_t i = 0; i < burst; ++i) MYELIN_RETURN_IF_ERROR((*ch)->send(msg));
    }
    acks = 0;
    while (acks == 0) MYELIN_RETURN_IF_ERROR((*ch)->receive(sink).error());
    if (s > 0) {
      rec.record_value(mb_per_s(size * burst, mono_now() - t0));
      sender.stop();
    }
    if (s > 0 && between) MYELIN_RETURN_IF_ERROR(between());  // untimed
  }
  sender.report(cpu, *log, samples, static_cast<double>(size * burst * samples));
  (void)(*ch)->close();
  ch->reset();
  w.wait_idle();
  return rec;
}

Result<LatencyRecorder> tls_throughput(const TlsPeer& tls, PairFactory& f, Worker& w,
                                       std::size_t size, std::size_t burst, std::size_t samples,
                                       Writes writes) {
  MYELIN_ASSIGN_OR_RETURN(FdPair p, f.make());
  SSL* s = tls.new_server();
  SSL* c = tls.new_client();
  SSL_set_fd(s, p.server);
  SSL_set_fd(c, p.client);
  SSL_set_read_ahead(s, 1);  // read records in gulps, as MSC1's reader does
  if (writes == Writes::kCoalesced) {
    // A buffering BIO over the socket BIO: records collect until 64 KiB wait
    // or BIO_flush. The socket BIO is shared with the read side, hence the
    // extra reference the chain holds.
    BIO* sock = SSL_get_wbio(c);
    BIO* buffer = BIO_new(BIO_f_buffer());
    if (buffer == nullptr || BIO_up_ref(sock) != 1 ||
        BIO_set_write_buffer_size(buffer, 64 * 1024) != 1) {
      SSL_free(s);
      SSL_free(c);
      return internal_error("bench secure: TLS buffer BIO");
    }
    SSL_set0_wbio(c, BIO_push(buffer, sock));
  }
  w.post([s, size, burst] {
    if (SSL_accept(s) != 1) return;
    std::vector<std::byte> buf(size);
    for (;;) {
      for (std::size_t i = 0; i < burst; ++i) {
        if (!secure_peers::tls_read_all(s, buf.data(), size)) return;
      }
      const char ack = 1;
      if (!secure_peers::tls_write_all(s, &ack, 1)) return;
    }
  });
  Status st;
  if (SSL_connect(c) != 1) st = internal_error("bench secure: TLS connect failed");
  std::vector<std::byte> msg(size, std::byte{2});
  LatencyRecorder rec(samples);
  for (std::size_t k = 0; k <= samples && st.ok(); ++k) {
    const MonoTime t0 = mono_now();
    for (std::size_t i = 0; i < burst && st.ok(); ++i) {
      if (!secure_peers::tls_write_all(c, msg.data(), size))
        st = internal_error("TLS write failed");
    }
    if (st.ok() && writes == Writes::kCoalesced && BIO_flush(SSL_get_wbio(c)) != 1) {
      st = internal_error("TLS flush failed");
    }
    char ack = 0;
    if (st.ok() && !secure_peers::tls_read_all(c, &ack, 1)) st = internal_error("TLS ack failed");
    if (st.ok() && k > 0) rec.record_value(mb_per_s(size * burst, mono_now() - t0));
  }
  ::shutdown(p.client, SHUT_RDWR);
  w.wait_idle();
  SSL_free(s);
  SSL_free(c);
  MYELIN_RETURN_IF_ERROR(st);
  return rec;
}

Result<LatencyRecorder> raw_aead_throughput(std::size_t size, std::size_t burst,
                                            std::size_t samples) {
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  unsigned char key[32] = {7}, nonce[12] = {0}, aad[16] = {0}, tag[16];
  if (cipher == nullptr || ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx, cipher, key, nullptr, nullptr) != 1) {
    return internal_error("bench secure: EVP ChaCha20-Poly1305 unavailable");
  }
  std::vector<unsigned char> buf(size, 3);
  LatencyRecorder rec(samples);
  bool ok = true;
  for (std::size_t s = 0; s <= samples && ok; ++s) {
    const MonoTime t0 = mono_now();
    for (std::size_t i = 0; i < burst && ok; ++i) {
      int len = 0;
      nonce[4] = static_cast<unsigned char>(i);
      ok = EVP_EncryptInit_ex2(ctx, nullptr, nullptr, nonce, nullptr) == 1 &&
           EVP_EncryptUpdate(ctx, nullptr, &len, aad, sizeof(aad)) == 1 &&
           EVP_EncryptUpdate(ctx, buf.data(), &len, buf.data(), static_cast<int>(size)) == 1 &&
           EVP_EncryptFinal_ex(ctx, tag, &len) == 1 &&
           EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
    }
    if (s > 0) rec.record_value(mb_per_s(size * burst, mono_now() - t0));
  }
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  if (!ok) return internal_error("bench secure: EVP seal failed");
  return rec;
}

}  // namespace myelin::bench::secure_scenarios
