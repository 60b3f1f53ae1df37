// kernels_host.cu -- the CPU kernels' bodies compiled by nvcc for the host.
//
// Under nvcc (__CUDACC__) every arith.h function is `static __host__ __device__`: the same
// rounding functions the CUDA kernels call, with CUDA's math headers (isfinite, nextafterf,
// frexp, ldexp, fma), compiled here for the host. tests/test_kernels_host_arith.py loads this
// library through the C API of harness_kernels.h and compares it bitwise with the CPU kernels
// built from kernels_cpu.c by the C compiler. Only the Philox multiply differs from the device
// build (__umulhi there, a 64-bit product here).
#include "harness_kernels.h"

#include "arith.h"

extern "C" {

#define SUF f
#define T float
#include "kernels_cpu_impl.h"
#undef SUF
#undef T

#define SUF d
#define T double
#include "kernels_cpu_impl.h"
#undef SUF
#undef T

void harness_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    harness_u32x4 b = harness_philox4x32_10(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]);
    for (int i = 0; i < 4; ++i) out[i] = b.v[i];
}

const char *harness_mode_name(void) { return HARNESS_MODE_NAME; }

#if !defined(__CUDACC__)
#error "compile with nvcc: the point is arith.h's __host__ __device__ functions"
#endif

}  // extern "C"
