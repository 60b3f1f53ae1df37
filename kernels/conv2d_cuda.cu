// conv2d_cuda.cu -- instrumented conv2d on the GPU (NCHW, groups = 1), plain CUDA C++.
//
// Forward: implicit GEMM, C[m, k] = sum_j A[m, j] B[j, k] with m = (n, p, q) output pixels,
// k = output channel, j = (c, r, s) reduction index. 64x64 output tile per 256-thread block,
// 16-deep reduction slices staged in shared memory, 4x4 outputs per thread. Every output's
// accumulation is a sequential fma chain over j (zero-padded taps add an exact 0), so results do
// not depend on scheduling; each thread owns one Philox stream keyed by its global thread id.
// Backward-input and backward-weight are direct (one thread per gradient element) kernels.
#include <cstdio>

#include "cuda_ops.cuh"
#include "harness_kernels_cuda.h"

namespace {

constexpr int BM = 64, BN = 64, BK = 16, THREADS = 256;

template <typename T>
__global__ void __launch_bounds__(THREADS)
    conv_fwd_kernel(const T *__restrict__ x, const T *__restrict__ w, const T *__restrict__ b,
                    T *__restrict__ y, harness_conv_shape s, uint64_t seed, uint32_t call) {
    __shared__ T As[BK][BM];
    __shared__ T Bs[BK][BN];
    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t M = s.N * s.P * s.Q;
    const int RS = (int)(s.R * s.S), CRS = (int)(s.C * RS);
    const int64_t m0 = (int64_t)blockIdx.x * BM;
    const int k0 = blockIdx.y * BN;

    // the input row this thread loads: m = m0 + tid % BM (fixed over the loop)
    const int64_t m_load = m0 + tid % BM;
    const bool m_ok = m_load < M;
    const int64_t n_load = m_ok ? m_load / (s.P * s.Q) : 0;
    const int64_t pq = m_ok ? m_load % (s.P * s.Q) : 0;
    const int64_t ih0 = (pq / s.Q) * s.stride_h - s.pad_h, iw0 = (pq % s.Q) * s.stride_w - s.pad_w;
    const T *x_n = x + n_load * s.C * s.H * s.W;

    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)(blockIdx.y * gridDim.x + blockIdx.x) * THREADS + tid,
                     (call << 4) | HARNESS_TAG_CONV_FWD);
    T acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] = T(0);

    for (int j0 = 0; j0 < CRS; j0 += BK) {
#pragma unroll
        for (int i = 0; i < BK * BM / THREADS; ++i) {
            const int jj = tid / BM + i * (THREADS / BM);
            const int j = j0 + jj;
            T v = T(0);
            if (m_ok && j < CRS) {
                const int c = j / RS, rs = j % RS;
                const int64_t ih = ih0 + (rs / s.S) * s.dil_h, iw = iw0 + (rs % s.S) * s.dil_w;
                if (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) v = x_n[(c * s.H + ih) * s.W + iw];
            }
            As[jj][tid % BM] = v;
        }
#pragma unroll
        for (int i = 0; i < BK * BN / THREADS; ++i) {
            const int e = tid + i * THREADS;
            const int kk = e / BK, jj = e % BK;
            const int k = k0 + kk, j = j0 + jj;
            Bs[jj][kk] = (k < s.K && j < CRS) ? w[(int64_t)k * CRS + j] : T(0);
        }
        __syncthreads();
#pragma unroll
        for (int jj = 0; jj < BK; ++jj) {
            T a[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) a[i] = As[jj][tx + 16 * i];
#pragma unroll
            for (int i = 0; i < 4; ++i) bv[i] = Bs[jj][ty + 16 * i];
#pragma unroll
            for (int i = 0; i < 4; ++i)
#pragma unroll
                for (int j = 0; j < 4; ++j) acc[i][j] = HOps<T>::fma(a[i], bv[j], acc[i][j], &rng);
        }
        __syncthreads();
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int64_t m = m0 + tx + 16 * i;
        if (m >= M) continue;
        const int64_t n = m / (s.P * s.Q), pq_out = m % (s.P * s.Q);
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int k = k0 + ty + 16 * j;
            if (k >= s.K) continue;
            T v = acc[i][j];
            if (b) v = HOps<T>::add(v, b[k], &rng);
            y[(n * s.K + k) * s.P * s.Q + pq_out] = v;
        }
    }
}

template <typename T>
__global__ void conv_bwd_input_kernel(const T *__restrict__ gy, const T *__restrict__ w,
                                      T *__restrict__ gx, harness_conv_shape s, uint64_t seed,
                                      uint32_t call) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= s.N * s.C * s.H * s.W) return;
    const int64_t ww = e % s.W, h = (e / s.W) % s.H, c = (e / (s.W * s.H)) % s.C;
    const int64_t n = e / (s.W * s.H * s.C);
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)e, (call << 4) | HARNESS_TAG_CONV_BWD_INPUT);
    T acc = T(0);
    for (int64_t k = 0; k < s.K; ++k) {
        const T *gyk = gy + (n * s.K + k) * s.P * s.Q;
        const T *wk = w + (k * s.C + c) * s.R * s.S;
        for (int64_t r = 0; r < s.R; ++r) {
            const int64_t ph = h + s.pad_h - r * s.dil_h;
            if (ph < 0 || ph % s.stride_h) continue;
            const int64_t p = ph / s.stride_h;
            if (p >= s.P) continue;
            for (int64_t t = 0; t < s.S; ++t) {
                const int64_t qw = ww + s.pad_w - t * s.dil_w;
                if (qw < 0 || qw % s.stride_w) continue;
                const int64_t q = qw / s.stride_w;
                if (q >= s.Q) continue;
                acc = HOps<T>::fma(gyk[p * s.Q + q], wk[r * s.S + t], acc, &rng);
            }
        }
    }
    gx[e] = acc;
}

