// batchnorm_cuda.cu -- instrumented batchnorm2d (training forward / backward, apply) on the GPU.
//
// Per-channel reductions: one 256-thread block per channel; thread t sums elements t, t+256, ...
// sequentially (its own Philox stream), then a fixed shared-memory tree combines the partial sums
// with instrumented adds. The order depends only on the block size, so results are reproducible.
// Elementwise passes: one thread per element, stream = element index (as on the CPU).
#include <cstdio>

#include "cuda_ops.cuh"
#include "harness_kernels_cuda.h"

namespace {

constexpr int RED_THREADS = 256;

// Tree-combine two per-thread partial sums across the block; thread 0 ends with the totals.
template <typename T>
__device__ void block_sum2(T &a, T &b, T *sa, T *sb, harness_rng *rng) {
    const int tid = threadIdx.x;
    sa[tid] = a;
    sb[tid] = b;
    __syncthreads();
    for (int half = RED_THREADS / 2; half > 0; half /= 2) {
        if (tid < half) {
            sa[tid] = HOps<T>::add(sa[tid], sa[tid + half], rng);
            sb[tid] = HOps<T>::add(sb[tid], sb[tid + half], rng);
        }
        __syncthreads();
    }
    a = sa[0];
    b = sb[0];
}

template <typename T>
__global__ void __launch_bounds__(RED_THREADS)
    bn_stats_kernel(const T *__restrict__ x, T *mean, T *invstd, T *running_mean, T *running_var,
                    int64_t N, int64_t C, int64_t HW, double eps, double momentum, uint64_t seed,
                    uint32_t call) {
    __shared__ T sa[RED_THREADS], sb[RED_THREADS];
    __shared__ T shared_mean;
    const int64_t c = blockIdx.x, M = N * HW;
    const T count = (T)M;
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)c * RED_THREADS + threadIdx.x,
                     (call << 4) | HARNESS_TAG_BN_STATS);
    T sum = T(0), unused = T(0);
    for (int64_t i = threadIdx.x; i < M; i += RED_THREADS)
        sum = HOps<T>::add(sum, x[((i / HW) * C + c) * HW + i % HW], &rng);
    block_sum2(sum, unused, sa, sb, &rng);
    __syncthreads();
    // one thread rounds the mean so that every thread centres on the same value
    if (threadIdx.x == 0) shared_mean = HOps<T>::div(sum, count, &rng);
    __syncthreads();
    const T mu = shared_mean;
    T sq = T(0);
    for (int64_t i = threadIdx.x; i < M; i += RED_THREADS) {
        const T d = HOps<T>::sub(x[((i / HW) * C + c) * HW + i % HW], mu, &rng);
        sq = HOps<T>::fma(d, d, sq, &rng);
    }
    unused = T(0);
    block_sum2(sq, unused, sa, sb, &rng);
    if (threadIdx.x != 0) return;
    const T var = HOps<T>::div(sq, count, &rng);
    mean[c] = mu;
    invstd[c] = HOps<T>::div(T(1), (T)sqrt((double)HOps<T>::add(var, (T)eps, &rng)), &rng);
    if (running_mean && running_var) {
        const T keep = (T)(1.0 - momentum), mom = (T)momentum;
        const T unbiased = M > 1 ? HOps<T>::div(sq, count - T(1), &rng) : var;
        running_mean[c] = HOps<T>::add(HOps<T>::mul(keep, running_mean[c], &rng),
                                       HOps<T>::mul(mom, mu, &rng), &rng);
        running_var[c] = HOps<T>::add(HOps<T>::mul(keep, running_var[c], &rng),
                                      HOps<T>::mul(mom, unbiased, &rng), &rng);
    }
}

template <typename T>
__global__ void bn_apply_kernel(const T *__restrict__ x, const T *gamma, const T *beta,
                                const T *mean, const T *invstd, T *__restrict__ y, int64_t C,
                                int64_t HW, int64_t total, uint64_t seed, uint32_t call) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int64_t c = (e / HW) % C;
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)e, (call << 4) | HARNESS_TAG_BN_FWD);
    const T xhat = HOps<T>::mul(HOps<T>::sub(x[e], mean[c], &rng), invstd[c], &rng);
    y[e] = (gamma || beta)
               ? HOps<T>::fma(xhat, gamma ? gamma[c] : T(1), beta ? beta[c] : T(0), &rng)
               : xhat;
}

template <typename T>
__global__ void __launch_bounds__(RED_THREADS)
    bn_bwd_reduce_kernel(const T *__restrict__ x, const T *__restrict__ gy, const T *mean,
                         const T *invstd, T *sum_dy, T *sum_dy_xhat, int64_t N, int64_t C,
                         int64_t HW, uint64_t seed, uint32_t call) {
    __shared__ T sa[RED_THREADS], sb[RED_THREADS];
    const int64_t c = blockIdx.x, M = N * HW;
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)c * RED_THREADS + threadIdx.x,
                     (call << 4) | HARNESS_TAG_BN_BWD_REDUCE);
    T a = T(0), b = T(0);
    for (int64_t i = threadIdx.x; i < M; i += RED_THREADS) {
        const int64_t e = ((i / HW) * C + c) * HW + i % HW;
        const T xhat = HOps<T>::mul(HOps<T>::sub(x[e], mean[c], &rng), invstd[c], &rng);
        a = HOps<T>::add(a, gy[e], &rng);
        b = HOps<T>::fma(gy[e], xhat, b, &rng);
    }
    block_sum2(a, b, sa, sb, &rng);
    if (threadIdx.x == 0) {
        sum_dy[c] = a;
        sum_dy_xhat[c] = b;
    }
}

