#include "bench/secure_throughput.h"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "bench/secure_scenarios.h"
#include "myelin/base/clock.h"
#include "myelin/secure/channel.h"

namespace myelin::bench::secure_scenarios {
namespace {

using secure::BlockingChannel;
using secure::Role;
using secure_peers::Conn;

double mb_per_s(std::size_t bytes, Nanos took) {
  return static_cast<double>(bytes) / 1e6 / (static_cast<double>(took.count()) / 1e9);
}

// The calling thread's CPU time so far, user and system, in ns. The kernel
// derives both from the thread's exact run time, split in proportion to the
// ticks that found it in user space or in the kernel over its whole life, so
// the split of an interval is only meaningful for a thread that did nothing
// else: every connection has its own sender and receiver thread.
struct ThreadCpu {
  double user_ns = 0;
  double sys_ns = 0;
  static ThreadCpu now() {
    // With tick accounting the run time of a running thread is brought up to
    // date only at ticks and context switches; reading the thread's CPU
    // clock first updates it, so getrusage does not return a stale total.
    timespec ts{};
    (void)::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
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

// A thread's CPU clock after each burst: the receiver records before it
// acknowledges a burst, the sender once the acknowledgement arrived.
class CpuLog {
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

// One connection of a row: a sender thread that sends a burst when asked,
// and a receiver thread that acknowledges every burst. A derived class's
// destructor ends the connection and joins the receiver.
class OneWay {
 public:
  virtual ~OneWay() = default;
  // One burst on the sender thread, acknowledged: how long it took there.
  Result<Nanos> burst() {
    Status st;
    Nanos took{};
    sender_.post([&] {
      const MonoTime t0 = mono_now();
      st = send_burst();
      took = mono_now() - t0;
      sender_log_.record();
    });
    sender_.wait_idle();
    if (!st.ok()) return st;
    return took;
  }
  [[nodiscard]] const CpuLog& sender_cpu() const { return sender_log_; }
  [[nodiscard]] const CpuLog& receiver_cpu() const { return receiver_log_; }

 protected:
  // Sends one burst and waits for its acknowledgement (sender thread).
  virtual Status send_burst() = 0;
  // Runs `receive` on the receiver thread, on the core the sender is not on.
  template <typename F>
  void start_receiver(F receive) {
    receiver_ = std::thread([receive = std::move(receive)]() mutable {
      const secure_peers::CpuPin pin(1);
      receive();
    });
  }
  CpuLog receiver_log_;
  std::thread receiver_;

 private:
  CpuLog sender_log_;
  secure_peers::Worker sender_{0};
};

class PlainOneWay final : public OneWay {
 public:
  PlainOneWay(Conn p, std::size_t size, std::size_t burst, Writes writes)
      : p_(std::move(p)),
        msg_(size, std::byte{2}),
        burst_(burst),
        writes_(writes),
        writer_(p_.client) {
    start_receiver([this] {
      secure_peers::PlainReader reader(p_.server);
      std::span<const std::byte> m;
      for (;;) {
        for (std::size_t i = 0; i < burst_; ++i) {
          if (!reader.next(m)) return;
        }
        receiver_log_.record();
        const char ack = 1;
        if (!secure_peers::write_all(p_.server, &ack, 1)) return;
      }
    });
  }
  ~PlainOneWay() override {
    p_.client.shutdown();
    receiver_.join();
  }

 protected:
  Status send_burst() override {
    bool ok = true;
    for (std::size_t i = 0; i < burst_ && ok; ++i) {
      ok = writes_ == Writes::kCoalesced ? writer_.queue(msg_)
                                         : secure_peers::plain_send(p_.client, msg_);
    }
    if (ok && writes_ == Writes::kCoalesced) ok = writer_.flush();
    if (!ok) return internal_error("bench secure: plaintext send failed");
    char ack = 0;
    if (!secure_peers::read_all(p_.client, &ack, 1)) {
      return internal_error("bench secure: plaintext acknowledgement failed");
    }
    return ok_status();
  }

 private:
  Conn p_;
  std::vector<std::byte> msg_;
  std::size_t burst_;
  Writes writes_;
  secure_peers::PlainWriter writer_;
};

class SecureOneWay final : public OneWay {
 public:
  static Result<std::unique_ptr<OneWay>> create(Conn p, std::size_t size, std::size_t burst,
                                                Writes writes) {
    MYELIN_ASSIGN_OR_RETURN(auto server, p.server.take_stream());
    MYELIN_ASSIGN_OR_RETURN(auto client, p.client.take_stream());
    std::unique_ptr<SecureOneWay> w(new SecureOneWay(size, burst, writes));
    w->start_receiver(
        [self = w.get(), s = server.release()] { self->receive(std::unique_ptr<net::Stream>(s)); });
    // A failed handshake closes the client stream, which ends the receiver.
    MYELIN_ASSIGN_OR_RETURN(
        w->ch_, BlockingChannel::handshake(std::move(client), bench_config(Role::kInitiator)));
    return std::unique_ptr<OneWay>(std::move(w));
  }
  ~SecureOneWay() override {
    if (ch_ != nullptr) (void)ch_->close();
    ch_.reset();
    receiver_.join();
  }

 protected:
  Status send_burst() override {
    if (writes_ == Writes::kCoalesced) {
      for (std::size_t i = 0; i < burst_; ++i) MYELIN_RETURN_IF_ERROR(ch_->queue(msg_));
      MYELIN_RETURN_IF_ERROR(ch_->flush());
    } else {
      for (std::size_t i = 0; i < burst_; ++i) MYELIN_RETURN_IF_ERROR(ch_->send(msg_));
    }
    std::size_t acks = 0;
    const std::function<void(std::span<const std::byte>)> sink =
        [&acks](std::span<const std::byte>) { ++acks; };
    while (acks == 0) MYELIN_RETURN_IF_ERROR(ch_->receive(sink).error());
    return ok_status();
  }

 private:
  SecureOneWay(std::size_t size, std::size_t burst, Writes writes)
      : msg_(size, std::byte{2}), burst_(burst), writes_(writes) {}
  void receive(std::unique_ptr<net::Stream> stream) {
    auto ch = BlockingChannel::handshake(std::move(stream), bench_config(Role::kResponder));
    if (!ch) return;
    std::size_t count = 0;
    const std::function<void(std::span<const std::byte>)> sink =
        [&count](std::span<const std::byte>) { ++count; };
    const std::byte ack{1};
    for (;;) {
      while (count < burst_) {
        if (!(*ch)->receive(sink, std::chrono::seconds(30))) return;
      }
      count -= burst_;
      receiver_log_.record();
      if (!(*ch)->send({&ack, 1}).ok()) return;
    }
  }

  std::vector<std::byte> msg_;
  std::size_t burst_;
  Writes writes_;
  std::unique_ptr<BlockingChannel> ch_;
};

class TlsOneWay final : public OneWay {
 public:
  static Result<std::unique_ptr<OneWay>> create(const secure_peers::TlsPeer& tls, Conn p,
                                                std::size_t size, std::size_t burst,
                                                Writes writes) {
    std::unique_ptr<TlsOneWay> w(new TlsOneWay(std::move(p), size, burst, writes));
    w->server_ = tls.new_server();
    w->client_ = tls.new_client();
    if (w->server_ == nullptr || w->client_ == nullptr) {
      return internal_error("bench secure: SSL_new failed");
    }
    if (!w->p_.server.attach(w->server_) || !w->p_.client.attach(w->client_)) {
      return internal_error("bench secure: TLS transport setup failed");
    }
    SSL_set_read_ahead(w->server_, 1);  // read records in gulps, as MSC1's reader does
    if (writes == Writes::kCoalesced) {
      // A buffering BIO over the socket BIO: records collect until 64 KiB
      // wait or BIO_flush. The socket BIO is shared with the read side, hence
      // the extra reference the chain holds.
      BIO* sock = SSL_get_wbio(w->client_);
      BIO* buffer = BIO_new(BIO_f_buffer());
      if (buffer == nullptr) return internal_error("bench secure: TLS buffer BIO");
      if (BIO_up_ref(sock) != 1 || BIO_set_write_buffer_size(buffer, 64 * 1024) != 1) {
        BIO_free(buffer);
        return internal_error("bench secure: TLS buffer BIO");
      }
      SSL_set0_wbio(w->client_, BIO_push(buffer, sock));
    }
    w->start_receiver([self = w.get()] { self->receive(); });
    if (SSL_connect(w->client_) != 1) return internal_error("bench secure: TLS connect failed");
    return std::unique_ptr<OneWay>(std::move(w));
  }
  ~TlsOneWay() override {
    p_.client.shutdown();
    if (receiver_.joinable()) receiver_.join();
    SSL_free(server_);
    SSL_free(client_);
  }

 protected:
  Status send_burst() override {
    for (std::size_t i = 0; i < burst_; ++i) {
      if (!secure_peers::tls_write_all(client_, msg_.data(), msg_.size())) {
        return internal_error("bench secure: TLS write failed");
      }
    }
    if (writes_ == Writes::kCoalesced && BIO_flush(SSL_get_wbio(client_)) != 1) {
      return internal_error("bench secure: TLS flush failed");
    }
    char ack = 0;
    if (!secure_peers::tls_read_all(client_, &ack, 1)) {
      return internal_error("bench secure: TLS acknowledgement failed");
    }
    return ok_status();
  }

 private:
  TlsOneWay(Conn p, std::size_t size, std::size_t burst, Writes writes)
      : p_(std::move(p)), msg_(size, std::byte{2}), burst_(burst), writes_(writes) {}
  void receive() {
    if (SSL_accept(server_) != 1) return;
    std::vector<std::byte> buf(msg_.size());
    for (;;) {
      for (std::size_t i = 0; i < burst_; ++i) {
        if (!secure_peers::tls_read_all(server_, buf.data(), buf.size())) return;
      }
      receiver_log_.record();
      const char ack = 1;
      if (!secure_peers::tls_write_all(server_, &ack, 1)) return;
    }
  }

  Conn p_;
  std::vector<std::byte> msg_;
  std::size_t burst_;
  Writes writes_;
  SSL* server_ = nullptr;
  SSL* client_ = nullptr;
};

// OpenSSL EVP ChaCha20-Poly1305 sealing a burst of `size`-byte messages in
// place on one thread: the ceiling for any ChaCha20-Poly1305 channel here.
class RawAead {
 public:
  static Result<RawAead> create(std::size_t size, std::size_t burst) {
    RawAead r(size, burst);
    r.cipher_.reset(EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr));
    r.ctx_.reset(EVP_CIPHER_CTX_new());
    if (r.cipher_ == nullptr || r.ctx_ == nullptr ||
        EVP_EncryptInit_ex2(r.ctx_.get(), r.cipher_.get(), r.key_, nullptr, nullptr) != 1) {
      return internal_error("bench secure: EVP ChaCha20-Poly1305 unavailable");
    }
    return r;
  }
  Status seal_burst() {
    for (std::size_t i = 0; i < burst_; ++i) {
      int len = 0;
      nonce_[4] = static_cast<unsigned char>(i);
      if (EVP_EncryptInit_ex2(ctx_.get(), nullptr, nullptr, nonce_, nullptr) != 1 ||
          EVP_EncryptUpdate(ctx_.get(), nullptr, &len, aad_, sizeof(aad_)) != 1 ||
          EVP_EncryptUpdate(ctx_.get(), buf_.data(), &len, buf_.data(),
                            static_cast<int>(buf_.size())) != 1 ||
          EVP_EncryptFinal_ex(ctx_.get(), tag_, &len) != 1 ||
          EVP_CIPHER_CTX_ctrl(ctx_.get(), EVP_CTRL_AEAD_GET_TAG, 16, tag_) != 1) {
        return internal_error("bench secure: EVP seal failed");
      }
    }
    return ok_status();
  }

 private:
  RawAead(std::size_t size, std::size_t burst) : buf_(size, 3), burst_(burst) {}
  struct FreeCipher {
    void operator()(EVP_CIPHER* c) const { EVP_CIPHER_free(c); }
  };
  struct FreeCtx {
    void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
  };
  std::unique_ptr<EVP_CIPHER, FreeCipher> cipher_;
  std::unique_ptr<EVP_CIPHER_CTX, FreeCtx> ctx_;
  std::vector<unsigned char> buf_;
  std::size_t burst_;
  unsigned char key_[32] = {7}, nonce_[12] = {0}, aad_[16] = {0}, tag_[16] = {0};
};

// Records one timed burst of `bytes` payload bytes in `col`.
void record(ThroughputRow::Column& col, std::size_t bytes, Nanos took) {
  col.mb_s.record_value(mb_per_s(bytes, took));
  col.total_ns += static_cast<double>(took.count());
}

}  // namespace

Result<ThroughputRow> interleaved_throughput(const secure_peers::TlsPeer& tls,
                                             secure_peers::PairFactory& f, std::size_t size,
                                             std::size_t burst, std::size_t samples,
                                             Writes writes) {
  MYELIN_ASSIGN_OR_RETURN(RawAead aead, RawAead::create(size, burst));
  ThroughputRow row(samples);
  const std::array<ThroughputRow::Column*, 3> cols = {&row.plain, &row.secure, &row.tls};
  const std::size_t bytes = size * burst;
  ThreadCpu plain_sender, plain_receiver, secure_sender, secure_receiver;
  const std::size_t sets = std::min(samples, kConnectionSets);
  std::size_t round = 0;
  for (std::size_t set = 0; set < sets; ++set) {
    // This set's share of the rounds, spread as evenly as they go.
    const std::size_t rounds = samples / sets + (set < samples % sets ? 1 : 0);
    MYELIN_ASSIGN_OR_RETURN(Conn pp, f.make());
    MYELIN_ASSIGN_OR_RETURN(Conn sp, f.make());
    MYELIN_ASSIGN_OR_RETURN(Conn tp, f.make());
    const std::unique_ptr<OneWay> plain =
        std::make_unique<PlainOneWay>(std::move(pp), size, burst, writes);
    MYELIN_ASSIGN_OR_RETURN(const std::unique_ptr<OneWay> secure,
                            SecureOneWay::create(std::move(sp), size, burst, writes));
    MYELIN_ASSIGN_OR_RETURN(const std::unique_ptr<OneWay> tls_way,
                            TlsOneWay::create(tls, std::move(tp), size, burst, writes));
    const std::array<OneWay*, 3> ways = {plain.get(), secure.get(), tls_way.get()};
    for (std::size_t r = 0; r <= rounds; ++r) {  // each set's round 0 warms it up
      for (std::size_t k = 0; k < ways.size(); ++k) {
        const std::size_t i = (round + k) % ways.size();  // rotate who goes first
        MYELIN_ASSIGN_OR_RETURN(const Nanos took, ways[i]->burst());
        if (r > 0) record(*cols[i], bytes, took);
      }
      const MonoTime t0 = mono_now();
      MYELIN_RETURN_IF_ERROR(aead.seal_burst());
      if (r > 0) record(row.aead, bytes, mono_now() - t0);
      ++round;
    }
    plain_sender += plain->sender_cpu().between(0, rounds);
    plain_receiver += plain->receiver_cpu().between(0, rounds);
    secure_sender += secure->sender_cpu().between(0, rounds);
    secure_receiver += secure->receiver_cpu().between(0, rounds);
  }
  const double total = static_cast<double>(bytes * samples);
  for (ThroughputRow::Column* c : {&row.plain, &row.secure, &row.tls, &row.aead}) {
    c->ns_per_byte = c->total_ns / total;
  }
  row.plain_cpu = {plain_sender.per_byte(total), plain_receiver.per_byte(total)};
  row.secure_cpu = {secure_sender.per_byte(total), secure_receiver.per_byte(total)};
  return row;
}

}  // namespace myelin::bench::secure_scenarios
