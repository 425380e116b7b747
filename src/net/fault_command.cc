#include "myelin/net/fault_command.h"

#include <charconv>
#include <string>
#include <vector>

namespace myelin::net {
namespace {

constexpr std::size_t kMaxWords = 4;
constexpr double kMaxMillis = 3'600'000.0;  // an hour: anything longer is a typo

std::string quoted(std::string_view w) {
  std::string s = "'";
  for (char c : w.substr(0, 32)) s += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (w.size() > 32) s += "...";
  return s + "'";
}

Result<bool> parse_on_off(std::string_view cmd, std::string_view w) {
  if (w == "on") return true;
  if (w == "off") return false;
  return invalid_argument(std::string(cmd) + ": expected on or off, got " + quoted(w));
}

Result<Nanos> parse_millis(std::string_view cmd, std::string_view w) {
  double ms = 0;
  const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), ms);
  if (ec != std::errc() || end != w.data() + w.size() || !(ms >= 0) || ms > kMaxMillis) {
    return invalid_argument(std::string(cmd) + ": " + quoted(w) +
                            " is not a number of milliseconds in [0, 3600000]");
  }
  return Nanos(static_cast<std::int64_t>(ms * 1e6));
}

Result<std::uint64_t> parse_count(std::string_view cmd, std::string_view w) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), v);
  if (ec != std::errc() || end != w.data() + w.size()) {
    return invalid_argument(std::string(cmd) + ": " + quoted(w) +
                            " is not a non-negative whole number");
  }
  return v;
}

Result<FlowDirection> parse_direction(std::string_view cmd, std::string_view w) {
  if (w == "up") return FlowDirection::kUpstream;
  if (w == "down") return FlowDirection::kDownstream;
  if (w == "both") return FlowDirection::kBoth;
  return invalid_argument(std::string(cmd) + ": expected up, down or both, got " + quoted(w));
}

}  // namespace

Result<FaultCommand> parse_fault_command(std::string_view line) {
  std::vector<std::string_view> words;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    if (i == line.size()) break;
    const std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (words.size() == kMaxWords) {
      return invalid_argument("too many words (at most " + std::to_string(kMaxWords) + ")");
    }
    words.push_back(line.substr(start, i - start));
  }
  FaultCommand c;
  if (words.empty() || words[0].front() == '#') return c;
  const std::string_view cmd = words[0];
  auto arity = [&](std::size_t lo, std::size_t hi, const char* usage) -> Status {
    if (words.size() - 1 < lo || words.size() - 1 > hi) {
      return invalid_argument(std::string(cmd) + ": usage: " + usage);
    }
    return ok_status();
  };
  if (cmd == "reset" || cmd == "heal" || cmd == "stats" || cmd == "quit") {
    MYELIN_RETURN_IF_ERROR(arity(0, 0, std::string(cmd).c_str()));
    c.kind = cmd == "reset"   ? FaultCommand::Kind::kReset
             : cmd == "heal"  ? FaultCommand::Kind::kHeal
             : cmd == "stats" ? FaultCommand::Kind::kStats
                              : FaultCommand::Kind::kQuit;
  } else if (cmd == "refuse" || cmd == "blackhole") {
    MYELIN_RETURN_IF_ERROR(arity(1, 1, cmd == "refuse" ? "refuse on|off" : "blackhole on|off"));
    MYELIN_ASSIGN_OR_RETURN(c.on, parse_on_off(cmd, words[1]));
    c.kind = cmd == "refuse" ? FaultCommand::Kind::kRefuse : FaultCommand::Kind::kBlackhole;
  } else if (cmd == "latency") {
    MYELIN_RETURN_IF_ERROR(arity(1, 2, "latency MS [JITTER_MS]"));
    MYELIN_ASSIGN_OR_RETURN(c.latency, parse_millis(cmd, words[1]));
    if (words.size() == 3) {
      MYELIN_ASSIGN_OR_RETURN(c.jitter, parse_millis(cmd, words[2]));
    }
    c.kind = FaultCommand::Kind::kLatency;
  } else if (cmd == "bandwidth") {
    MYELIN_RETURN_IF_ERROR(arity(1, 1, "bandwidth BYTES_PER_SECOND"));
    MYELIN_ASSIGN_OR_RETURN(c.amount, parse_count(cmd, words[1]));
    c.kind = FaultCommand::Kind::kBandwidth;
  } else if (cmd == "cut") {
    MYELIN_RETURN_IF_ERROR(arity(2, 2, "cut up|down|both BYTES"));
    MYELIN_ASSIGN_OR_RETURN(c.direction, parse_direction(cmd, words[1]));
    MYELIN_ASSIGN_OR_RETURN(c.amount, parse_count(cmd, words[2]));
    c.kind = FaultCommand::Kind::kCut;
  } else if (cmd == "halfopen") {
    MYELIN_RETURN_IF_ERROR(arity(2, 2, "halfopen up|down|both silent|closed|off"));
    MYELIN_ASSIGN_OR_RETURN(c.direction, parse_direction(cmd, words[1]));
    if (words[2] == "silent") {
      c.mode = HalfOpenMode::kSilent;
    } else if (words[2] == "closed") {
      c.mode = HalfOpenMode::kClosed;
    } else if (words[2] == "off") {
      c.mode = HalfOpenMode::kOff;
    } else {
      return invalid_argument("halfopen: expected silent, closed or off, got " + quoted(words[2]));
    }
    c.kind = FaultCommand::Kind::kHalfOpen;
  } else {
    return invalid_argument("unknown command " + quoted(cmd) +
                            " (reset, refuse, blackhole, latency, bandwidth, cut, halfopen, "
                            "heal, stats, quit)");
  }
  return c;
}

Result<MonoTime> apply_fault_command(FaultProxy& proxy, const FaultCommand& c) {
  switch (c.kind) {
    case FaultCommand::Kind::kReset:
      return proxy.reset_all();
    case FaultCommand::Kind::kRefuse:
      return proxy.set_refuse(c.on);
    case FaultCommand::Kind::kBlackhole:
      return proxy.set_blackhole(c.on);
    case FaultCommand::Kind::kLatency:
      return proxy.set_latency(c.latency, c.jitter);
    case FaultCommand::Kind::kBandwidth:
      return proxy.set_bandwidth(c.amount);
    case FaultCommand::Kind::kCut:
      return proxy.cut_after(c.direction, c.amount);
    case FaultCommand::Kind::kHalfOpen:
      return proxy.set_half_open(c.direction, c.mode);
    case FaultCommand::Kind::kHeal:
      return proxy.heal();
    default:
      return invalid_argument("not a fault command");
  }
}

}  // namespace myelin::net
