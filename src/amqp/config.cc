// ConnectionConfig::from_uri: the AMQP URI scheme as RabbitMQ documents it.
#include "myelin/amqp/config.h"

#include <charconv>
#include <string>

namespace myelin::amqp {
namespace {

Result<std::string> percent_decode(std::string_view in, std::string_view what) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    auto hex = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= in.size()) {
      return invalid_argument("amqp uri: " + std::string(what) + ": '%' at offset " +
                              std::to_string(i) + " is not followed by two hex digits");
    }
    const int hi = hex(in[i + 1]);
    const int lo = hex(in[i + 2]);
    if (hi < 0 || lo < 0) {
      return invalid_argument("amqp uri: " + std::string(what) + ": bad escape '" +
                              std::string(in.substr(i, 3)) + "'");
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

template <typename T>
Result<T> parse_number(std::string_view text, std::string_view what, T max) {
  std::uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || text.empty() || v > max) {
    return invalid_argument("amqp uri: " + std::string(what) + " '" + std::string(text) +
                            "' is not a number from 0 to " + std::to_string(max));
  }
  return static_cast<T>(v);
}

}  // namespace

Result<ConnectionConfig> ConnectionConfig::from_uri(std::string_view uri) {
  constexpr std::string_view kScheme = "amqp://";
  if (uri.substr(0, 8) == "amqps://") {
    return unimplemented("amqp uri: amqps:// (TLS) is not supported yet; use amqp://");
  }
  if (uri.substr(0, kScheme.size()) != kScheme) {
    return invalid_argument("amqp uri: '" + std::string(uri) + "' does not start with amqp://");
  }
  ConnectionConfig c;
  std::string_view rest = uri.substr(kScheme.size());
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path;
  bool has_path = false;
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    path = rest.substr(slash + 1);
    has_path = true;
    rest = rest.substr(0, slash);
  }
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    std::string_view user = userinfo;
    std::string_view pass;
    bool has_pass = false;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      user = userinfo.substr(0, colon);
      pass = userinfo.substr(colon + 1);
      has_pass = true;
    }
    MYELIN_ASSIGN_OR_RETURN(c.user, percent_decode(user, "user"));
    if (has_pass) {
      MYELIN_ASSIGN_OR_RETURN(c.password, percent_decode(pass, "password"));
    }
  }
  std::string_view host = rest;
  if (!rest.empty() && rest.front() == '[') {  // [::1]:5672
    auto close = rest.find(']');
    if (close == std::string_view::npos) {
      return invalid_argument("amqp uri: unterminated '[' in host '" + std::string(rest) + "'");
    }
    host = rest.substr(1, close - 1);
    rest = rest.substr(close + 1);
    if (!rest.empty() && rest.front() == ':') {
      MYELIN_ASSIGN_OR_RETURN(c.port, parse_number<std::uint16_t>(rest.substr(1), "port", 65535));
    } else if (!rest.empty()) {
      return invalid_argument("amqp uri: junk after host: '" + std::string(rest) + "'");
    }
  } else if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    MYELIN_ASSIGN_OR_RETURN(c.port,
                            parse_number<std::uint16_t>(rest.substr(colon + 1), "port", 65535));
  }
  if (!host.empty()) c.host = std::string(host);
  if (has_path && !path.empty()) {
    MYELIN_ASSIGN_OR_RETURN(c.vhost, percent_decode(path, "vhost"));
  }
  while (!query.empty()) {
    std::string_view kv = query.substr(0, query.find('&'));
    query = kv.size() < query.size() ? query.substr(kv.size() + 1) : std::string_view();
    if (kv.empty()) continue;
    const auto eq = kv.find('=');
    const std::string_view key = kv.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : kv.substr(eq + 1);
    if (key == "heartbeat") {
      MYELIN_ASSIGN_OR_RETURN(c.heartbeat_s,
                              parse_number<std::uint16_t>(value, "heartbeat", 65535));
    } else if (key == "frame_max") {
      MYELIN_ASSIGN_OR_RETURN(c.frame_max,
                              parse_number<std::uint32_t>(value, "frame_max", 0xffffffffu));
      if (c.frame_max != 0 && c.frame_max < 4096) {
        return invalid_argument("amqp uri: frame_max " + std::string(value) +
                                " is below the protocol minimum of 4096");
      }
    } else if (key == "channel_max") {
      MYELIN_ASSIGN_OR_RETURN(c.channel_max,
                              parse_number<std::uint16_t>(value, "channel_max", 65535));
    } else if (key == "connection_timeout") {
      MYELIN_ASSIGN_OR_RETURN(auto ms,
                              parse_number<std::uint32_t>(value, "connection_timeout", 3'600'000u));
      c.connect_timeout = std::chrono::milliseconds(ms);
    } else if (key == "close_timeout") {
      MYELIN_ASSIGN_OR_RETURN(auto ms,
                              parse_number<std::uint32_t>(value, "close_timeout", 3'600'000u));
      c.close_timeout = std::chrono::milliseconds(ms);
    } else if (key == "close_timeout_on_destroy") {
      MYELIN_ASSIGN_OR_RETURN(
          auto ms, parse_number<std::uint32_t>(value, "close_timeout_on_destroy", 3'600'000u));
      c.close_timeout_on_destroy = std::chrono::milliseconds(ms);
    } else if (key == "name") {
      MYELIN_ASSIGN_OR_RETURN(c.name, percent_decode(value, "name"));
    } else if (key == "recovery") {
      MYELIN_ASSIGN_OR_RETURN(auto on, parse_number<std::uint16_t>(value, "recovery", 1));
      c.recovery.enabled = on == 1;
    } else {
      return invalid_argument("amqp uri: unknown query parameter '" + std::string(key) +
                              "' (known: heartbeat, frame_max, channel_max, connection_timeout, "
                              "close_timeout, close_timeout_on_destroy, name, recovery)");
    }
  }
  return c;
}

std::string ConnectionConfig::describe() const {
  std::string vh = vhost == "/" ? "" : vhost;
  const bool v6 = host.find(':') != std::string::npos;
  return "amqp://" + user + "@" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) +
         "/" + vh;
}

}  // namespace myelin::amqp
