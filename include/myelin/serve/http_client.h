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
  // "http://HOST:PORT" (HOST an IPv4 address or localhost) or HOST and port.
  static Result<std::unique_ptr<HttpClient>> connect(const std::string& url,
                                                     Nanos timeout = std::chrono::seconds(5));
  static Result<std::unique_ptr<HttpClient>> connect(const std::string& host, std::uint16_t port,
                                                     Nanos timeout = std::chrono::seconds(5));
  ~HttpClient();

  // Sends one request and reads its answer. `headers` are extra "Name: value"
  // pairs; Content-Length is added for a non-empty body (or for POST).
  Result<HttpReply> request(const std::string& method, const std::string& path,
                            const std::string& body = {},
                            const std::vector<std::pair<std::string, std::string>>& headers = {},
                            Nanos timeout = std::chrono::seconds(30));

 private:
  explicit HttpClient(std::unique_ptr<net::Stream> stream);
  struct Parser;
  std::unique_ptr<net::Stream> stream_;
  std::unique_ptr<Parser> parser_;
};

}  // namespace myelin::serve
