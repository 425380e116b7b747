// A small blocking HTTP/1.1 client for `myelin infer`, the tests and the
// benchmark's checks: one keep-alive connection, one request at a time.
// Responses are parsed with llhttp. Not thread-safe; one per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "myelin/base/clock.h"
#include "myelin/base/result.h"
#include "myelin/net/stream.h"
#include "myelin/net/tls.h"

namespace myelin::serve {

struct HttpReply {
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased
  std::string body;
  // The value of header `name` (lower case), or empty.
  [[nodiscard]] std::string header(std::string_view name) const;
};

class HttpClient {
 public:
  // "http://HOST:PORT" or "https://HOST:PORT" (HOST an IPv4 address or
  // localhost), or HOST and port (plain HTTP). https verifies the server's
  // certificate against `tls` (its CA file, else the system's) and its name
  // against HOST, and offers ALPN http/1.1; the handshake is done on return.
  static Result<std::unique_ptr<HttpClient>> connect(const std::string& url,
                                                     Nanos timeout = std::chrono::seconds(5),
                                                     const net::TlsClientOptions& tls = {});
  static Result<std::unique_ptr<HttpClient>> connect(const std::string& host, std::uint16_t port,
                                                     Nanos timeout = std::chrono::seconds(5));
  ~HttpClient();

  // Sends one request and reads its answer. `headers` are extra "Name: value"
  // pairs; Content-Length is added for a non-empty body (or for POST).
  Result<HttpReply> request(const std::string& method, const std::string& path,
                            const std::string& body = {},
                            const std::vector<std::pair<std::string, std::string>>& headers = {},
                            Nanos timeout = std::chrono::seconds(30));

  // The TLS connection of an https client (version, cipher, ALPN); else null.
  [[nodiscard]] const net::TlsStream* tls() const noexcept { return tls_; }

 private:
  explicit HttpClient(std::unique_ptr<net::Stream> stream);
  struct Parser;
  std::unique_ptr<net::Stream> stream_;
  const net::TlsStream* tls_ = nullptr;
  std::unique_ptr<Parser> parser_;
};

}  // namespace myelin::serve
