#include "myelin/net/tls.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace myelin::net {
namespace {

// TLS 1.2 suites: ECDHE key exchange with an AEAD only (forward secrecy, no
// CBC, no RSA key transport); the Mozilla "intermediate" profile less its
// finite-field DHE. TLS 1.3 keeps OpenSSL's default suites, all AEAD.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

int proto_version(TlsVersion v) {
  return v == TlsVersion::kTls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

// Drains OpenSSL's error queue of this thread into one readable reason.
std::string openssl_reason() {
  std::string out;
  while (const unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += r != nullptr ? r : "error " + std::to_string(ERR_GET_REASON(e));
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

Status check_readable(const std::string& what, const std::string& path) {
  if (path.empty()) return invalid_argument(what + ": no file given");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return errno_error(what + " " + path, errno);
  std::fclose(f);
  return ok_status();
}

std::vector<unsigned char> alpn_wire(const std::vector<std::string>& protocols, Status& status) {
  std::vector<unsigned char> wire;
  for (const auto& p : protocols) {
    if (p.empty() || p.size() > 255) {
      status = invalid_argument("ALPN protocol name '" + p + "' must be 1 to 255 bytes");
      return {};
    }
    wire.push_back(static_cast<unsigned char>(p.size()));
    wire.insert(wire.end(), p.begin(), p.end());
  }
  return wire;
}

bool is_ip_address(const std::string& s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s.c_str(), buf) == 1 || inet_pton(AF_INET6, s.c_str(), buf) == 1;
}

}  // namespace

std::string_view to_string(TlsVersion v) noexcept {
  return v == TlsVersion::kTls13 ? "TLSv1.3" : "TLSv1.2";
}

struct TlsContext::Impl {
  SSL_CTX* ctx = nullptr;
  bool server = false;
  bool insecure = false;
  std::vector<unsigned char> alpn;  // wire format: length-prefixed names
  std::string plaintext_reply;
  std::function<void(const std::string&, const Status&)> on_failure;
  ~Impl() { SSL_CTX_free(ctx); }

  // RFC 7301 3.2: the server picks by its own preference; a client that
  // offers none it speaks gets no_application_protocol.
  static int select_alpn(SSL* /*ssl*/, const unsigned char** out, unsigned char* outlen,
                         const unsigned char* in, unsigned int inlen, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    unsigned char* chosen = nullptr;
    if (SSL_select_next_proto(&chosen, outlen, self->alpn.data(),
                              static_cast<unsigned int>(self->alpn.size()), in,
                              inlen) != OPENSSL_NPN_NEGOTIATED) {
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
  }
};

TlsContext::TlsContext(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsContext::~TlsContext() = default;
bool TlsContext::is_server() const noexcept { return impl_->server; }

namespace {

Status common_setup(SSL_CTX* ctx, TlsVersion min, TlsVersion max) {
  if (proto_version(min) > proto_version(max)) {
    return invalid_argument("TLS: the minimum version is above the maximum");
  }
  if (SSL_CTX_set_min_proto_version(ctx, proto_version(min)) != 1 ||
      SSL_CTX_set_max_proto_version(ctx, proto_version(max)) != 1 ||
      SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1) {
    return internal_error("TLS: cannot set versions or ciphers: " + openssl_reason());
  }
  // No renegotiation (TLS 1.2), no compression (CRIME); a peer that closes
  // without close_notify is end of stream: HTTP frames its own messages.
  SSL_CTX_set_options(
      ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
  // A write returns once a record is out; its retry may come from a buffer
  // that has moved (a std::string that grew).
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Read what the socket has, not record by record: one read() per burst.
  SSL_CTX_set_read_ahead(ctx, 1);
  // An encrypted key fails to load instead of prompting on the terminal.
  SSL_CTX_set_default_passwd_cb(ctx, [](char*, int, int, void*) { return 0; });
  return ok_status();
}

}  // namespace

Result<std::shared_ptr<TlsContext>> TlsContext::server(const TlsServerOptions& o) {
  MYELIN_RETURN_IF_ERROR(check_readable("TLS certificate", o.cert_file));
  MYELIN_RETURN_IF_ERROR(check_readable("TLS key", o.key_file));
  auto impl = std::make_unique<Impl>();
  impl->server = true;
  ERR_clear_error();
  impl->ctx = SSL_CTX_new(TLS_server_method());
  if (impl->ctx == nullptr) return internal_error("TLS: SSL_CTX_new: " + openssl_reason());
  MYELIN_RETURN_IF_ERROR(common_setup(impl->ctx, o.min_version, o.max_version));
  if (SSL_CTX_use_certificate_chain_file(impl->ctx, o.cert_file.c_str()) != 1) {
    return invalid_argument("TLS certificate " + o.cert_file + ": not a PEM certificate chain (" +
                            openssl_reason() + ")");
  }
  if (SSL_CTX_use_PrivateKey_file(impl->ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    const unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
      ERR_clear_error();
      return invalid_argument("TLS key " + o.key_file + " does not match the certificate in " +
                              o.cert_file);
    }
    return invalid_argument("TLS key " + o.key_file + ": not an unencrypted PEM private key (" +
                            openssl_reason() + ")");
  }
  if (SSL_CTX_check_private_key(impl->ctx) != 1) {
    ERR_clear_error();
    return invalid_argument("TLS key " + o.key_file + " does not match the certificate in " +
                            o.cert_file);
  }
  Status s;
  impl->alpn = alpn_wire(o.alpn, s);
  MYELIN_RETURN_IF_ERROR(s);
  if (!impl->alpn.empty()) {
    SSL_CTX_set_alpn_select_cb(impl->ctx, &Impl::select_alpn, impl.get());
  }
  impl->plaintext_reply = o.plaintext_reply;
  impl->on_failure = o.on_failure;
  return std::shared_ptr<TlsContext>(new TlsContext(std::move(impl)));
}

Result<std::shared_ptr<TlsContext>> TlsContext::client(const TlsClientOptions& o) {
  if (!o.ca_file.empty()) MYELIN_RETURN_IF_ERROR(check_readable("TLS CA file", o.ca_file));
  auto impl = std::make_unique<Impl>();
  ERR_clear_error();
  impl->ctx = SSL_CTX_new(TLS_client_method());
  if (impl->ctx == nullptr) return internal_error("TLS: SSL_CTX_new: " + openssl_reason());
  MYELIN_RETURN_IF_ERROR(common_setup(impl->ctx, o.min_version, o.max_version));
  impl->insecure = o.insecure;
  if (o.insecure) {
    SSL_CTX_set_verify(impl->ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(impl->ctx, SSL_VERIFY_PEER, nullptr);
    const int loaded = o.ca_file.empty()
                           ? SSL_CTX_set_default_verify_paths(impl->ctx)
                           : SSL_CTX_load_verify_locations(impl->ctx, o.ca_file.c_str(), nullptr);
    if (loaded != 1) {
      return invalid_argument("TLS CA file " + (o.ca_file.empty() ? "(system)" : o.ca_file) +
                              ": no PEM certificates (" + openssl_reason() + ")");
    }
  }
  Status s;
  impl->alpn = alpn_wire(o.alpn, s);
  MYELIN_RETURN_IF_ERROR(s);
  // SSL_CTX_set_alpn_protos returns 0 on success.
  if (!impl->alpn.empty() &&
      SSL_CTX_set_alpn_protos(impl->ctx, impl->alpn.data(),
                              static_cast<unsigned int>(impl->alpn.size())) != 0) {
    return internal_error("TLS: cannot set ALPN: " + openssl_reason());
  }
  return std::shared_ptr<TlsContext>(new TlsContext(std::move(impl)));
}

// --------------------------------------------------------------------------
// TlsStream

struct TlsStream::Impl {
  std::shared_ptr<TlsContext> context;
  std::unique_ptr<Stream> inner;
  SSL* ssl = nullptr;
  std::string peer;
  bool server = false;

  // Watching: what the user asked for, and what the TLS layer needs on top.
  EventLoop* loop = nullptr;
  EventLoop::IoCallback on_io;
  std::uint32_t user_interest = 0;
  std::uint32_t inner_interest = 0;
  bool want_write_for_read = false;  // SSL_read blocked on a write (handshake flight)
  bool want_read_for_write = false;  // SSL_write blocked on a read (handshake not done)
  bool pump_queued = false;
  // Work queued on the loop holds a weak reference to this; it is gone once
  // the stream is, so a microtask never touches a freed stream.
  std::shared_ptr<Impl*> alive = std::make_shared<Impl*>(this);

  bool handshake_done = false;
  bool peer_closed = false;    // close_notify (or end of stream) read
  bool inner_eof = false;      // the transport reported end of stream
  bool closed = false;         // close() called
  bool shutdown_sent = false;  // our close_notify went out
  Status failure;              // once set, every call returns it
  Status io_error;             // the transport's last error, for the message
  std::string scratch;         // small writev pieces joined into one record

  ~Impl() {
    if (ssl != nullptr) SSL_free(ssl);  // frees the BIO too
  }

  void note_handshake() {
    if (!handshake_done && SSL_is_init_finished(ssl) == 1) {
      handshake_done = true;
      context->stats().handshakes.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Turns an SSL error into the stream's permanent failure.
  Status fail(int ssl_error) {
    std::string reason;
    bool plaintext = false;
    if (ssl_error == SSL_ERROR_SSL) {
      const unsigned long first = ERR_peek_error();
      plaintext =
          ERR_GET_LIB(first) == ERR_LIB_SSL && (ERR_GET_REASON(first) == SSL_R_HTTP_REQUEST ||
                                                ERR_GET_REASON(first) == SSL_R_HTTPS_PROXY_REQUEST);
      reason = openssl_reason();
      if (!server && SSL_get_verify_result(ssl) != X509_V_OK) {
        reason +=
            std::string(" (") + X509_verify_cert_error_string(SSL_get_verify_result(ssl)) + ")";
      }
    } else if (ssl_error == SSL_ERROR_SYSCALL) {
      reason = !io_error.ok() ? std::string(io_error.message()) : openssl_reason();
      ERR_clear_error();
    } else {
      reason = "unexpected OpenSSL state " + std::to_string(ssl_error);
      ERR_clear_error();
    }
    if (plaintext) {
      reason = "the client sent plain HTTP to the TLS port";
      context->stats().plaintext_requests.fetch_add(1, std::memory_order_relaxed);
      const std::string& reply = context->impl_->plaintext_reply;
      if (!reply.empty()) {  // best effort: one non-blocking write, then close
        (void)inner->write(std::as_bytes(std::span<const char>(reply)));
      }
    }
    return set_failure(reason);
  }

  Status set_failure(const std::string& reason) {
    const bool during_handshake = !handshake_done;
    if (during_handshake) {
      context->stats().handshake_failures.fetch_add(1, std::memory_order_relaxed);
    }
    failure =
        Status(during_handshake ? ErrorCode::kAuthenticationFailed : ErrorCode::kProtocolError,
               std::string(during_handshake ? "TLS handshake with " : "TLS connection to ") + peer +
                   " failed: " + reason);
    if (const auto& cb = context->impl_->on_failure) cb(peer, failure);
    return failure;
  }

  void update_inner() {
    if (loop == nullptr || closed) return;
    std::uint32_t want = user_interest & (kIoReadable | kIoWritable);
    if (want_write_for_read) want |= kIoWritable;
    if (want_read_for_write) want |= kIoReadable;
    if (want != inner_interest) {
      inner_interest = want;
      (void)inner->set_interest(want);
    }
  }

  // Maps the transport's readiness to what the user waits for.
  void on_inner_io(std::uint32_t events) {
    std::uint32_t user = events & (kIoError | kIoHangup);
    if ((events & kIoReadable) != 0) {
      if ((user_interest & kIoReadable) != 0) user |= kIoReadable;
      if (want_read_for_write) {
        want_read_for_write = false;
        user |= kIoWritable;
      }
    }
    if ((events & kIoWritable) != 0) {
      if ((user_interest & kIoWritable) != 0) user |= kIoWritable;
      if (want_write_for_read) {
        want_write_for_read = false;
        user |= kIoReadable;
      }
    }
    update_inner();
    deliver(user);
  }

  void deliver(std::uint32_t events) {
    if (events == 0 || !on_io) return;
    std::weak_ptr<Impl*> token = alive;
    auto callback = on_io;  // it may destroy this stream, and with it on_io
    callback(events);
    if (token.expired()) return;
    queue_pump();
  }

  // Plaintext OpenSSL already holds (read ahead, or a record larger than the
  // caller's buffer) makes no epoll event: hand it to the user on this tick.
  void queue_pump() {
    if (pump_queued || closed || loop == nullptr || !failure.ok()) return;
    if ((user_interest & kIoReadable) == 0 || SSL_has_pending(ssl) != 1) return;
    pump_queued = true;
    (void)loop->queue_microtask([token = std::weak_ptr<Impl*>(alive)] {
      const auto self = token.lock();
      if (!self) return;
      Impl& im = **self;
      im.pump_queued = false;
      if (im.closed || (im.user_interest & kIoReadable) == 0) return;
      if (SSL_has_pending(im.ssl) != 1) return;
      im.deliver(kIoReadable);
    });
  }

  void send_close_notify() {
    if (shutdown_sent || !handshake_done || !failure.ok()) return;
    shutdown_sent = true;
    ERR_clear_error();
    (void)SSL_shutdown(ssl);  // one try: never blocks, nothing to wait for
    ERR_clear_error();
  }

  // The BIO between OpenSSL and the transport.
  static int bio_read(BIO* b, char* buf, int len) {
    auto* im = static_cast<Impl*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    auto r = im->inner->read({reinterpret_cast<std::byte*>(buf), static_cast<std::size_t>(len)});
    if (!r) {
      im->io_error = r.error();
      return -1;
    }
    if (r->would_block) {
      BIO_set_retry_read(b);
      return -1;
    }
    if (r->eof) {
      im->inner_eof = true;
      return 0;
    }
    return static_cast<int>(r->bytes);
  }

  static int bio_write(BIO* b, const char* buf, int len) {
    auto* im = static_cast<Impl*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    auto r =
        im->inner->write({reinterpret_cast<const std::byte*>(buf), static_cast<std::size_t>(len)});
    if (!r) {
      im->io_error = r.error();
      return -1;
    }
    if (r->would_block) {
      BIO_set_retry_write(b);
      return -1;
    }
    return static_cast<int>(r->bytes);
  }

  static long bio_ctrl(BIO* b, int cmd, long /*num*/, void* /*ptr*/) {
    switch (cmd) {
      case BIO_CTRL_FLUSH:
        return 1;  // the transport has no buffer of ours
      case BIO_CTRL_EOF:
        return static_cast<Impl*>(BIO_get_data(b))->inner_eof ? 1 : 0;
      default:
        return 0;
    }
  }

  static BIO_METHOD* bio_method() {
    static BIO_METHOD* const method = [] {
      BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "myelin stream");
      BIO_meth_set_read(m, &bio_read);
      BIO_meth_set_write(m, &bio_write);
      BIO_meth_set_ctrl(m, &bio_ctrl);
      BIO_meth_set_create(m, [](BIO* b) {
        BIO_set_init(b, 1);
        return 1;
      });
      return m;
    }();
    return method;
  }

  static Result<std::unique_ptr<Impl>> make(std::shared_ptr<TlsContext> context,
                                            std::unique_ptr<Stream> inner) {
    if (!context) return invalid_argument("TlsStream: no context");
    if (!inner) return invalid_argument("TlsStream: no transport");
    auto im = std::make_unique<Impl>();
    im->server = context->is_server();
    im->peer = inner->peer();
    im->inner = std::move(inner);
    ERR_clear_error();
    im->ssl = SSL_new(context->impl_->ctx);
    im->context = std::move(context);
    BIO* bio = im->ssl != nullptr ? BIO_new(bio_method()) : nullptr;
    if (bio == nullptr) {
      return resource_exhausted("TLS: cannot create a connection: " + openssl_reason());
    }
    BIO_set_data(bio, im.get());
    SSL_set_bio(im->ssl, bio, bio);
    if (im->server) {
      SSL_set_accept_state(im->ssl);
    } else {
      SSL_set_connect_state(im->ssl);
    }
    return im;
  }
};

TlsStream::TlsStream(std::unique_ptr<Impl> impl, std::string peer)
    : Stream(std::move(peer)), impl_(std::move(impl)) {}

TlsStream::~TlsStream() { TlsStream::close(); }

Result<std::unique_ptr<TlsStream>> TlsStream::server(std::shared_ptr<TlsContext> context,
                                                     std::unique_ptr<Stream> inner) {
  if (context && !context->is_server())
    return invalid_argument("TlsStream::server: client context");
  MYELIN_ASSIGN_OR_RETURN(auto im, Impl::make(std::move(context), std::move(inner)));
  std::string peer = im->peer;
  return std::unique_ptr<TlsStream>(new TlsStream(std::move(im), std::move(peer)));
}

Result<std::unique_ptr<TlsStream>> TlsStream::client(std::shared_ptr<TlsContext> context,
                                                     std::unique_ptr<Stream> inner,
                                                     const std::string& server_name) {
  if (context && context->is_server()) return invalid_argument("TlsStream::client: server context");
  MYELIN_ASSIGN_OR_RETURN(auto im, Impl::make(std::move(context), std::move(inner)));
  const bool ip = is_ip_address(server_name);
  if (!server_name.empty() && !ip && SSL_set_tlsext_host_name(im->ssl, server_name.c_str()) != 1) {
    return invalid_argument("TLS: bad server name '" + server_name + "'");
  }
  if (!im->context->impl_->insecure) {
    if (server_name.empty()) return invalid_argument("TLS: a verified connection needs a name");
    const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(im->ssl), server_name.c_str())
                      : SSL_set1_host(im->ssl, server_name.c_str());
    if (ok != 1) return invalid_argument("TLS: cannot check the name '" + server_name + "'");
  }
  std::string peer = server_name.empty() ? im->peer : server_name;
  im->peer = peer;
  return std::unique_ptr<TlsStream>(new TlsStream(std::move(im), std::move(peer)));
}

Result<IoResult> TlsStream::read(std::span<std::byte> into) {
  Impl& im = *impl_;
  if (!im.failure.ok()) return im.failure;
  if (im.closed) return closed("read " + im.peer + ": the stream is closed");
  std::size_t got = 0;
  while (got < into.size() && !im.peer_closed) {
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_read_ex(im.ssl, into.data() + got, into.size() - got, &n) == 1) {
      got += n;
      continue;
    }
    const int err = SSL_get_error(im.ssl, 0);
    if (err == SSL_ERROR_WANT_READ) break;
    if (err == SSL_ERROR_WANT_WRITE) {
      im.want_write_for_read = true;
      im.update_inner();
      break;
    }
    if (err == SSL_ERROR_ZERO_RETURN) {
      im.peer_closed = true;
      break;
    }
    return im.fail(err);
  }
  im.note_handshake();
  if (got > 0) return IoResult{got, false, false};
  if (im.peer_closed) {
    if (!im.handshake_done) {
      return im.set_failure("the peer closed the connection during the handshake");
    }
    return IoResult{0, false, true};
  }
  return IoResult{0, true, false};
}

Result<IoResult> TlsStream::writev(std::span<const iovec> iov) {
  Impl& im = *impl_;
  if (!im.failure.ok()) return im.failure;
  if (im.closed) return closed("write " + im.peer + ": the stream is closed");
  std::size_t total = 0;
  for (const auto& v : iov) total += v.iov_len;
  // Small pieces (HTTP head + body) go out as one record, not one each.
  std::span<const iovec> parts = iov;
  iovec joined{};
  if (iov.size() > 1 && total <= 16 * 1024) {
    im.scratch.clear();
    for (const auto& v : iov) im.scratch.append(static_cast<const char*>(v.iov_base), v.iov_len);
    joined = {im.scratch.data(), im.scratch.size()};
    parts = {&joined, 1};
  }
  std::size_t moved = 0;
  bool blocked = false;
  for (const auto& v : parts) {
    const auto* p = static_cast<const unsigned char*>(v.iov_base);
    std::size_t off = 0;
    while (off < v.iov_len) {
      ERR_clear_error();
      std::size_t n = 0;
      if (SSL_write_ex(im.ssl, p + off, v.iov_len - off, &n) == 1) {
        off += n;
        continue;
      }
      const int err = SSL_get_error(im.ssl, 0);
      if (err == SSL_ERROR_WANT_WRITE) {
        blocked = true;
        break;
      }
      if (err == SSL_ERROR_WANT_READ) {
        im.want_read_for_write = true;
        im.update_inner();
        blocked = true;
        break;
      }
      if (moved + off > 0) {  // report what went out; the next call fails
        (void)im.fail(err);
        return IoResult{moved + off, false, false};
      }
      return im.fail(err);
    }
    moved += off;
    if (blocked) break;
  }
  im.note_handshake();
  return IoResult{moved, moved == 0 && blocked, false};
}

Status TlsStream::shutdown_write() {
  Impl& im = *impl_;
  if (im.closed) return ok_status();
  im.send_close_notify();
  return im.inner->shutdown_write();
}

Status TlsStream::watch(EventLoop& loop, std::uint32_t interest, EventLoop::IoCallback on_io) {
  Impl& im = *impl_;
  im.user_interest = interest;
  im.inner_interest = interest;
  im.on_io = std::move(on_io);
  Impl* raw = &im;  // the transport is owned by im and unregistered before it goes
  MYELIN_RETURN_IF_ERROR(
      im.inner->watch(loop, interest, [raw](std::uint32_t events) { raw->on_inner_io(events); }));
  im.loop = &loop;
  im.update_inner();
  return ok_status();
}

Status TlsStream::set_interest(std::uint32_t interest) {
  Impl& im = *impl_;
  if (im.loop == nullptr) return failed_precondition("Stream::set_interest: not watched");
  im.user_interest = interest;
  im.update_inner();
  im.queue_pump();
  return ok_status();
}

namespace {
// What the transport must be ready for so that the user's `events` can make
// progress: a read blocked on a handshake write waits for writability, and
// the other way round.
std::uint32_t inner_events(std::uint32_t events, bool write_for_read, bool read_for_write) {
  std::uint32_t out = events;
  if ((events & kIoReadable) != 0 && write_for_read) out = (out & ~kIoReadable) | kIoWritable;
  if ((events & kIoWritable) != 0 && read_for_write) out = (out & ~kIoWritable) | kIoReadable;
  return out;
}
}  // namespace

Status TlsStream::wait(std::uint32_t events, MonoTime deadline) {
  Impl& im = *impl_;
  if (!im.failure.ok() || im.peer_closed) return ok_status();  // the next call reports it
  if ((events & kIoReadable) != 0 && SSL_has_pending(im.ssl) == 1) return ok_status();
  const std::uint32_t inner = inner_events(events, im.want_write_for_read, im.want_read_for_write);
  MYELIN_RETURN_IF_ERROR(im.inner->wait(inner, deadline));
  im.want_write_for_read = false;
  im.want_read_for_write = false;
  return ok_status();
}

bool TlsStream::ready_now(std::uint32_t events) {
  Impl& im = *impl_;
  if (!im.failure.ok() || im.peer_closed || im.closed) return true;
  if ((events & kIoReadable) != 0 && SSL_has_pending(im.ssl) == 1) return true;
  return im.inner->ready_now(inner_events(events, im.want_write_for_read, im.want_read_for_write));
}

void TlsStream::close() {
  Impl& im = *impl_;
  if (im.closed) return;
  if (!im.handshake_done && im.failure.ok()) {  // e.g. timed out mid-handshake
    im.context->stats().handshake_failures.fetch_add(1, std::memory_order_relaxed);
  }
  im.send_close_notify();
  im.closed = true;
  im.inner->close();
}

Status TlsStream::handshake(MonoTime deadline) {
  Impl& im = *impl_;
  while (!im.handshake_done) {
    if (!im.failure.ok()) return im.failure;
    ERR_clear_error();
    const int r = SSL_do_handshake(im.ssl);
    if (r == 1) {
      im.note_handshake();
      break;
    }
    const int err = SSL_get_error(im.ssl, r);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
      if (Status s =
              im.inner->wait(err == SSL_ERROR_WANT_READ ? kIoReadable : kIoWritable, deadline);
          !s.ok()) {
        return im.set_failure(std::string(s.message()));
      }
      continue;
    }
    if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && im.inner_eof)) {
      return im.set_failure("the peer closed the connection during the handshake");
    }
    return im.fail(err);
  }
  return ok_status();
}

bool TlsStream::handshake_done() const noexcept { return impl_->handshake_done; }

std::string TlsStream::version() const {
  return impl_->handshake_done ? SSL_get_version(impl_->ssl) : "";
}

std::string TlsStream::cipher() const {
  const char* c = impl_->handshake_done ? SSL_get_cipher_name(impl_->ssl) : nullptr;
  return c != nullptr ? c : "";
}

std::string TlsStream::alpn() const {
  const unsigned char* p = nullptr;
  unsigned int n = 0;
  SSL_get0_alpn_selected(impl_->ssl, &p, &n);
  return p != nullptr ? std::string(reinterpret_cast<const char*>(p), n) : std::string();
}

Result<std::unique_ptr<TlsStream>> connect_tls(const std::string& host, std::uint16_t port,
                                               std::shared_ptr<TlsContext> context,
                                               const std::string& server_name, Nanos timeout) {
  const MonoTime deadline = mono_now() + timeout;
  MYELIN_ASSIGN_OR_RETURN(auto tcp, connect_tcp(host, port, timeout));
  MYELIN_ASSIGN_OR_RETURN(auto tls,
                          TlsStream::client(std::move(context), std::move(tcp), server_name));
  MYELIN_RETURN_IF_ERROR(tls->handshake(deadline));
  return tls;
}

}  // namespace myelin::net
