#include "bench/secure_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <optional>

namespace myelin::bench::secure_peers {

std::string to_string(Transport t) {
  return t == Transport::kDuplex ? "duplex pair" : "loopback TCP";
}

namespace {

// How long a bench end waits for its peer before it gives up (a stuck peer
// ends the run with an error instead of hanging it).
constexpr Nanos kPeerWait = std::chrono::seconds(60);

// A BIO over a memory-pipe Stream, blocking like a socket BIO on a blocking
// fd, so TLS runs over the same pipe as MSC1 and plaintext.
int stream_bio_write(BIO* bio, const char* data, std::size_t n, std::size_t* written) {
  auto* e = static_cast<End*>(BIO_get_data(bio));
  const iovec v{const_cast<char*>(data), n};
  const long w = e->writev_some(&v, 1);
  if (w <= 0) return 0;
  *written = static_cast<std::size_t>(w);
  return 1;
}

int stream_bio_read(BIO* bio, char* data, std::size_t n, std::size_t* got) {
  auto* e = static_cast<End*>(BIO_get_data(bio));
  const long r = e->read_some(data, n);
  if (r <= 0) return 0;
  *got = static_cast<std::size_t>(r);
  return 1;
}

long stream_bio_ctrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

const BIO_METHOD* stream_bio_method() {
  static BIO_METHOD* const m = [] {
    BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "myelin stream");
    if (bm != nullptr) {
      BIO_meth_set_write_ex(bm, stream_bio_write);
      BIO_meth_set_read_ex(bm, stream_bio_read);
      BIO_meth_set_ctrl(bm, stream_bio_ctrl);
    }
    return bm;
  }();
  return m;
}

}  // namespace

End::~End() {
  if (fd_ >= 0) ::close(fd_);
}

long End::read_some(void* data, std::size_t n) {
  if (stream_ == nullptr) {
    if (read_spin_ > Nanos::zero()) {
      const MonoTime spin_end = mono_now() + read_spin_;
      for (;;) {
        const ssize_t r = ::recv(fd_, data, n, MSG_DONTWAIT);
        if (r >= 0) return static_cast<long>(r);
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
        if (mono_now() >= spin_end) break;
        pollfd p{fd_, POLLIN, 0};
        while (::poll(&p, 1, 0) == 0 && mono_now() < spin_end) std::this_thread::yield();
      }
    }
    for (;;) {
      const ssize_t r = ::read(fd_, data, n);
      if (r < 0 && errno == EINTR) continue;
      return r < 0 ? -1 : static_cast<long>(r);
    }
  }
  const MonoTime deadline = mono_now() + kPeerWait;
  for (;;) {
    auto r = stream_->read({static_cast<std::byte*>(data), n});
    if (!r) return -1;
    if (r->eof) return 0;
    if (!r->would_block) return static_cast<long>(r->bytes);
    if (!stream_->wait(kIoReadable, deadline).ok()) return -1;
  }
}

long End::writev_some(const iovec* iov, int count) {
  if (stream_ == nullptr) {
    msghdr m{};
    m.msg_iov = const_cast<iovec*>(iov);
    m.msg_iovlen = static_cast<std::size_t>(count);
    for (;;) {
      const ssize_t w = ::sendmsg(fd_, &m, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      return w <= 0 ? -1 : static_cast<long>(w);
    }
  }
  const MonoTime deadline = mono_now() + kPeerWait;
  for (;;) {
    auto w = stream_->writev({iov, static_cast<std::size_t>(count)});
    if (!w) return -1;
    if (!w->would_block) return w->bytes > 0 ? static_cast<long>(w->bytes) : -1;
    if (!stream_->wait(kIoWritable, deadline).ok()) return -1;
  }
}

void End::shutdown_write() {
  if (stream_ != nullptr) {
    (void)stream_->shutdown_write();
  } else if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_WR);
  }
}

void End::shutdown() {
  if (stream_ != nullptr) {
    stream_->close();
  } else if (fd_ >= 0) {
    ::shutdown(fd_, SHUT_RDWR);
  }
}

Result<std::unique_ptr<net::Stream>> End::take_stream() {
  if (stream_ != nullptr) return std::move(stream_);
  return net::Stream::adopt(std::exchange(fd_, -1), "bench");
}

bool End::attach(SSL* ssl) {
  if (stream_ == nullptr) return SSL_set_fd(ssl, fd_) == 1;
  const BIO_METHOD* method = stream_bio_method();
  BIO* bio = method != nullptr ? BIO_new(method) : nullptr;
  if (bio == nullptr) return false;
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl, bio, bio);  // one reference, shared by both directions
  return true;
}

