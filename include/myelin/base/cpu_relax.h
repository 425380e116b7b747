// A spin-wait hint for busy-wait loops: PAUSE on x86 (it also keeps the
// loop from flooding the memory pipeline and yields to the SMT sibling),
// YIELD on AArch64, nothing elsewhere.
#pragma once

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace myelin::detail {

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

}  // namespace myelin::detail
