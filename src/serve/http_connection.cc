#include "src/serve/http_connection.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "src/serve/oip.h"

namespace myelin::serve::detail {
namespace {

constexpr std::size_t kMaxBufferedOut = 1 << 20;  // stop reading past this much unsent
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string_view reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 411:
      return "Length Required";
    case 413:
      return "Content Too Large";
    case 415:
      return "Unsupported Media Type";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    default:
      return "Unknown";
  }
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

void append_uint(std::string& out, std::uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

}  // namespace

// llhttp calls these with parser->data = the Connection.
struct ParserCallbacks {
  static Connection& c(llhttp_t* p) { return *static_cast<Connection*>(p->data); }

  static int refuse(Connection& conn, int status, std::string message) {
    conn.error_status_ = status;
    conn.error_message_ = std::move(message);
    return -1;
  }

  static int count_header(Connection& conn, std::size_t len) {
    conn.header_bytes_ += len;
    if (conn.header_bytes_ > conn.lc_.shared->options.max_header_bytes) {
      return refuse(conn, 431,
                    "request line and headers exceed " +
                        std::to_string(conn.lc_.shared->options.max_header_bytes) + " bytes");
    }
    return 0;
  }

  static int on_message_begin(llhttp_t* p) {
    Connection& conn = c(p);
    conn.in_message_ = true;
    conn.headers_done_ = false;
    conn.message_start_ = mono_now();
    conn.header_bytes_ = 0;
    conn.field_.clear();
    conn.value_.clear();
    conn.field_complete_ = true;
    conn.expect_continue_ = false;
    conn.continue_owed_ = false;
    conn.request_.target.clear();
    conn.request_.body = std::string();
    conn.request_.inference_header_length.reset();
    return 0;
  }

  static int on_url(llhttp_t* p, const char* at, std::size_t len) {
    Connection& conn = c(p);
    if (int r = count_header(conn, len)) return r;
    conn.request_.target.append(at, len);
    return 0;
  }

  static int on_header_field(llhttp_t* p, const char* at, std::size_t len) {
    Connection& conn = c(p);
    if (int r = count_header(conn, len)) return r;
    if (conn.field_complete_) {
      conn.field_.clear();
      conn.value_.clear();
      conn.field_complete_ = false;
    }
    conn.field_.append(at, len);
    return 0;
  }

  static int on_header_field_complete(llhttp_t* p) {
    c(p).field_complete_ = true;
    return 0;
  }

  static int on_header_value(llhttp_t* p, const char* at, std::size_t len) {
    Connection& conn = c(p);
    if (int r = count_header(conn, len)) return r;
    conn.value_.append(at, len);
    return 0;
  }

  static int on_header_value_complete(llhttp_t* p) {
    Connection& conn = c(p);
    if (iequals(conn.field_, "expect")) {
      if (!iequals(conn.value_, "100-continue")) {
        return refuse(conn, 417, "unsupported Expect: '" + conn.value_ + "'");
      }
      conn.expect_continue_ = true;
    } else if (iequals(conn.field_, "inference-header-content-length")) {
      std::size_t n = 0;
      const char* end = conn.value_.data() + conn.value_.size();
      auto [ptr, ec] = std::from_chars(conn.value_.data(), end, n);
      if (ec != std::errc() || ptr != end) {
        return refuse(conn, 400,
                      "Inference-Header-Content-Length: '" + conn.value_ + "' is not a byte count");
      }
      conn.request_.inference_header_length = n;
    }
    conn.value_.clear();
    return 0;
  }

  static int on_headers_complete(llhttp_t* p) {
    Connection& conn = c(p);
    conn.headers_done_ = true;
    const std::size_t limit = conn.lc_.shared->options.max_body_bytes;
    const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (has_length && p->content_length > limit) {
      return refuse(conn, 413,
                    "body of " + std::to_string(p->content_length) +
                        " bytes exceeds the limit of " + std::to_string(limit) + " bytes");
    }
    if (has_length) {
      conn.request_.body.reserve(static_cast<std::size_t>(p->content_length) +
                                 simdjson::SIMDJSON_PADDING);
    }
    const bool body_follows = (has_length && p->content_length > 0) || (p->flags & F_CHUNKED);
    if (conn.expect_continue_ && body_follows) {
      if (conn.slots_.empty()) {  // out_ holds only whole earlier answers: order kept
        conn.out_.append(kContinue);
      } else {
        conn.continue_owed_ = true;  // sent by answer() once every earlier one is out
      }
    }
    return 0;
  }

