#include "myelin/serve/http_client.h"

#include <llhttp.h>

#include <cstring>

namespace myelin::serve {

std::string HttpReply::header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return {};
}

struct HttpClient::Parser {
  llhttp_t parser{};
  llhttp_settings_t settings{};
  HttpReply reply;
  std::string field;
  bool field_done = true;
  bool complete = false;

  Parser() {
    llhttp_settings_init(&settings);
    settings.on_header_field = [](llhttp_t* p, const char* at, std::size_t n) {
      auto& self = *static_cast<Parser*>(p->data);
      if (self.field_done) {
        self.field.clear();
        self.field_done = false;
      }
      for (std::size_t i = 0; i < n; ++i) {
        char c = at[i];
        self.field += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
      }
      return 0;
    };
    settings.on_header_value = [](llhttp_t* p, const char* at, std::size_t n) {
      auto& self = *static_cast<Parser*>(p->data);
      if (!self.field_done) {
        self.reply.headers.emplace_back(self.field, "");
        self.field_done = true;
      }
      self.reply.headers.back().second.append(at, n);
      return 0;
    };
    settings.on_body = [](llhttp_t* p, const char* at, std::size_t n) {
      static_cast<Parser*>(p->data)->reply.body.append(at, n);
      return 0;
    };
    settings.on_message_complete = [](llhttp_t* p) {
      auto& self = *static_cast<Parser*>(p->data);
      self.reply.status = static_cast<int>(p->status_code);
      self.complete = true;
      return static_cast<int>(HPE_PAUSED);  // one answer per request() call
    };
    reset();
  }
  void reset() {
    llhttp_init(&parser, HTTP_RESPONSE, &settings);
    parser.data = this;
    reply = HttpReply{};
    field_done = true;
    complete = false;
  }
};

HttpClient::HttpClient(std::unique_ptr<net::Stream> stream)
    : stream_(std::move(stream)), parser_(std::make_unique<Parser>()) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::connect(const std::string& host, std::uint16_t port,
                                                        Nanos timeout) {
  const std::string h = host == "localhost" ? "127.0.0.1" : host;
  MYELIN_ASSIGN_OR_RETURN(auto stream, net::connect_tcp(h, port, timeout));
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(stream)));
}

Result<std::unique_ptr<HttpClient>> HttpClient::connect(const std::string& url, Nanos timeout,
                                                        const net::TlsClientOptions& tls) {
  std::string_view u = url;
  const bool https = u.substr(0, 8) == "https://";
  if (https) u.remove_prefix(8);
  if (u.substr(0, 7) == "http://") u.remove_prefix(7);
  const std::size_t slash = u.find('/');
  if (slash != std::string_view::npos) u = u.substr(0, slash);
  const std::size_t colon = u.rfind(':');
  if (colon == std::string_view::npos) {
    return invalid_argument(url + ": expected http://HOST:PORT or https://HOST:PORT");
  }
  const std::string host(u.substr(0, colon));
  const std::string port_text(u.substr(colon + 1));
  char* end = nullptr;
  const long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 1 || port > 65535) {
    return invalid_argument(url + ": '" + port_text + "' is not a port");
  }
  if (!https) return connect(host, static_cast<std::uint16_t>(port), timeout);
  MYELIN_ASSIGN_OR_RETURN(auto context, net::TlsContext::client(tls));
  const std::string address = host == "localhost" ? "127.0.0.1" : host;
  MYELIN_ASSIGN_OR_RETURN(auto stream, net::connect_tls(address, static_cast<std::uint16_t>(port),
                                                        std::move(context), host, timeout));
  const net::TlsStream* raw = stream.get();
  auto client = std::unique_ptr<HttpClient>(new HttpClient(std::move(stream)));
  client->tls_ = raw;
  return client;
}

Result<HttpReply> HttpClient::request(
    const std::string& method, const std::string& path, const std::string& body,
    const std::vector<std::pair<std::string, std::string>>& headers, Nanos timeout) {
  const MonoTime deadline = mono_now() + timeout;
  std::string head = method + " " + path + " HTTP/1.1\r\nHost: myelin\r\n";
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST")
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  head += "\r\n";
  const iovec iov[2] = {{head.data(), head.size()}, {const_cast<char*>(body.data()), body.size()}};
  std::size_t sent = 0;
  const std::size_t total = head.size() + body.size();
  while (sent < total) {
    iovec part[2];
    std::size_t n = 0;
    std::size_t skip = sent;
    for (const auto& v : iov) {
      if (skip >= v.iov_len) {
        skip -= v.iov_len;
        continue;
      }
      part[n++] = {static_cast<char*>(v.iov_base) + skip, v.iov_len - skip};
      skip = 0;
    }
    MYELIN_ASSIGN_OR_RETURN(auto r, stream_->writev({part, n}));
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(stream_->wait(kIoWritable, deadline));
      continue;
    }
    sent += r.bytes;
  }
  Parser& p = *parser_;
  p.reset();
  char buf[64 * 1024];
  while (!p.complete) {
    MYELIN_ASSIGN_OR_RETURN(auto r, stream_->read(std::as_writable_bytes(std::span<char>(buf))));
    if (r.would_block) {
      MYELIN_RETURN_IF_ERROR(stream_->wait(kIoReadable, deadline));
      continue;
    }
    if (r.eof) {
      if (llhttp_finish(&p.parser) == HPE_OK && p.complete) break;
      return unavailable("HTTP " + method + " " + path +
                         ": the server closed the connection before answering");
    }
    const llhttp_errno_t err = llhttp_execute(&p.parser, buf, r.bytes);
    if (err != HPE_OK && err != HPE_PAUSED) {
      return protocol_error("HTTP " + method + " " + path +
                            ": malformed response: " + llhttp_errno_name(err));
    }
  }
  return std::move(p.reply);
}

}  // namespace myelin::serve