Result<PairFactory> PairFactory::create(Transport t) {
  PairFactory f(t);
  if (t == Transport::kDuplex) return f;
  f.listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (f.listen_fd_ < 0) return errno_error("socket", errno);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(f.listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(f.listen_fd_, 64) != 0 ||
      ::getsockname(f.listen_fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return errno_error("listen on loopback", errno);
  }
  f.port_ = ntohs(a.sin_port);
  return f;
}

PairFactory::~PairFactory() {
  if (listen_fd_ >= 0) ::close(listen_fd_);
}

Result<Conn> PairFactory::make() {
  if (t_ == Transport::kDuplex) {
    MYELIN_ASSIGN_OR_RETURN(auto pair,
                            net::duplex_pair(256 * 1024, std::chrono::microseconds(50), rings_));
    return Conn{End(std::move(pair.first)), End(std::move(pair.second))};
  }
  End client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int cfd = client.fd();
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port_);
  if (cfd < 0 || ::connect(cfd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return errno_error("connect loopback", errno);
  }
  End server(::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC));
  if (server.fd() < 0) return errno_error("accept", errno);
  const int one = 1;
  ::setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(server.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  // A refusal (the module not loaded) leaves the default; tcp_congestion()
  // reports what the connections really use.
  const socklen_t cc_len = static_cast<socklen_t>(std::strlen(kBenchTcpCongestion));
  ::setsockopt(cfd, IPPROTO_TCP, TCP_CONGESTION, kBenchTcpCongestion, cc_len);
  ::setsockopt(server.fd(), IPPROTO_TCP, TCP_CONGESTION, kBenchTcpCongestion, cc_len);
  return Conn{std::move(client), std::move(server)};
}

Result<std::string> PairFactory::tcp_congestion() {
  if (t_ != Transport::kTcp) return std::string("none");
  MYELIN_ASSIGN_OR_RETURN(Conn c, make());
  char name[32] = {};
  socklen_t len = sizeof(name) - 1;
  if (::getsockopt(c.client.fd(), IPPROTO_TCP, TCP_CONGESTION, name, &len) != 0) {
    return errno_error("getsockopt TCP_CONGESTION", errno);
  }
  return std::string(name, ::strnlen(name, len));
}

namespace {

std::vector<int> thread_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) != 0) return cpus;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) cpus.push_back(c);
  }
  return cpus;
}

// The CPUs the calling thread could use when the bench first asked. Read
// once: a thread started by a pinned thread inherits its single CPU.
const std::vector<int>& allowed_cpus() {
  static const std::vector<int> cpus = thread_cpus();
  return cpus;
}

bool set_cpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (const int c : cpus) CPU_SET(c, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

}  // namespace

CpuPin::CpuPin(std::size_t slot) {
  const std::vector<int>& cpus = allowed_cpus();
  if (cpus.size() < 2) return;
  std::vector<int> previous = thread_cpus();
  if (!set_cpus({cpus[slot % cpus.size()]})) return;
  pinned_ = true;
  previous_ = std::move(previous);
}

CpuPin::~CpuPin() {
  if (pinned_) (void)set_cpus(previous_);
}

std::string describe_pinning(const std::string& first, const std::string& second) {
  const std::vector<int>& cpus = allowed_cpus();
  if (cpus.size() < 2) return "";
  return first + " on CPU " + std::to_string(cpus[0]) + ", " + second + " on CPU " +
         std::to_string(cpus[1]);
}

Worker::Worker(int slot)
    : thread_([this, slot] {
        std::optional<CpuPin> pin;
        if (slot >= 0) pin.emplace(static_cast<std::size_t>(slot));
        loop();
      }) {}

Worker::~Worker() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Worker::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    jobs_.push_back(std::move(job));
  }
  cv_.notify_all();
}

void Worker::post_started(std::function<void()> job) {
  auto started = std::make_shared<std::atomic<bool>>(false);
  post([started, job = std::move(job)] {
    started->store(true, std::memory_order_release);
    job();
  });
  while (!started->load(std::memory_order_acquire)) std::this_thread::yield();
}

void Worker::wait_idle() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return jobs_.empty() && !busy_; });
}

void Worker::loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;
    auto job = std::move(jobs_.front());
    jobs_.erase(jobs_.begin());
    busy_ = true;
    lock.unlock();
    job();
    lock.lock();
    busy_ = false;
    cv_.notify_all();
  }
}