  static int on_body(llhttp_t* p, const char* at, std::size_t len) {
    Connection& conn = c(p);
    conn.continue_owed_ = false;  // the client sent its body without waiting
    const std::size_t limit = conn.lc_.shared->options.max_body_bytes;
    if (conn.request_.body.size() + len > limit) {
      return refuse(conn, 413, "body exceeds the limit of " + std::to_string(limit) + " bytes");
    }
    conn.request_.body.append(at, len);
    return 0;
  }

  static int on_message_complete(llhttp_t* p) {
    Connection& conn = c(p);
    conn.in_message_ = false;
    conn.request_.method = static_cast<llhttp_method_t>(llhttp_get_method(p));
    conn.request_.received = mono_now();
    conn.dispatch();
    return conn.must_pause() ? HPE_PAUSED : 0;
  }

  static const llhttp_settings_t* settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t x;
      llhttp_settings_init(&x);
      x.on_message_begin = on_message_begin;
      x.on_url = on_url;
      x.on_header_field = on_header_field;
      x.on_header_field_complete = on_header_field_complete;
      x.on_header_value = on_header_value;
      x.on_header_value_complete = on_header_value_complete;
      x.on_headers_complete = on_headers_complete;
      x.on_body = on_body;
      x.on_message_complete = on_message_complete;
      return x;
    }();
    return &s;
  }
};

Connection::Connection(LoopContext& lc, std::unique_ptr<net::Stream> stream)
    : lc_(lc), stream_(std::move(stream)) {
  if (lc_.shared->tls) tls_ = dynamic_cast<const net::TlsStream*>(stream_.get());
  llhttp_init(&parser_, HTTP_REQUEST, ParserCallbacks::settings());
  parser_.data = this;
  last_active_ = mono_now();
  lc_.shared->metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
}

Connection::~Connection() {
  // Normally closed on the loop already; a connection whose loop is gone
  // (server stopped) only closes its socket.
  if (stream_) stream_->close();
  lc_.shared->metrics.open_connections.fetch_sub(1, std::memory_order_relaxed);
}

Status Connection::start() {
  interest_ = kIoReadable;
  // The loop's connection set keeps this alive while it is watched; the
  // callback runs only on the loop, and close_now() unregisters it first.
  return stream_->watch(*lc_.loop, interest_, [this](std::uint32_t events) { on_io(events); });
}

void Connection::on_io(std::uint32_t events) {
  auto self = shared_from_this();  // closing must not free us mid-call
  if ((events & kIoWritable) != 0) flush();
  if (closed_) return;
  if ((events & (kIoReadable | kIoHangup | kIoError)) != 0 && !stop_reading_ && !paused_) {
    read_ready();
  } else if ((events & (kIoHangup | kIoError)) != 0) {
    // Not reading (paused, or a closing answer is queued), and the socket
    // failed or the peer hung up both ways: epoll would report it on every
    // tick, and nothing more can be written to it.
    close_now();
    return;
  }
  if (!closed_) flush();
  if (!closed_) maybe_resume();  // the output may have drained below its limit
}

void Connection::read_ready() {
  for (int i = 0; i < 8 && !closed_ && !paused_ && !stop_reading_; ++i) {
    auto r = stream_->read({lc_.read_buffer.get(), lc_.read_buffer_size});
    if (!r) {  // reset by peer: nobody to answer
      close_now();
      return;
    }
    if (r->would_block) return;
    last_active_ = mono_now();
    if (r->eof) {
      stop_reading_ = true;
      if (in_message_) {
        const llhttp_errno_t err = llhttp_finish(&parser_);
        if (err != HPE_OK) {
          fail_request(400, "truncated request: the connection closed mid-message (" +
                                std::string(llhttp_get_error_reason(&parser_)
                                                ? llhttp_get_error_reason(&parser_)
                                                : llhttp_errno_name(err)) +
                                ")");
          return;
        }
      }
      close_after_flush_ = true;
      return;
    }
    feed(reinterpret_cast<const char*>(lc_.read_buffer.get()), r->bytes);
    if (r->bytes < lc_.read_buffer_size) return;
  }
}