template <typename T>
__global__ void bn_bwd_elementwise_kernel(const T *__restrict__ x, const T *__restrict__ gy,
                                          const T *gamma, const T *mean, const T *invstd,
                                          const T *sum_dy, const T *sum_dy_xhat,
                                          T *__restrict__ gx, int64_t C, int64_t HW, T count,
                                          int64_t total, uint64_t seed, uint32_t call) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= total) return;
    const int64_t c = (e / HW) % C;
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)e, (call << 4) | HARNESS_TAG_BN_BWD);
    // per-channel coefficients, recomputed per element with the element's stream
    const T a = HOps<T>::div(sum_dy[c], count, &rng);
    const T bcoef = HOps<T>::div(sum_dy_xhat[c], count, &rng);
    const T scale = gamma ? HOps<T>::mul(gamma[c], invstd[c], &rng) : invstd[c];
    const T xhat = HOps<T>::mul(HOps<T>::sub(x[e], mean[c], &rng), invstd[c], &rng);
    T t = HOps<T>::sub(gy[e], a, &rng);
    t = HOps<T>::fma(-xhat, bcoef, t, &rng);
    gx[e] = HOps<T>::mul(scale, t, &rng);
}

unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

template <typename T>
void bn_fwd_train(const T *x, const T *gamma, const T *beta, T *y, T *mean, T *invstd,
                  T *running_mean, T *running_var, int64_t N, int64_t C, int64_t HW, double eps,
                  double momentum, uint64_t seed, uint32_t call, cudaStream_t stream) {
    bn_stats_kernel<T><<<(unsigned)C, RED_THREADS, 0, stream>>>(
        x, mean, invstd, running_mean, running_var, N, C, HW, eps, momentum, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
    const int64_t total = N * C * HW;
    bn_apply_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(x, gamma, beta, mean, invstd,
                                                                   y, C, HW, total, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
}

template <typename T>
void bn_apply(const T *x, const T *gamma, const T *beta, const T *mean, const T *invstd, T *y,
              int64_t N, int64_t C, int64_t HW, uint64_t seed, uint32_t call,
              cudaStream_t stream) {
    const int64_t total = N * C * HW;
    bn_apply_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(x, gamma, beta, mean, invstd,
                                                                   y, C, HW, total, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
}

template <typename T>
void bn_bwd_train(const T *x, const T *gy, const T *gamma, const T *mean, const T *invstd, T *gx,
                  T *ggamma, T *gbeta, int64_t N, int64_t C, int64_t HW, uint64_t seed,
                  uint32_t call, cudaStream_t stream) {
    // ggamma / gbeta double as the per-channel sums (the binding always passes both)
    bn_bwd_reduce_kernel<T><<<(unsigned)C, RED_THREADS, 0, stream>>>(
        x, gy, mean, invstd, gbeta, ggamma, N, C, HW, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
    const int64_t total = N * C * HW;
    bn_bwd_elementwise_kernel<T><<<blocks_for(total, 256), 256, 0, stream>>>(
        x, gy, gamma, mean, invstd, gbeta, ggamma, gx, C, HW, (T)(N * HW), total, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
}

}  // namespace

#define HARNESS_DEFINE_BN_LAUNCHERS(SUF, T)                                                       \
    extern "C" void harness_bn_fwd_train_##SUF##_cuda(                                            \
        const T *x, const T *gamma, const T *beta, T *y, T *mean, T *invstd, T *running_mean,     \
        T *running_var, int64_t N, int64_t C, int64_t HW, double eps, double momentum,            \
        uint64_t seed, uint32_t call, cudaStream_t stream) {                                      \
        bn_fwd_train<T>(x, gamma, beta, y, mean, invstd, running_mean, running_var, N, C, HW,     \
                        eps, momentum, seed, call, stream);                                       \
    }                                                                                             \
    extern "C" void harness_bn_apply_##SUF##_cuda(const T *x, const T *gamma, const T *beta,      \
                                                  const T *mean, const T *invstd, T *y, int64_t N, \
                                                  int64_t C, int64_t HW, uint64_t seed,            \
                                                  uint32_t call, cudaStream_t stream) {            \
        bn_apply<T>(x, gamma, beta, mean, invstd, y, N, C, HW, seed, call, stream);               \
    }                                                                                             \
    extern "C" void harness_bn_bwd_train_##SUF##_cuda(                                            \
        const T *x, const T *gy, const T *gamma, const T *mean, const T *invstd, T *gx,           \
        T *ggamma, T *gbeta, int64_t N, int64_t C, int64_t HW, uint64_t seed, uint32_t call,      \
        cudaStream_t stream) {                                                                    \
        bn_bwd_train<T>(x, gy, gamma, mean, invstd, gx, ggamma, gbeta, N, C, HW, seed, call,      \
                        stream);                                                                  \
    }

HARNESS_DEFINE_BN_LAUNCHERS(f, float)
HARNESS_DEFINE_BN_LAUNCHERS(d, double)