bool write_all(End& e, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const iovec v{const_cast<char*>(p), n};
    const long w = e.writev_some(&v, 1);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(End& e, void* data, std::size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const long r = e.read_some(p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool plain_send(End& e, std::span<const std::byte> payload) {
  std::uint32_t len = static_cast<std::uint32_t>(payload.size());
  iovec iov[2] = {{&len, 4}, {const_cast<std::byte*>(payload.data()), payload.size()}};
  std::size_t left = 4 + payload.size();
  int idx = 0;
  while (left > 0) {
    const long w = e.writev_some(iov + idx, 2 - idx);
    if (w <= 0) return false;
    left -= static_cast<std::size_t>(w);
    std::size_t adv = static_cast<std::size_t>(w);
    while (adv > 0) {
      if (adv >= iov[idx].iov_len) {
        adv -= iov[idx].iov_len;
        iov[idx].iov_len = 0;
        ++idx;
      } else {
        iov[idx].iov_base = static_cast<char*>(iov[idx].iov_base) + adv;
        iov[idx].iov_len -= adv;
        adv = 0;
      }
    }
  }
  return true;
}

long plain_recv(End& e, std::vector<std::byte>& buf) {
  std::uint32_t len = 0;
  if (!read_all(e, &len, 4)) return -1;
  if (buf.size() < len) buf.resize(len);
  if (!read_all(e, buf.data(), len)) return -1;
  return static_cast<long>(len);
}

bool PlainReader::next(std::span<const std::byte>& message) {
  for (;;) {
    const std::size_t have = end_ - begin_;
    if (have >= 4) {
      std::uint32_t len = 0;
      std::memcpy(&len, buf_.data() + begin_, 4);
      if (have >= 4 + std::size_t{len}) {
        message = {buf_.data() + begin_ + 4, len};
        begin_ += 4 + std::size_t{len};
        return true;
      }
      if (buf_.size() < 4 + std::size_t{len}) buf_.resize(4 + std::size_t{len});
    }
    if (begin_ > 0) {  // slide the partial message to the front
      std::memmove(buf_.data(), buf_.data() + begin_, have);
      begin_ = 0;
      end_ = have;
    }
    const long r = end_point_.read_some(buf_.data() + end_, buf_.size() - end_);
    if (r <= 0) return false;
    end_ += static_cast<std::size_t>(r);
  }
}

bool PlainWriter::queue(std::span<const std::byte> payload) {
  const auto len = static_cast<std::uint32_t>(payload.size());
  const std::size_t at = buf_.size();
  buf_.resize(at + 4 + payload.size());
  std::memcpy(buf_.data() + at, &len, 4);
  std::memcpy(buf_.data() + at + 4, payload.data(), payload.size());
  return buf_.size() < 64 * 1024 || flush();
}

bool PlainWriter::flush() {
  const bool ok = write_all(end_point_, buf_.data(), buf_.size());
  buf_.clear();
  return ok;
}

// --- TLS 1.3 ----------------------------------------------------------------------

namespace {

Status ssl_fail(const char* what) {
  char buf[256] = "";
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  ERR_clear_error();
  return internal_error(std::string("TLS peer: ") + what + ": " + buf);
}

}  // namespace

Result<TlsPeer> TlsPeer::create() {
  TlsPeer t;
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return ssl_fail("Ed25519 keygen");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("myelin-bench"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  if (X509_sign(cert, key, nullptr) == 0) return ssl_fail("self-sign");

  t.server_ = SSL_CTX_new(TLS_server_method());
  t.client_ = SSL_CTX_new(TLS_client_method());
  for (SSL_CTX* c : {t.server_, t.client_}) {
    if (c == nullptr) return ssl_fail("SSL_CTX_new");
    SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
    if (SSL_CTX_set_ciphersuites(c, "TLS_CHACHA20_POLY1305_SHA256") != 1) {
      return ssl_fail("ciphersuites");
    }
    if (SSL_CTX_set1_groups_list(c, "X25519") != 1) return ssl_fail("groups");
    SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
  }
  SSL_CTX_set_num_tickets(t.server_, 0);
  SSL_CTX_set_verify(t.client_, SSL_VERIFY_NONE, nullptr);
  if (SSL_CTX_use_certificate(t.server_, cert) != 1 ||
      SSL_CTX_use_PrivateKey(t.server_, key) != 1) {
    return ssl_fail("certificate");
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return t;
}

TlsPeer::~TlsPeer() {
  SSL_CTX_free(server_);
  SSL_CTX_free(client_);
}

bool tls_handshake_in_memory(const TlsPeer& tls) {
  SSL* c = tls.new_client();
  SSL* s = tls.new_server();
  BIO* cb = nullptr;
  BIO* sb = nullptr;
  BIO_new_bio_pair(&cb, 0, &sb, 0);
  SSL_set_bio(c, cb, cb);
  SSL_set_bio(s, sb, sb);
  SSL_set_connect_state(c);
  SSL_set_accept_state(s);
  bool c_done = false, s_done = false, ok = true;
  for (int round = 0; round < 20 && !(c_done && s_done); ++round) {
    if (!c_done) {
      const int r = SSL_do_handshake(c);
      if (r == 1)
        c_done = true;
      else if (SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
        ok = false;
    }
    if (!s_done) {
      const int r = SSL_do_handshake(s);
      if (r == 1)
        s_done = true;
      else if (SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
        ok = false;
    }
    if (!ok) break;
  }
  SSL_free(c);
  SSL_free(s);
  return ok && c_done && s_done;
}

bool tls_write_all(SSL* ssl, const void* data, std::size_t n) {
  std::size_t written = 0;
  return SSL_write_ex(ssl, data, n, &written) == 1 && written == n;
}

bool tls_read_all(SSL* ssl, void* data, std::size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    std::size_t got = 0;
    if (SSL_read_ex(ssl, p, n, &got) != 1) return false;
    p += got;
    n -= got;
  }
  return true;
}

}  // namespace myelin::bench::secure_peers
