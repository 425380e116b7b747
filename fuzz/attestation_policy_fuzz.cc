// Fuzzes the attestation policy parser (docs/attestation.md, "Policy file"):
// any bytes must give a policy or an error naming file, line and key, never
// a crash or an exception. A parsed policy must be internally consistent.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "myelin/secure/attestation_policy.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto policy = myelin::secure::parse_attestation_policy(text, "fuzz.toml", "/base");
  if (!policy) {
    if (policy.error().message().find("fuzz.toml") == std::string_view::npos) std::abort();
    return 0;
  }
  if (policy->platforms.empty()) std::abort();
  for (const auto* rules : {&policy->snp.measurements, &policy->tdx.measurements}) {
    for (const auto& rule : rules->rules) {
      if (rule.allowed.empty()) std::abort();
      for (const auto& value : rule.allowed) {
        if (value.size() != 32 && value.size() != 48) std::abort();
      }
    }
  }
  return 0;
}
