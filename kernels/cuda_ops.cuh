// cuda_ops.cuh -- the arith.h operations behind one C++ interface per scalar type, for templates.
#ifndef HARNESS_CUDA_OPS_CUH
#define HARNESS_CUDA_OPS_CUH

#include "arith.h"

template <typename T>
struct HOps;

template <>
struct HOps<float> {
    static __device__ __forceinline__ float add(float a, float b, harness_rng *r) { return h_add_f(a, b, r); }
    static __device__ __forceinline__ float sub(float a, float b, harness_rng *r) { return h_sub_f(a, b, r); }
    static __device__ __forceinline__ float mul(float a, float b, harness_rng *r) { return h_mul_f(a, b, r); }
    static __device__ __forceinline__ float fma(float a, float b, float c, harness_rng *r) { return h_fma_f(a, b, c, r); }
    static __device__ __forceinline__ float div(float a, float b, harness_rng *r) { return h_div_f(a, b, r); }
};

template <>
struct HOps<double> {
    static __device__ __forceinline__ double add(double a, double b, harness_rng *r) { return h_add_d(a, b, r); }
    static __device__ __forceinline__ double sub(double a, double b, harness_rng *r) { return h_sub_d(a, b, r); }
    static __device__ __forceinline__ double mul(double a, double b, harness_rng *r) { return h_mul_d(a, b, r); }
    static __device__ __forceinline__ double fma(double a, double b, double c, harness_rng *r) { return h_fma_d(a, b, c, r); }
    static __device__ __forceinline__ double div(double a, double b, harness_rng *r) { return h_div_d(a, b, r); }
};

#define HARNESS_CUDA_CHECK_LAUNCH()                                                     \
    do {                                                                                \
        cudaError_t err_ = cudaGetLastError();                                          \
        if (err_ != cudaSuccess) {                                                      \
            fprintf(stderr, "harness kernel launch failed: %s\n", cudaGetErrorString(err_)); \
        }                                                                               \
    } while (0)

#endif