void Connection::feed(const char* data, std::size_t len) {
  if (paused_ || stop_reading_) {
    if (!stop_reading_) pending_in_.append(data, len);
    return;
  }
  parsing_ = true;  // answers found while parsing are written in one go afterwards
  const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
  parsing_ = false;
  if (err == HPE_OK) return;
  if (err == HPE_PAUSED_UPGRADE) {
    // myelin speaks HTTP/1.1 only: the request was answered as such, and
    // the connection goes on as HTTP/1.1 (RFC 9110 7.8: ignoring Upgrade).
    const char* pos = llhttp_get_error_pos(&parser_);
    const std::size_t used = pos ? static_cast<std::size_t>(pos - data) : len;
    llhttp_resume_after_upgrade(&parser_);
    if (used < len) feed(data + used, len - used);
    return;
  }
  if (err == HPE_PAUSED) {
    const char* pos = llhttp_get_error_pos(&parser_);
    const std::size_t used = pos ? static_cast<std::size_t>(pos - data) : len;
    if (!stop_reading_) {
      paused_ = true;
      pending_in_.append(data + used, len - used);
    }
    return;
  }
  parse_failed(err, llhttp_get_error_pos(&parser_));
}

void Connection::parse_failed(llhttp_errno_t err, const char* /*pos*/) {
  if (error_status_ != 0) {
    fail_request(error_status_, error_message_);
    return;
  }
  const char* reason = llhttp_get_error_reason(&parser_);
  fail_request(400, std::string("malformed HTTP request: ") + (reason ? reason : "") + " (" +
                        llhttp_errno_name(err) + ")");
}

// A request that cannot be parsed further: answer it and close.
void Connection::fail_request(int status, std::string_view message) {
  in_message_ = false;
  stop_reading_ = true;
  pending_in_.clear();
  const std::uint64_t seq = head_seq_ + slots_.size();
  slots_.emplace_back();
  std::string body;
  encode_error(message, body);
  answer(seq, {status, "application/json", body, std::nullopt, true, {}});
}

bool Connection::must_pause() const noexcept {
  return closed_ || stop_reading_ || slots_.size() >= lc_.shared->options.max_pipeline ||
         out_.size() - out_off_ > kMaxBufferedOut;
}

void Connection::dispatch() {
  const std::uint64_t seq = head_seq_ + slots_.size();
  slots_.emplace_back();
  lc_.shared->metrics.http_requests.fetch_add(1, std::memory_order_relaxed);
  slots_.back().head = request_.method == HTTP_HEAD;
  if (llhttp_should_keep_alive(&parser_) == 0) {
    slots_.back().close = true;  // answered with Connection: close, then closed
    stop_reading_ = true;
  } else if (parser_.http_major == 1 && parser_.http_minor == 0) {
    slots_.back().keep_alive = true;  // RFC 9112 9.3: 1.0 persists only if told so
  }
  route(*this, seq, request_);
}

void Connection::write_response(std::string& out, const HttpResponse& r, bool close,
                                const Slot& slot) {
  if (r.status >= 400) lc_.shared->metrics.http_errors.fetch_add(1, std::memory_order_relaxed);
  out += "HTTP/1.1 ";
  append_uint(out, static_cast<std::uint64_t>(r.status));
  out += ' ';
  out += reason_phrase(r.status);
  out += "\r\nContent-Type: ";
  out += r.content_type;
  out += "\r\nContent-Length: ";
  append_uint(out, r.body.size());
  if (!r.allow.empty()) {
    out += "\r\nAllow: ";
    out += r.allow;
  }
  if (r.inference_header_length) {
    out += "\r\nInference-Header-Content-Length: ";
    append_uint(out, *r.inference_header_length);
  }
  if (close) {
    out += "\r\nConnection: close";
  } else if (slot.keep_alive) {
    out += "\r\nConnection: keep-alive";
  }
  out += "\r\n\r\n";
  if (!slot.head) out += r.body;  // HEAD: the headers of the answer, never a body
}

void Connection::answer(std::uint64_t seq, const HttpResponse& response) {
  if (closed_ || seq < head_seq_ || seq - head_seq_ >= slots_.size()) return;
  Slot& slot = slots_[seq - head_seq_];
  // Draining: only the last answer owed says Connection: close (flush()
  // closes once nothing is owed); a close on an earlier one would drop
  // the answers behind it.
  const bool last_owed = seq - head_seq_ + 1 == slots_.size() && !in_message_;
  const bool close = slot.close || response.close || (draining_ && last_owed);
  if (seq != head_seq_) {  // an earlier answer is still owed: keep this one
    write_response(slot.bytes, response, close, slot);
    slot.ready = true;
    slot.close = close;
    return;
  }
  write_response(out_, response, close, slot);
  slots_.pop_front();
  ++head_seq_;
  bool closing = close;
  while (!closing && !slots_.empty() && slots_.front().ready) {
    out_ += slots_.front().bytes;
    closing = slots_.front().close;
    slots_.pop_front();
    ++head_seq_;
  }
  if (closing) {
    stop_reading_ = true;
    close_after_flush_ = true;
    slots_.clear();
  } else if (continue_owed_ && slots_.empty()) {
    out_.append(kContinue);
    continue_owed_ = false;
  }
  if (parsing_) return;  // feed()'s caller flushes
  flush();
  maybe_resume();
}

