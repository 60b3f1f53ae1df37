/*
 * kernels_cpu.c -- instrumented conv2d and batchnorm2d on the CPU (NCHW, OpenMP).
 * Compile with one of -DHARNESS_MODE_IEEE / _SR / _RR, and -ffp-contract=off.
 */
#include "harness_kernels.h"

#include "arith.h"

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
    int i;
    for (i = 0; i < 4; ++i) out[i] = b.v[i];
}

const char *harness_mode_name(void) { return HARNESS_MODE_NAME; }
