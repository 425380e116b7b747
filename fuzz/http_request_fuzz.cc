// Fuzzes the whole HTTP request path of `myelin serve` without sockets:
// llhttp, routing, Open Inference Protocol decoding, the batcher and the
// answer, through a real HttpServer that adopts one in-process duplex stream
// per input.
//
// Input: 4 bytes of framing, then the bytes a client sends.
//   byte 0    bits 0-1: split points used (0-3), so the bytes go out in up
//             to 4 writes; bit 2: pause between writes, so the server reads
//             them separately; high nibble 8: hold the write half open
//             for 80 ms before the end-of-stream, long enough for the
//             server's header timeout to answer a request left incomplete
//             (408). Such an input takes 80 ms, so only one flags byte in
//             16 asks for it.
//   bytes 1-3 split points, as fractions (n/256) of the client bytes.
//
// The server (one I/O loop, small limits so inputs reach them: 2 KiB of
// request line and headers, 8 KiB of body, 50 ms header timeout, 4
// requests in flight per connection) serves a repository in
// a temporary directory: `linear` ([N,4] -> [N,1]), `classifier` ([N,4] ->
// label INT64 [N], prob [N,3]) and `broken` (a file that does not load).
// A fuzz input may unload or reload models; they are loaded again after it.
//
// Invariants (abort on violation):
//  - the server ends every exchange (closes) within 5 s of the end-of-stream;
//  - every byte it sent parses as HTTP/1.1 responses, each with a
//    Content-Length and a status from the set the server may send, nothing
//    after one that says Connection: close, JSON bodies that are valid JSON
//    (and an octet-stream answer's JSON part, Inference-Header-Content-
//    Length bytes, too);
//  - the answers match the requests: when no answer closed the connection,
//    there is exactly one final answer per complete request (llhttp, with
//    the server's settings, counts them in the client bytes); otherwise at
//    most one more (the error that ended the connection);
//  - once the exchange is over, the server holds no connection.
#include <llhttp.h>
#include <simdjson.h>
#include <stdlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/net/stream.h"
#include "myelin/serve/http_server.h"
#include "myelin/serve/model_repository.h"
#include "src/model/test_models.h"

namespace {

using namespace myelin;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr Nanos kDeadline = 5s;  // an exchange not over by then is a hang
constexpr const char* kModels[] = {"linear", "classifier"};

void write_file(const fs::path& path, std::string_view bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "http_request_fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
}

// The server and its repository, made once per process.
struct Fixture {
  std::string dir;
  std::unique_ptr<serve::ModelRepository> repository;
  std::unique_ptr<serve::HttpServer> server;

  Fixture() {
    char tmpl[] = "/tmp/myelin_http_fuzz.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) std::abort();
    dir = tmpl;
    const fs::path root(dir);
    using model::testing::Attr;
    write_file(root / "linear/1/model.onnx", model::testing::linear_regressor(4, 7));
    write_file(root / "linear/config.toml",
               "max_batch_size = 4\nmax_queue_size = 4\nmax_queue_delay_us = 200\n");
    write_file(root / "classifier/1/model.onnx",
               model::testing::GraphBuilder()
                   .input("X", {-1, 4})
                   .output("label", {-1}, 7)
                   .output("prob", {-1, 3})
                   .node("LinearClassifier", {"X"}, {"label", "prob"},
                         {Attr::of("coefficients", model::testing::random_floats(12, 3)),
                          Attr::of("classlabels_ints", std::vector<std::int64_t>{10, 20, 30}),
                          Attr::of("post_transform", std::string("SOFTMAX"))},
                         "ai.onnx.ml", "lc")
                   .bytes());
    write_file(root / "classifier/config.toml", "default_timeout_ms = 1000\n");
    write_file(root / "broken/1/model.onnx", "not an onnx model");

    serve::RepositoryOptions ro;
    ro.root = dir;
    ro.log = [](const std::string&) {};
    auto repo = serve::ModelRepository::create(std::move(ro));
    if (!repo) die("repository", repo.error().to_string());
    repository = std::move(*repo);
    if (repository->load_all() != 2) die("load_all", "expected 2 ready models");

    serve::HttpServerOptions so;
    so.port = 0;
    so.io_threads = 1;
    so.max_connections = 16;
    so.max_header_bytes = 2048;
    so.max_body_bytes = 8 * 1024;
    so.header_timeout = 50ms;
    // Long: a loaded machine must not make a connection look idle before
    // the loop read the bytes already waiting (it would close it unanswered).
    so.idle_timeout = 10s;
    so.max_pipeline = 4;
    so.log = [](const std::string&) {};
    auto s = serve::HttpServer::create(std::move(so), *repository);
    if (!s) die("server", s.error().to_string());
    server = std::move(*s);
    if (auto st = server->start(); !st.ok()) die("start", st.to_string());
  }

