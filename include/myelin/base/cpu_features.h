// CPU feature detection for runtime kernel dispatch.
//
// Kernels are compiled for several instruction sets and pick one at run time
// from these flags; myelin is never built for -march=native only. The flags
// are read once (CPUID through the compiler's builtins, which also check that
// the OS saves the wide registers) and are safe to read from any thread.
#pragma once

#include <string>

namespace myelin {

struct CpuFeatures {
  bool sse42 = false;
  bool avx = false;
  bool avx2 = false;
  bool fma = false;
  bool avx512f = false;
  bool avx512bw = false;
  bool avx512vl = false;

  // "avx2 fma avx512f ..." — the flags that are set, for reports.
  [[nodiscard]] std::string to_string() const;
};

const CpuFeatures& cpu_features() noexcept;

}  // namespace myelin
