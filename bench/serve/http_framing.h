// HTTP/1.x response framing for bench/serve/open_loop.cc: where the first
// response in a byte buffer ends, its status, and whether the server closes
// the connection after it. Understands Content-Length, chunked transfer
// coding (with trailers), and the bodiless statuses (1xx, 204, 304). A
// response framed by closing the connection is reported as malformed: the
// load generator cannot time it. Pure functions of the bytes, so a fuzzer or
// a test can drive them directly.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>

namespace myelin::bench {

inline constexpr size_t kMaxResponseHead = 64 * 1024;

inline bool ContainsNoCase(std::string_view hay, std::string_view needle) {
  auto eq = [](unsigned char a, unsigned char b) { return std::tolower(a) == std::tolower(b); };
  return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), eq) != hay.end();
}

inline bool IsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ContainsNoCase(a, b);
}

// The framing of the first HTTP/1.x response in `buf`.
struct Framing {
  enum State { kIncomplete, kComplete, kMalformed } state = kIncomplete;
  size_t length = 0;  // of the whole response, once complete
  int status = 0;
  bool close = false;  // "Connection: close"
};

inline Framing FrameResponse(std::string_view buf) {
  Framing f;
  const size_t head_end = buf.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    if (buf.size() > kMaxResponseHead) f.state = Framing::kMalformed;
    return f;
  }
  auto digit = [&](size_t i) { return std::isdigit(static_cast<unsigned char>(buf[i])) != 0; };
  if (buf.substr(0, 7) != "HTTP/1." || buf.size() < 12 || buf[8] != ' ' || !digit(9) ||
      !digit(10) || !digit(11)) {
    f.state = Framing::kMalformed;
    return f;
  }
  f.status = std::atoi(std::string(buf.substr(9, 3)).c_str());
  bool chunked = false;
  long long content_length = -1;
  for (size_t pos = buf.find("\r\n") + 2; pos < head_end;) {
    const size_t eol = buf.find("\r\n", pos);
    const std::string_view line = buf.substr(pos, eol - pos);
    pos = eol + 2;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    const std::string_view name = line.substr(0, colon), value = line.substr(colon + 1);
    if (IsNoCase(name, "content-length")) content_length = std::atoll(std::string(value).c_str());
    if (IsNoCase(name, "transfer-encoding")) chunked = ContainsNoCase(value, "chunked");
    if (IsNoCase(name, "connection")) f.close = ContainsNoCase(value, "close");
  }
  if (f.status / 100 == 1 || f.status == 204 || f.status == 304) content_length = 0;
  size_t pos = head_end + 4;
  if (chunked) {  // size line, data, CRLF, ..., "0" line, trailer lines, CRLF
    for (size_t size = 1; size != 0;) {
      const size_t eol = buf.find("\r\n", pos);
      if (eol == std::string_view::npos) return f;
      size = std::strtoull(std::string(buf.substr(pos, eol - pos)).c_str(), nullptr, 16);
      if (size > buf.size()) return f;  // cannot be complete yet (and pos cannot wrap)
      pos = eol + 2 + (size ? size + 2 : 0);
      if (pos > buf.size()) return f;
      if (size && buf.substr(pos - 2, 2) != "\r\n") return {Framing::kMalformed};
    }
    for (size_t eol; (eol = buf.find("\r\n", pos)) != pos; pos = eol + 2) {
      if (eol == std::string_view::npos) return f;
    }
    pos += 2;
  } else if (content_length >= 0) {
    pos += static_cast<size_t>(content_length);
    if (pos > buf.size()) return f;
  } else {
    return {Framing::kMalformed};  // read-until-close: no server worth timing does that
  }
  f.state = Framing::kComplete;
  f.length = pos;
  return f;
}

}  // namespace myelin::bench
