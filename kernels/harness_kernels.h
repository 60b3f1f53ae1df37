/*
 * harness_kernels.h -- C API of the instrumented conv2d / batchnorm2d kernels (NCHW, contiguous).
 *
 * Each function exists for float (_f) and double (_d). The arithmetic mode (ieee / sr / rr) is
 * fixed when the translation unit is compiled (see arith.h). `seed` keys the random streams;
 * `call` distinguishes kernel invocations (the Python side passes a per-module call counter), and
 * each output element (CPU) or thread (CUDA) owns the stream (seed, element/thread id, call, tag).
 */
#ifndef HARNESS_KERNELS_H
#define HARNESS_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Shape of a 2-D convolution: x (N, C, H, W) * w (K, C, R, S) -> y (N, K, P, Q); groups = 1. */
typedef struct {
    int64_t N, C, H, W;
    int64_t K, R, S;
    int64_t P, Q;
    int64_t stride_h, stride_w, pad_h, pad_w, dil_h, dil_w;
} harness_conv_shape;

/* Kernel tags: the last Philox counter word is (call << 4) | tag. */
enum {
    HARNESS_TAG_CONV_FWD = 1,
    HARNESS_TAG_CONV_BWD_INPUT = 2,
    HARNESS_TAG_CONV_BWD_WEIGHT = 3,
    HARNESS_TAG_CONV_BWD_BIAS = 4,
    HARNESS_TAG_BN_STATS = 5,
    HARNESS_TAG_BN_FWD = 6,
    HARNESS_TAG_BN_BWD_REDUCE = 7,
    HARNESS_TAG_BN_BWD = 8
};

#define HARNESS_DECLARE_KERNELS(SUF, T)                                                        \
    /* y = conv(x, w) + b; b may be NULL */                                                    \
    void harness_conv2d_fwd_##SUF(const T *x, const T *w, const T *b, T *y,                    \
                                  const harness_conv_shape *s, uint64_t seed, uint32_t call);  \
    /* gx = conv_transpose(gy, w) */                                                           \
    void harness_conv2d_bwd_input_##SUF(const T *gy, const T *w, T *gx,                        \
                                        const harness_conv_shape *s, uint64_t seed,            \
                                        uint32_t call);                                        \
    /* gw = sum_n,p,q gy x; gb = sum_n,p,q gy (gb may be NULL) */                              \
    void harness_conv2d_bwd_weight_##SUF(const T *x, const T *gy, T *gw, T *gb,                \
                                         const harness_conv_shape *s, uint64_t seed,           \
                                         uint32_t call);                                       \
    /* training forward: batch statistics -> mean, invstd (C); running stats updated in place \
       when not NULL; gamma/beta may be NULL (affine=False) */                                 \
    void harness_bn_fwd_train_##SUF(const T *x, const T *gamma, const T *beta, T *y, T *mean,   \
                                    T *invstd, T *running_mean, T *running_var, int64_t N,      \
                                    int64_t C, int64_t HW, double eps, double momentum,         \
                                    uint64_t seed, uint32_t call);                              \
    /* y = (x - mean) * invstd * gamma + beta with given per-channel statistics (eval mode) */ \
    void harness_bn_apply_##SUF(const T *x, const T *gamma, const T *beta, const T *mean,       \
                                const T *invstd, T *y, int64_t N, int64_t C, int64_t HW,        \
                                uint64_t seed, uint32_t call);                                  \
    /* training backward: gx, and ggamma / gbeta (may be NULL) */                              \
    void harness_bn_bwd_train_##SUF(const T *x, const T *gy, const T *gamma, const T *mean,     \
                                    const T *invstd, T *gx, T *ggamma, T *gbeta, int64_t N,     \
                                    int64_t C, int64_t HW, uint64_t seed, uint32_t call);

HARNESS_DECLARE_KERNELS(f, float)
HARNESS_DECLARE_KERNELS(d, double)

/* One Philox4x32-10 block (for known-answer tests). */
void harness_philox_block(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Name of the compiled arithmetic mode: "ieee", "sr" or "rr". */
const char *harness_mode_name(void);

#ifdef __cplusplus
}
#endif

#endif /* HARNESS_KERNELS_H */
