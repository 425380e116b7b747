#include "bench/secure_peers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace myelin::bench::secure_peers {

std::string to_string(Transport t) {
  return t == Transport::kDuplex ? "duplex pair" : "loopback TCP";
}

FdPair::~FdPair() {
  if (client >= 0) ::close(client);
  if (server >= 0) ::close(server);
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

Result<FdPair> PairFactory::make() {
  FdPair p;
  if (t_ == Transport::kDuplex) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
      return errno_error("socketpair", errno);
    }
    p.client = fds[0];
    p.server = fds[1];
    return p;
  }
  p.client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port_);
  if (::connect(p.client, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    return errno_error("connect loopback", errno);
  }
  p.server = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (p.server < 0) return errno_error("accept", errno);
  const int one = 1;
  ::setsockopt(p.client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  ::setsockopt(p.server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return p;
}

Worker::Worker() : thread_([this] { loop(); }) {}

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

bool write_all(int fd, const void* data, std::size_t n) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool read_all(int fd, void* data, std::size_t n) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    const ssize_t r = ::read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    p += r;
    n -= static_cast<std::size_t>(r);
  }
  return true;
}

bool plain_send(int fd, std::span<const std::byte> payload) {
  std::uint32_t len = static_cast<std::uint32_t>(payload.size());
  iovec iov[2] = {{&len, 4}, {const_cast<std::byte*>(payload.data()), payload.size()}};
  std::size_t left = 4 + payload.size();
  int idx = 0;
  while (left > 0) {
    msghdr m{};
    m.msg_iov = iov + idx;
    m.msg_iovlen = static_cast<std::size_t>(2 - idx);
    const ssize_t w = ::sendmsg(fd, &m, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
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

long plain_recv(int fd, std::vector<std::byte>& buf) {
  std::uint32_t len = 0;
  if (!read_all(fd, &len, 4)) return -1;
  if (buf.size() < len) buf.resize(len);
  if (!read_all(fd, buf.data(), len)) return -1;
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
    const ssize_t r = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
    if (r < 0 && errno == EINTR) continue;
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
  const bool ok = write_all(fd_, buf_.data(), buf_.size());
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
