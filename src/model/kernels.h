// Dense-maths kernels, one table per instruction set.
//
// kernels_scalar.cc is plain C++; kernels_avx2.cc and kernels_avx512.cc are
// compiled with per-file -mavx2 -mfma / -mavx512f flags and only ever called
// after cpu_features() says the CPU has them, so the binary still runs on any
// x86-64. All kernels are pure functions of their arguments.
#pragma once

#include <cstddef>
#include <cstdint>

#include "myelin/model/model.h"
#include "src/model/forest.h"
#include "src/model/gemm.h"

namespace myelin::model::detail {

struct Kernels {
  // y[r*n + j] = dot(x[r*k ...], w[j*k ...]) + (bias ? bias[j] : 0),
  // for r < rows, j < n. The Dense step and linear models run on this.
  void (*dense)(const float* x, std::size_t rows, std::size_t k, const float* w, std::size_t n,
                const float* bias, float* y);
  // Plain dot product.
  float (*dot)(const float* a, const float* b, std::size_t n);
  // Dense on a batch (rows >= 2) with packed weights and a fused ReLU
  // (gemm.h); `dense` stays the single-row (GEMV) path.
  GemmFn gemm;
  // Tree ensembles in the complete layout (forest.h); both null in the
  // scalar table, whose plans walk the node array.
  ForestRowsFn forest_rows;
  ForestOneFn forest_one;
};

const Kernels& scalar_kernels() noexcept;
const Kernels* avx2_kernels() noexcept;    // null when not compiled in
const Kernels* avx512_kernels() noexcept;  // null when not compiled in

// The table for `isa` (kAuto: the widest the CPU supports); null when the CPU
// or the build lacks it. `chosen` receives the resolved ISA.
const Kernels* kernels_for(Isa isa, Isa* chosen) noexcept;

}  // namespace myelin::model::detail
