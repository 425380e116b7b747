// One HTTP/1.1 connection of the OIP front end, and the per-loop context it
// runs in. Private to src/serve (http_server.cc owns both).
//
// A Connection lives on one I/O loop's thread. The loop's connection set
// holds it (shared_ptr); so does every request it has in a batcher (as its
// Responder), so a finished request can always be handed back, even to a
// connection that closed meanwhile (its answer is then dropped).
#pragma once

#include <llhttp.h>
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "myelin/loop/event_loop.h"
#include "myelin/net/stream.h"
#include "myelin/net/tls.h"
#include "myelin/serve/http_server.h"
#include "myelin/serve/request.h"
#include "src/serve/admin_queue.h"

namespace myelin::serve::detail {

class Connection;

// What a route answers.
struct HttpResponse {
  int status = 200;
  std::string_view content_type = "application/json";
  std::string_view body;
  std::optional<std::size_t> inference_header_length;
  bool close = false;      // close the connection once written
  std::string_view allow;  // the Allow header of a 405
};

// A parsed request, as the router sees it.
struct HttpRequest {
  llhttp_method_t method = HTTP_GET;
  std::string target;
  std::string body;
  std::optional<std::size_t> inference_header_length;
  MonoTime received{};
};

// Shared by the loops (read-only after start, or atomic).
struct ServerShared {
  HttpServerOptions options;
  ModelRepository* repository = nullptr;
  ServerMetrics metrics;
  std::atomic<bool> draining{false};
  AdminQueue* admin = nullptr;           // runs load/unload/index
  std::shared_ptr<net::TlsContext> tls;  // HTTPS; null: plain HTTP
};

// One I/O loop and what its connections share.
struct LoopContext {
  ServerShared* shared = nullptr;
  std::unique_ptr<EventLoop> loop;
  std::unique_ptr<net::Listener> listener;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> connections;
  std::unique_ptr<std::byte[]> read_buffer;
  std::size_t read_buffer_size = 64 * 1024;
  simdjson::dom::parser json;
  std::string scratch;  // a body being encoded
  // Models with requests enqueued during this loop tick: flushed together
  // once the tick's reads are done, so what one read pass produced forms
  // one batch.
  std::vector<std::shared_ptr<ServedModel>> pending_flush;
  bool flush_queued = false;
  TimerId sweep_timer = 0;
};

class Connection final : public Responder, public std::enable_shared_from_this<Connection> {
 public:
  Connection(LoopContext& lc, std::unique_ptr<net::Stream> stream);
  ~Connection() override;

  Status start();
  // Batcher worker thread: hands the request back to this connection's loop.
  void complete(std::unique_ptr<InferenceRequest> request) override;

  // --- loop thread ---
  // Answers the request with sequence number `seq` (writes it when every
  // earlier one has been answered).
  void answer(std::uint64_t seq, const HttpResponse& response);
  void close_now();
  // The server is draining: close once nothing is owed.
  void drain();
  // Timeouts; called by the loop's sweep timer.
  void sweep(MonoTime now);
  [[nodiscard]] bool closed() const noexcept { return closed_; }
  [[nodiscard]] LoopContext& context() noexcept { return lc_; }

 private:
  friend struct ParserCallbacks;
  struct Slot {
    bool ready = false;
    bool close = false;
    bool head = false;        // a HEAD request: the answer has no body
    bool keep_alive = false;  // HTTP/1.0 with keep-alive: the answer must say so
    std::string bytes;
  };

  void on_io(std::uint32_t events);
  void read_ready();
  void feed(const char* data, std::size_t len);
  void parse_failed(llhttp_errno_t err, const char* pos);
  void dispatch();
  void finish_inference(std::unique_ptr<InferenceRequest> request);
  void flush();
  void update_interest();
  void maybe_resume();
  [[nodiscard]] bool must_pause() const noexcept;
  void fail_request(int status, std::string_view message);
  void write_response(std::string& out, const HttpResponse& r, bool close, const Slot& slot);

  LoopContext& lc_;
  std::unique_ptr<net::Stream> stream_;
  const net::TlsStream* tls_ = nullptr;  // stream_ when it is TLS: its handshake is timed
  llhttp_t parser_{};
  std::uint32_t interest_ = 0;
  bool closed_ = false;
  bool paused_ = false;        // parser paused: too much in flight
  bool stop_reading_ = false;  // a closing answer is queued, or the peer is done
  bool close_after_flush_ = false;
  bool draining_ = false;
  bool parsing_ = false;  // inside llhttp_execute: answers wait for one flush
  // The message being parsed.
  bool in_message_ = false;
  bool headers_done_ = false;
  MonoTime message_start_{};
  MonoTime last_active_{};
  std::size_t header_bytes_ = 0;
  int error_status_ = 0;  // set by a callback that refused the message
  std::string error_message_;
  std::string field_, value_;
  bool field_complete_ = true;
  bool expect_continue_ = false;
  bool continue_owed_ = false;  // a 100 Continue held back behind earlier answers
  HttpRequest request_;
  // Pipelining: one slot per request read, answered in order.
  std::deque<Slot> slots_;
  std::uint64_t head_seq_ = 0;  // seq of slots_.front()
  std::string pending_in_;      // bytes read while the parser was paused
  std::string out_;             // answers ready to write
  std::size_t out_off_ = 0;
};

// Routes a complete request (router.cc). Answers through conn.answer(seq,
// ...), now or later.
void route(Connection& conn, std::uint64_t seq, HttpRequest& request);
// Answers an inference request the batcher finished.
void answer_inference(Connection& conn, std::unique_ptr<InferenceRequest> request);

}  // namespace myelin::serve::detail
