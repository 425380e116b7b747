// Fuzzes the TDX quote parser and everything verification does with what it
// finds: the PCK chain (PEM) from the quote, the SGX extension of the PCK
// certificate, the signatures, at a fixed time at which the real quote's
// chain is valid, and the TCB-level algorithm with the input as TCB info.
// Checked: nothing crashes, leaks or reads out of bounds; a parsed quote is
// version 4.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "myelin/secure/tdx.h"

using namespace myelin::secure;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
  auto quote = tdx::parse_quote(in);
  if (quote && quote->version != 4) std::abort();
  using namespace std::chrono;
  const sys_seconds at = sys_days{year{2023} / 7 / 1} + hours{1};
  (void)tdx::verify_quote(in, tdx::Policy{}, at);
  // The input as TCB info JSON for a fixed PCK TCB.
  tdx::PckTcb pck;
  std::array<std::byte, 16> tee{};
  (void)tdx::evaluate_tcb(std::string_view(reinterpret_cast<const char*>(data), size), pck, tee,
                          at);
  return 0;
}