void Connection::complete(std::unique_ptr<InferenceRequest> request) {
  if (lc_.loop->in_loop_thread()) {  // an inline run on this connection's loop
    auto self = shared_from_this();
    finish_inference(std::move(request));
    return;
  }
  // The request holds this connection (its responder) alive until the task runs.
  auto self = shared_from_this();
  (void)lc_.loop->submit([self = std::move(self), r = std::move(request)]() mutable {
    self->finish_inference(std::move(r));
  });
}

void Connection::finish_inference(std::unique_ptr<InferenceRequest> request) {
  if (closed_) return;  // the client left; its answer goes nowhere
  answer_inference(*this, std::move(request));
}

void Connection::flush() {
  while (!closed_ && out_off_ < out_.size()) {
    auto r = stream_->write(
        std::as_bytes(std::span<const char>(out_.data() + out_off_, out_.size() - out_off_)));
    if (!r) {  // the peer is gone
      close_now();
      return;
    }
    if (r->would_block) break;
    out_off_ += r->bytes;
  }
  if (closed_) return;
  if (out_off_ == out_.size()) {
    out_.clear();
    out_off_ = 0;
    if (out_.capacity() > 64 * 1024) out_.shrink_to_fit();
    if (close_after_flush_ && slots_.empty()) {
      close_now();
      return;
    }
    if (draining_ && slots_.empty() && !in_message_) {
      close_now();
      return;
    }
  }
  update_interest();
}

void Connection::update_interest() {
  std::uint32_t want = 0;
  if (!paused_ && !stop_reading_) want |= kIoReadable;
  if (out_off_ < out_.size()) want |= kIoWritable;
  if (want != interest_) {
    interest_ = want;
    (void)stream_->set_interest(want);
  }
}

void Connection::maybe_resume() {
  // A loop: the flush below may write everything at once, and then no
  // writable event comes to resume the next round.
  while (paused_ && !closed_ && !stop_reading_ &&
         slots_.size() < lc_.shared->options.max_pipeline &&
         out_.size() - out_off_ <= kMaxBufferedOut) {
    paused_ = false;
    llhttp_resume(&parser_);
    std::string pending = std::move(pending_in_);
    pending_in_.clear();
    if (!pending.empty()) feed(pending.data(), pending.size());
    if (!closed_) flush();
  }
}

void Connection::close_now() {
  if (closed_) return;
  closed_ = true;
  slots_.clear();
  stream_->close();
  auto self = shared_from_this();  // erase() drops the set's reference
  lc_.connections.erase(this);
}

void Connection::drain() {
  draining_ = true;
  if (!in_message_ && slots_.empty() && out_off_ == out_.size()) close_now();
}

void Connection::sweep(MonoTime now) {
  if (closed_) return;
  const HttpServerOptions& o = lc_.shared->options;
  if (tls_ != nullptr && !tls_->handshake_done() && now - last_active_ > o.header_timeout) {
    close_now();  // no TLS handshake within the header timeout: nobody to answer
    return;
  }
  if (in_message_ && !headers_done_ && now - message_start_ > o.header_timeout) {
    fail_request(408, "request headers not received within " +
                          std::to_string(o.header_timeout.count() / 1'000'000) + " ms");
    return;
  }
  if (in_message_ && headers_done_ && now - last_active_ > o.header_timeout) {
    fail_request(408, "request body stalled for " +
                          std::to_string(o.header_timeout.count() / 1'000'000) + " ms");
    return;
  }
  if (!in_message_ && slots_.empty() && out_off_ == out_.size() &&
      now - last_active_ > o.idle_timeout && !stream_->ready_now(kIoReadable)) {
    close_now();  // (bytes waiting mean the loop was stalled, not the client idle)
  }
}

}  // namespace myelin::serve::detail