template <typename T>
__global__ void conv_bwd_weight_kernel(const T *__restrict__ x, const T *__restrict__ gy,
                                       T *__restrict__ gw, harness_conv_shape s, uint64_t seed,
                                       uint32_t call) {
    const int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (e >= s.K * s.C * s.R * s.S) return;
    const int64_t t = e % s.S, r = (e / s.S) % s.R, c = (e / (s.S * s.R)) % s.C;
    const int64_t k = e / (s.S * s.R * s.C);
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)e, (call << 4) | HARNESS_TAG_CONV_BWD_WEIGHT);
    T acc = T(0);
    for (int64_t n = 0; n < s.N; ++n) {
        const T *xc = x + (n * s.C + c) * s.H * s.W;
        const T *gyk = gy + (n * s.K + k) * s.P * s.Q;
        for (int64_t p = 0; p < s.P; ++p) {
            const int64_t ih = p * s.stride_h - s.pad_h + r * s.dil_h;
            if (ih < 0 || ih >= s.H) continue;
            for (int64_t q = 0; q < s.Q; ++q) {
                const int64_t iw = q * s.stride_w - s.pad_w + t * s.dil_w;
                if (iw < 0 || iw >= s.W) continue;
                acc = HOps<T>::fma(gyk[p * s.Q + q], xc[ih * s.W + iw], acc, &rng);
            }
        }
    }
    gw[e] = acc;
}

template <typename T>
__global__ void conv_bwd_bias_kernel(const T *__restrict__ gy, T *__restrict__ gb,
                                     harness_conv_shape s, uint64_t seed, uint32_t call) {
    const int64_t k = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= s.K) return;
    harness_rng rng;
    harness_rng_init(&rng, seed, (uint64_t)k, (call << 4) | HARNESS_TAG_CONV_BWD_BIAS);
    T acc = T(0);
    for (int64_t n = 0; n < s.N; ++n)
        for (int64_t pq = 0; pq < s.P * s.Q; ++pq)
            acc = HOps<T>::add(acc, gy[(n * s.K + k) * s.P * s.Q + pq], &rng);
    gb[k] = acc;
}

unsigned blocks_for(int64_t n, int threads) { return (unsigned)((n + threads - 1) / threads); }

template <typename T>
void conv_fwd(const T *x, const T *w, const T *b, T *y, const harness_conv_shape *s,
              uint64_t seed, uint32_t call, cudaStream_t stream) {
    const dim3 grid(blocks_for(s->N * s->P * s->Q, BM), blocks_for(s->K, BN));
    conv_fwd_kernel<T><<<grid, THREADS, 0, stream>>>(x, w, b, y, *s, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
}

template <typename T>
void conv_bwd_input(const T *gy, const T *w, T *gx, const harness_conv_shape *s, uint64_t seed,
                    uint32_t call, cudaStream_t stream) {
    const int64_t n = s->N * s->C * s->H * s->W;
    conv_bwd_input_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(gy, w, gx, *s, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
}

template <typename T>
void conv_bwd_weight(const T *x, const T *gy, T *gw, T *gb, const harness_conv_shape *s,
                     uint64_t seed, uint32_t call, cudaStream_t stream) {
    const int64_t n = s->K * s->C * s->R * s->S;
    conv_bwd_weight_kernel<T><<<blocks_for(n, 128), 128, 0, stream>>>(x, gy, gw, *s, seed, call);
    HARNESS_CUDA_CHECK_LAUNCH();
    if (gb) {
        conv_bwd_bias_kernel<T><<<blocks_for(s->K, 64), 64, 0, stream>>>(gy, gb, *s, seed, call);
        HARNESS_CUDA_CHECK_LAUNCH();
    }
}

}  // namespace

#define HARNESS_DEFINE_CONV_LAUNCHERS(SUF, T)                                                    \
    extern "C" void harness_conv2d_fwd_##SUF##_cuda(const T *x, const T *w, const T *b, T *y,    \
                                                    const harness_conv_shape *s, uint64_t seed,  \
                                                    uint32_t call, cudaStream_t stream) {        \
        conv_fwd<T>(x, w, b, y, s, seed, call, stream);                                          \
    }                                                                                            \
    extern "C" void harness_conv2d_bwd_input_##SUF##_cuda(                                       \
        const T *gy, const T *w, T *gx, const harness_conv_shape *s, uint64_t seed,              \
        uint32_t call, cudaStream_t stream) {                                                    \
        conv_bwd_input<T>(gy, w, gx, s, seed, call, stream);                                     \
    }                                                                                            \
    extern "C" void harness_conv2d_bwd_weight_##SUF##_cuda(                                      \
        const T *x, const T *gy, T *gw, T *gb, const harness_conv_shape *s, uint64_t seed,       \
        uint32_t call, cudaStream_t stream) {                                                    \
        conv_bwd_weight<T>(x, gy, gw, gb, s, seed, call, stream);                                \
    }

HARNESS_DEFINE_CONV_LAUNCHERS(f, float)
HARNESS_DEFINE_CONV_LAUNCHERS(d, double)
