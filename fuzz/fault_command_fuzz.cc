// The FaultProxy command line parser (myelin faultproxy's stdin): any bytes
// give a command or a clear error, never a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "myelin/net/fault_command.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto c = myelin::net::parse_fault_command(line);
  if (!c.has_value() && c.error().message().empty()) std::abort();  // errors must say what
  return 0;
}
