/*
 * harness_kernels_cuda.h -- CUDA launchers of the harness kernels (raw device pointers, NCHW,
 * contiguous). Same semantics and argument order as harness_kernels.h plus the stream to launch
 * on. Nothing here depends on torch, so the .cu files compile with plain nvcc.
 */
#ifndef HARNESS_KERNELS_CUDA_H
#define HARNESS_KERNELS_CUDA_H

#include <cuda_runtime.h>
#include <stdint.h>

#include "harness_kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

#define HARNESS_DECLARE_CUDA_KERNELS(SUF, T)                                                    \
    void harness_conv2d_fwd_##SUF##_cuda(const T *x, const T *w, const T *b, T *y,              \
                                         const harness_conv_shape *s, uint64_t seed,            \
                                         uint32_t call, cudaStream_t stream);                   \
    void harness_conv2d_bwd_input_##SUF##_cuda(const T *gy, const T *w, T *gx,                  \
                                               const harness_conv_shape *s, uint64_t seed,      \
                                               uint32_t call, cudaStream_t stream);             \
    void harness_conv2d_bwd_weight_##SUF##_cuda(const T *x, const T *gy, T *gw, T *gb,          \
                                                const harness_conv_shape *s, uint64_t seed,     \
                                                uint32_t call, cudaStream_t stream);            \
    void harness_bn_fwd_train_##SUF##_cuda(const T *x, const T *gamma, const T *beta, T *y,     \
                                           T *mean, T *invstd, T *running_mean,                 \
                                           T *running_var, int64_t N, int64_t C, int64_t HW,    \
                                           double eps, double momentum, uint64_t seed,          \
                                           uint32_t call, cudaStream_t stream);                 \
    void harness_bn_apply_##SUF##_cuda(const T *x, const T *gamma, const T *beta,               \
                                       const T *mean, const T *invstd, T *y, int64_t N,         \
                                       int64_t C, int64_t HW, uint64_t seed, uint32_t call,     \
                                       cudaStream_t stream);                                    \
    void harness_bn_bwd_train_##SUF##_cuda(const T *x, const T *gy, const T *gamma,             \
                                           const T *mean, const T *invstd, T *gx, T *ggamma,    \
                                           T *gbeta, int64_t N, int64_t C, int64_t HW,          \
                                           uint64_t seed, uint32_t call, cudaStream_t stream);

HARNESS_DECLARE_CUDA_KERNELS(f, float)
HARNESS_DECLARE_CUDA_KERNELS(d, double)

#ifdef __cplusplus
}
#endif

#endif /* HARNESS_KERNELS_CUDA_H */
