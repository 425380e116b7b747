// `myelin faultproxy --upstream HOST:PORT [--listen [HOST:]PORT]`: a
// FaultProxy driven by one-line commands on stdin (the language in
// include/myelin/net/fault_command.h), for Python peers, scripts and humans.
//
// stdout, one line each, flushed:
//   listening HOST:PORT                        once the proxy accepts
//   ok COMMAND T_NS                            a fault took effect at T_NS,
//                                              CLOCK_MONOTONIC nanoseconds
//                                              (Python: time.monotonic_ns())
//   stats accepted=N active=N refused=N resets=N upstream_failures=N up_bytes=N down_bytes=N
//   error MESSAGE                              a bad line; the proxy runs on
// End of input or `quit` stops the proxy (exit 0).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "apps/myelin/commands.h"
#include "myelin/net/fault_command.h"
#include "myelin/net/fault_proxy.h"

namespace myelin::cli {
namespace {

struct FaultProxyArgs {
  std::string listen = "127.0.0.1:0";
  std::string upstream;
  std::uint64_t seed = 1;
};

// "HOST:PORT" or "PORT" (host defaults to 127.0.0.1).
bool split_host_port(const std::string& s, std::string& host, std::uint16_t& port) {
  const auto colon = s.rfind(':');
  host = colon == std::string::npos ? "127.0.0.1" : s.substr(0, colon);
  const std::string p = colon == std::string::npos ? s : s.substr(colon + 1);
  if (p.empty() || p.size() > 5 || p.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  const unsigned long v = std::stoul(p);
  if (v > 65535) return false;
  port = static_cast<std::uint16_t>(v);
  return !host.empty();
}

int run_faultproxy(const FaultProxyArgs& args) {
  net::FaultProxyOptions o;
  if (!split_host_port(args.listen, o.listen_host, o.listen_port)) {
    std::fprintf(stderr, "myelin faultproxy: --listen '%s' is not [HOST:]PORT\n",
                 args.listen.c_str());
    return kExitUsage;
  }
  if (!split_host_port(args.upstream, o.upstream_host, o.upstream_port) || o.upstream_port == 0) {
    std::fprintf(stderr, "myelin faultproxy: --upstream '%s' is not HOST:PORT\n",
                 args.upstream.c_str());
    return kExitUsage;
  }
  o.seed = args.seed;
  auto proxy = net::FaultProxy::start(o);
  if (!proxy) {
    std::fprintf(stderr, "myelin faultproxy: %s\n", proxy.error().to_string().c_str());
    return kExitFailure;
  }
  std::printf("listening %s:%u\n", o.listen_host.c_str(), unsigned{proxy.value()->port()});
  std::fflush(stdout);
  std::string line;
  while (std::getline(std::cin, line)) {
    auto cmd = net::parse_fault_command(line);
    if (!cmd) {
      std::printf("error %s\n", std::string(cmd.error().message()).c_str());
    } else if (cmd->kind == net::FaultCommand::Kind::kQuit) {
      break;
    } else if (cmd->kind == net::FaultCommand::Kind::kStats) {
      const net::FaultProxyStats s = proxy.value()->stats();
      std::printf(
          "stats accepted=%llu active=%llu refused=%llu resets=%llu upstream_failures=%llu "
          "up_bytes=%llu down_bytes=%llu\n",
          static_cast<unsigned long long>(s.accepted), static_cast<unsigned long long>(s.active),
          static_cast<unsigned long long>(s.refused),
          static_cast<unsigned long long>(s.resets_injected),
          static_cast<unsigned long long>(s.upstream_failures),
          static_cast<unsigned long long>(s.bytes_upstream),
          static_cast<unsigned long long>(s.bytes_downstream));
    } else if (cmd->kind != net::FaultCommand::Kind::kNone) {
      auto at = net::apply_fault_command(*proxy.value(), *cmd);
      if (!at) {
        std::printf("error %s\n", std::string(at.error().message()).c_str());
      } else {
        const auto first = line.find_first_not_of(" \t");
        const auto word_end = line.find_first_of(" \t\r", first);
        std::printf("ok %s %lld\n", line.substr(first, word_end - first).c_str(),
                    static_cast<long long>(at.value().time_since_epoch().count()));
      }
    }
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace

void register_faultproxy(CLI::App& app, Context& ctx) {
  auto args = std::make_shared<FaultProxyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "faultproxy", "Run a fault-injecting TCP proxy controlled by commands on stdin");
  cmd->add_option("--upstream", args->upstream, "HOST:PORT to forward to")->required();
  cmd->add_option("--listen", args->listen, "[HOST:]PORT to listen on (default 127.0.0.1:0)");
  cmd->add_option("--seed", args->seed, "latency jitter seed");
  cmd->footer(
      "stdin commands: reset | refuse on|off | blackhole on|off | latency MS [JITTER_MS] |\n"
      "  bandwidth BYTES_PER_S | cut up|down|both BYTES | halfopen up|down|both "
      "silent|closed|off |\n  heal | stats | quit");
  cmd->callback([args, &ctx] { ctx.exit_code = run_faultproxy(*args); });
}

}  // namespace myelin::cli