  ~Fixture() {
    (void)server->shutdown(mono_now() + 1s);
    server.reset();
    repository.reset();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  [[noreturn]] static void die(const char* what, const std::string& why) {
    std::fprintf(stderr, "http_request_fuzz: %s: %s\n", what, why.c_str());
    std::abort();
  }

  // A fuzz input may have unloaded or reloaded models: serve them again.
  void restore() {
    for (const char* name : kModels) {
      if (repository->find(name).outcome != serve::Lookup::kFound) {
        if (auto st = repository->load(name); !st.ok()) die("reload", st.to_string());
      }
    }
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

// Bytes made readable: escapes for control and non-ASCII bytes.
std::string show(std::string_view s) {
  std::string o;
  for (unsigned char c : s.substr(0, 4096)) {
    if (c == '\n') {
      o += "\\n\n";
    } else if (c == '\r') {
      o += "\\r";
    } else if (c < 0x20 || c >= 0x7f) {
      char b[8];
      std::snprintf(b, sizeof(b), "\\x%02x", c);
      o += b;
    } else {
      o += static_cast<char>(c);
    }
  }
  return o;
}

void print_exchange(std::string_view sent, std::string_view got) {
  std::fprintf(stderr, "--- sent (%zu bytes)\n%s\n--- got (%zu bytes)\n%s\n", sent.size(),
               show(sent).c_str(), got.size(), show(got).c_str());
}

// What went wrong, with the exchange, then abort.
[[noreturn]] void fail(std::string_view what, std::string_view sent, std::string_view got) {
  std::fprintf(stderr, "http_request_fuzz: %.*s\n", static_cast<int>(what.size()), what.data());
  print_exchange(sent, got);
  std::abort();
}

// Counts the complete requests in the client bytes, as the server's llhttp
// (same version, default settings) sees them.
struct RequestCount {
  std::size_t complete = 0;
  bool error = false;      // the bytes stop being HTTP somewhere (or end mid-message)
  std::vector<bool> head;  // per complete request: was it HEAD (its answer has no body)
};

RequestCount count_requests(std::string_view bytes, bool finished) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_complete = [](llhttp_t* p) {
    auto& c = *static_cast<RequestCount*>(p->data);
    ++c.complete;
    c.head.push_back(llhttp_get_method(p) == HTTP_HEAD);
    return 0;
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  RequestCount count;
  parser.data = &count;
  llhttp_errno_t err = llhttp_execute(&parser, bytes.data(), bytes.size());
  while (err == HPE_PAUSED_UPGRADE) {  // the server ignores Upgrade and goes on in HTTP/1.1
    const std::size_t used = static_cast<std::size_t>(llhttp_get_error_pos(&parser) - bytes.data());
    llhttp_resume_after_upgrade(&parser);
    bytes.remove_prefix(used);
    err = llhttp_execute(&parser, bytes.data(), bytes.size());
  }
  if (err == HPE_OK && finished) err = llhttp_finish(&parser);
  count.error = err != HPE_OK;
  return count;
}

// The server's bytes, parsed as responses.
struct Responses {
  struct One {
    int status = 0;
    bool keep_alive = true;
    bool has_length = false;
    std::string content_type;
    std::string header_length;  // Inference-Header-Content-Length
    std::string body;
    bool head = false;  // the answer to a HEAD request: headers only
  };
  std::vector<One> all;
  One current;
  std::string field;
  bool in_value = false;
  std::string value;
  std::size_t bytes_after_close = 0;
  bool closed = false;     // a response said Connection: close
  std::vector<bool> head;  // per request in order: HEAD (its final answer has no body)
  std::size_t finals = 0;  // final (non-1xx) answers seen so far
};

void end_header(Responses& r) {
  if (!r.in_value) return;
  auto lower = [](std::string s) {
    for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  };
  const std::string f = lower(r.field);
  if (f == "content-type") r.current.content_type = r.value;
  if (f == "inference-header-content-length") r.current.header_length = r.value;
  r.field.clear();
  r.value.clear();
  r.in_value = false;
}

// Returns an error description, or empty.
std::string parse_responses(std::string_view bytes, Responses& out) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  settings.on_message_begin = [](llhttp_t* p) {
    auto& r = *static_cast<Responses*>(p->data);
    if (r.closed) return -1;  // bytes after a closing answer
    r.current = {};
    r.field.clear();
    r.value.clear();
    r.in_value = false;
    return 0;
  };
  settings.on_header_field = [](llhttp_t* p, const char* at, std::size_t len) {
    auto& r = *static_cast<Responses*>(p->data);
    end_header(r);
    r.field.append(at, len);
    return 0;
  };
  settings.on_header_value = [](llhttp_t* p, const char* at, std::size_t len) {
    auto& r = *static_cast<Responses*>(p->data);
    r.in_value = true;
    r.value.append(at, len);
    return 0;
  };
  settings.on_headers_complete = [](llhttp_t* p) {
    auto& r = *static_cast<Responses*>(p->data);
    end_header(r);
    r.current.status = llhttp_get_status_code(p);
    r.current.has_length = (p->flags & F_CONTENT_LENGTH) != 0;
    if (r.current.status < 200) return 0;
    const std::size_t i = r.finals++;
    r.current.head = i < r.head.size() && r.head[i];
    return r.current.head ? 1 : 0;  // 1: a HEAD answer, no body follows
  };
  settings.on_body = [](llhttp_t* p, const char* at, std::size_t len) {
    static_cast<Responses*>(p->data)->current.body.append(at, len);
    return 0;
  };
  settings.on_message_complete = [](llhttp_t* p) {
    auto& r = *static_cast<Responses*>(p->data);
    r.current.keep_alive = llhttp_should_keep_alive(p) != 0;
    if (r.current.status >= 200 && !r.current.keep_alive) r.closed = true;
    r.all.push_back(std::move(r.current));
    return 0;
  };
  llhttp_t parser;
  llhttp_init(&parser, HTTP_RESPONSE, &settings);
  parser.data = &out;
  llhttp_errno_t err = llhttp_execute(&parser, bytes.data(), bytes.size());
  if (err == HPE_OK) err = llhttp_finish(&parser);
  if (err == HPE_OK) return {};
  if (out.closed) return "bytes after a response that said Connection: close";
  const char* reason = llhttp_get_error_reason(&parser);
  return std::string("not HTTP responses: ") + llhttp_errno_name(err) + " " +
         (reason ? reason : "");
}

bool allowed_status(int s) {
  switch (s) {
    case 100:  // Expect: 100-continue
    case 200:
    case 400:
    case 404:
    case 405:
    case 408:
    case 413:
    case 417:
    case 431:
    case 503:  // model not ready, queue full
    case 504:  // the request's own timeout passed
      return true;
    default:
      return false;
  }
}

std::string check_json(simdjson::dom::parser& json, std::string_view text) {
  const simdjson::padded_string padded(text);
  simdjson::dom::element doc;
  auto e = json.parse(padded).get(doc);
  if (e) return std::string("invalid JSON body (") + simdjson::error_message(e) + ")";
  return {};
}

// Returns an error description, or empty.
std::string check_responses(const Responses& r) {
  static simdjson::dom::parser json;
  for (const auto& one : r.all) {
    if (!allowed_status(one.status)) return "unexpected status " + std::to_string(one.status);
    if (one.status == 100) continue;
    if (!one.has_length) return "a response without Content-Length";
    if (one.head) {
      if (!one.body.empty()) return "an answer to HEAD with a body";
      continue;
    }
    if (one.content_type == "application/json") {
      if (one.status != 200 && one.body.find("\"error\"") == std::string::npos) {
        return "an error response without \"error\": " + one.body;
      }
      if (auto e = check_json(json, one.body); !e.empty()) return e + ": " + one.body;
    } else if (one.content_type == "application/octet-stream") {
      std::size_t n = 0;
      const auto& h = one.header_length;
      if (h.empty() ||
          std::from_chars(h.data(), h.data() + h.size(), n).ptr != h.data() + h.size() ||
          n > one.body.size()) {
        return "octet-stream answer with a bad Inference-Header-Content-Length '" + h + "'";
      }
      if (auto e = check_json(json, std::string_view(one.body).substr(0, n)); !e.empty()) {
        return e + " in the JSON part";
      }
    } else if (one.content_type.rfind("text/plain", 0) != 0) {
      return "unexpected Content-Type '" + one.content_type + "'";
    }
  }
  return {};
}

struct Client {
  net::Stream& stream;
  std::string got;
  bool eof = false;

  // Takes whatever arrived, without waiting.
  void drain() {
    std::array<std::byte, 16384> buf;
    while (!eof) {
      auto r = stream.read(buf);
      if (!r || r->eof) {  // closed, or reset: either way the server ended it
        eof = true;
        return;
      }
      if (r->would_block || r->bytes == 0) return;
      got.append(reinterpret_cast<const char*>(buf.data()), r->bytes);
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Fixture& f = fixture();
  if (size < 4) return 0;
  const std::uint8_t flags = data[0];
  const std::string_view sent(reinterpret_cast<const char*>(data) + 4, size - 4);
  const bool pause = (flags & 4) != 0;
  const bool hold = (flags & 0xf0) == 0x80;
  std::vector<std::size_t> cuts = {0};
  for (int i = 0; i < (flags & 3); ++i) cuts.push_back(data[1 + i] * sent.size() / 256);
  cuts.push_back(sent.size());
  std::sort(cuts.begin(), cuts.end());

  auto pair = net::duplex_pair();
  if (!pair) Fixture::die("duplex_pair", pair.error().to_string());
  std::unique_ptr<net::Stream> a = std::move(pair->first);
  if (auto st = f.server->adopt(std::move(pair->second)); !st.ok()) {
    Fixture::die("adopt", st.to_string());
  }
  Client client{*a, {}, false};
  const MonoTime deadline = mono_now() + kDeadline;
  bool writable = true;
  for (std::size_t c = 0; c + 1 < cuts.size() && writable; ++c) {
    std::size_t off = cuts[c];
    while (off < cuts[c + 1]) {
      auto r = a->write(std::as_bytes(std::span<const char>(sent.data() + off, cuts[c + 1] - off)));
      if (!r) {  // the server closed: it answered and stopped reading
        writable = false;
        break;
      }
      if (r->would_block) {
        client.drain();
        if (mono_now() > deadline) fail("hang: the server stopped reading", sent, client.got);
        (void)a->wait(kIoWritable, std::min(deadline, mono_now() + 1ms));
        continue;
      }
      off += r->bytes;
    }
    if (pause && c + 2 < cuts.size()) std::this_thread::sleep_for(200us);
  }
  if (hold) {  // until the server closes, or 80 ms
    const MonoTime until = mono_now() + 80ms;
    while (!client.eof && mono_now() < until) {
      client.drain();
      if (!client.eof) (void)a->wait(kIoReadable, until);
    }
  }
  (void)a->shutdown_write();
  while (!client.eof) {
    client.drain();
    if (client.eof) break;
    if (mono_now() > deadline) {
      fail("hang: the server did not end the exchange within 5 s", sent, client.got);
    }
    (void)a->wait(kIoReadable, deadline);
  }
  a->close();

  Responses responses;
  responses.head = count_requests(sent, false).head;
  std::string error = parse_responses(client.got, responses);
  if (error.empty()) error = check_responses(responses);
  if (error.empty()) {
    std::size_t finals = 0;
    for (const auto& one : responses.all) finals += one.status >= 200 ? 1 : 0;
    const RequestCount count = count_requests(sent, true);
    if (!responses.closed && (finals != count.complete || count.error)) {
      error = std::to_string(finals) + " answers to " + std::to_string(count.complete) +
              " complete requests" + (count.error ? " (then bytes llhttp refuses)" : "") +
              ", and none closed the connection";
    } else if (responses.closed && finals > count.complete + 1) {
      error = std::to_string(finals) + " answers to " + std::to_string(count.complete) +
              " complete requests";
    }
  }
  if (!error.empty()) fail(error, sent, client.got);
  // MYELIN_FUZZ_VERBOSE=1: one line of answers per input; 2: the exchange too.
  static const char* verbose = std::getenv("MYELIN_FUZZ_VERBOSE");
  if (verbose != nullptr && verbose[0] == '2') print_exchange(sent, client.got);
  if (verbose != nullptr) {
    std::string line = "answers:";
    for (const auto& one : responses.all) {
      line += ' ' + std::to_string(one.status);
      if (!one.keep_alive && one.status >= 200) line += "(close)";
      if (one.status >= 400) line += " " + one.body;
    }
    std::fprintf(stderr, "%s\n", line.c_str());
  }

  // The server's side must be gone too (closed, nothing left holding it).
  const auto& open = f.server->metrics().open_connections;
  while (open.load() != 0) {
    if (mono_now() > deadline + kDeadline)
      fail("the server still holds the connection", sent, client.got);
    std::this_thread::sleep_for(50us);
  }
  f.restore();
  return 0;
}
