/*
 * arith.h -- instrumented floating-point arithmetic for harness kernels (C99 / C++ / CUDA).
 *
 * Exactly one arithmetic mode is selected at compile time:
 *   -DHARNESS_MODE_IEEE  plain IEEE-754 round-to-nearest (default)
 *   -DHARNESS_MODE_SR    stochastic rounding of every add/mul/fma/div result
 *   -DHARNESS_MODE_RR    MCA random rounding ("outbound" perturbation) of every result
 *
 * SR uses error-free transformations: the rounding error `err` of the round-to-nearest result `s`
 * (exact value = s + err) is computed exactly (TwoSum for add, FMA-based TwoProd for mul, the
 * remainder fma(-q, b, a) for div, TwoProd+TwoSum for fma), then `s` is replaced by its neighbour
 * away from it in the direction of `err` with probability |err| / ulp-gap. Exact results
 * (err == 0) stay exact; E[result] = exact value.
 *
 * RR: y' = fl(y + 2^(e(y) - t) * xi), xi ~ U(-1/2, 1/2), y = m 2^e(y), 0.5 <= |m| < 1, where y is
 * the *exact* result s + err (the same error-free transformations), evaluated as
 * fl(s + (err + 2^(e(s) - t) xi)) with the inner sum in double for float; t = HARNESS_T_FLOAT (24)
 * or HARNESS_T_DOUBLE (53). Zero, inf and NaN results are unchanged.
 *
 * Random numbers: Philox4x32-10 (Salmon et al., SC'11), a counter-based generator. A stream is
 * keyed by the 64-bit seed; its counter words hold (block index, stream id low, stream id high,
 * call tag), so every (seed, element or thread id, kernel call, op counter) gets independent bits
 * without shared state, on the CPU and on the GPU alike.
 */
#ifndef HARNESS_ARITH_H
#define HARNESS_ARITH_H

#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define HARNESS_HD static __host__ __device__ __forceinline__
#else
#define HARNESS_HD static inline
#endif

#if !defined(HARNESS_MODE_IEEE) && !defined(HARNESS_MODE_SR) && !defined(HARNESS_MODE_RR)
#define HARNESS_MODE_IEEE 1
#endif

#ifndef HARNESS_T_FLOAT
#define HARNESS_T_FLOAT 24
#endif
#ifndef HARNESS_T_DOUBLE
#define HARNESS_T_DOUBLE 53
#endif

/* ---------------------------------------------------------------- Philox4x32-10 */

#define HARNESS_PHILOX_M0 0xD2511F53u
#define HARNESS_PHILOX_M1 0xCD9E8D57u
#define HARNESS_PHILOX_W0 0x9E3779B9u
#define HARNESS_PHILOX_W1 0xBB67AE85u

typedef struct {
    uint32_t v[4];
} harness_u32x4;

HARNESS_HD uint32_t harness_mulhi32(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return (uint32_t)(((uint64_t)a * (uint64_t)b) >> 32);
#endif
}

/* One Philox4x32-10 block: 128 random bits from a 128-bit counter and a 64-bit key. */
HARNESS_HD harness_u32x4 harness_philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3,
                                               uint32_t k0, uint32_t k1) {
    int round;
    harness_u32x4 out;
    for (round = 0; round < 10; ++round) {
        uint32_t hi0 = harness_mulhi32(HARNESS_PHILOX_M0, c0);
        uint32_t lo0 = HARNESS_PHILOX_M0 * c0;
        uint32_t hi1 = harness_mulhi32(HARNESS_PHILOX_M1, c2);
        uint32_t lo1 = HARNESS_PHILOX_M1 * c2;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += HARNESS_PHILOX_W0;
        k1 += HARNESS_PHILOX_W1;
    }
    out.v[0] = c0;
    out.v[1] = c1;
    out.v[2] = c2;
    out.v[3] = c3;
    return out;
}

/* A random stream: one Philox block gives four 32-bit draws. */
typedef struct {
    uint32_t k0, k1;     /* seed */
    uint32_t s0, s1, s2; /* stream id (low, high) and call tag */
    uint32_t block;      /* next counter block */
    uint32_t idx;        /* next word of buf, 4 = empty */
    uint32_t buf[4];
} harness_rng;

HARNESS_HD void harness_rng_init(harness_rng *r, uint64_t seed, uint64_t stream, uint32_t tag) {
    r->k0 = (uint32_t)seed;
    r->k1 = (uint32_t)(seed >> 32);
    r->s0 = (uint32_t)stream;
    r->s1 = (uint32_t)(stream >> 32);
    r->s2 = tag;
    r->block = 0;
    r->idx = 4;
    r->buf[0] = r->buf[1] = r->buf[2] = r->buf[3] = 0;
}

HARNESS_HD uint32_t harness_rng_next(harness_rng *r) {
    uint32_t word;
    if (r->idx >= 4) {
        harness_u32x4 b = harness_philox4x32_10(r->block, r->s0, r->s1, r->s2, r->k0, r->k1);
        r->block += 1;
        r->buf[0] = b.v[0];
        r->buf[1] = b.v[1];
        r->buf[2] = b.v[2];
        r->buf[3] = b.v[3];
        r->idx = 0;
    }
    /* select without dynamic indexing so that CUDA keeps buf in registers */
    word = r->idx == 0 ? r->buf[0] : r->idx == 1 ? r->buf[1] : r->idx == 2 ? r->buf[2] : r->buf[3];
    r->idx += 1;
    return word;
}

/* uniform in [0, 1) with 24 bits (float) or 53 bits (double) */
HARNESS_HD float harness_uniform_f(harness_rng *r) {
    return (float)(harness_rng_next(r) >> 8) * 5.9604644775390625e-08f; /* 2^-24 */
}

HARNESS_HD double harness_uniform_d(harness_rng *r) {
    uint64_t hi = harness_rng_next(r) >> 5; /* 27 bits */
    uint64_t lo = harness_rng_next(r) >> 6; /* 26 bits */
    return (double)((hi << 26) | lo) * 1.1102230246251565e-16; /* 2^-53 */
}

/* ---------------------------------------------------------------- stochastic rounding core */

/* Round s (= RN(exact)) given its exact error err = exact - s: to the neighbour of s in the
 * direction of err with probability |err| / gap. */
HARNESS_HD float harness_sr_round_f(float s, float err, harness_rng *r) {
    float u = harness_uniform_f(r);
    float away, gap;
    if (err == 0.0f || !isfinite(s)) return s;
    away = nextafterf(s, err > 0.0f ? INFINITY : -INFINITY);
    gap = fabsf(away - s); /* exact: adjacent floats differ by a power of two */
    return u * gap < fabsf(err) ? away : s;
}

HARNESS_HD double harness_sr_round_d(double s, double err, harness_rng *r) {
    double u = harness_uniform_d(r);
    double away, gap;
    if (err == 0.0 || !isfinite(s)) return s;
    away = nextafter(s, err > 0.0 ? (double)INFINITY : -(double)INFINITY);
    gap = fabs(away - s);
    return u * gap < fabs(err) ? away : s;
}

/* TwoSum (Knuth): s + e == a + b exactly. */
#define HARNESS_TWO_SUM_ERR(T, a, b, s) \
    ((T)((a) - ((s) - ((s) - (a)))) + (T)((b) - ((s) - (a))))

/* error of RN(a*b + c) = r, to working precision (sign exact, magnitude to ~1 ulp of err) */
#define HARNESS_FMA_ERR(T, FMA, a, b, c, r, out)           \
    do {                                                   \
        T ph_ = (a) * (b);                                 \
        T pl_ = FMA((a), (b), -ph_);                       \
        T sh_ = ph_ + (c);                                 \
        T sl_ = HARNESS_TWO_SUM_ERR(T, ph_, (c), sh_);     \
        out = (sh_ - (r)) + (sl_ + pl_);                   \
    } while (0)

/* ---------------------------------------------------------------- random rounding core */

/* MCA random rounding of the exact result s + err (s = RN(exact)):
 * fl(s + fl(err + 2^(e(s) - t) xi)). Adding the exact error first makes this the perturbation of
 * the exact result (as computing in a wider type would), in float and in double alike. */
HARNESS_HD float harness_rr_round_f(float s, float err, harness_rng *r) {
    double xi = ((double)harness_rng_next(r) + 0.5) * 2.3283064365386963e-10 - 0.5; /* 2^-32 */
    int e;
    if (s == 0.0f || !isfinite(s)) return s;
    frexp((double)s, &e);
    return (float)((double)s + ((double)err + ldexp(xi, e - HARNESS_T_FLOAT)));
}

HARNESS_HD double harness_rr_round_d(double s, double err, harness_rng *r) {
    double xi = harness_uniform_d(r) - 0.5;
    int e;
    if (s == 0.0 || !isfinite(s)) return s;
    frexp(s, &e);
    return s + (err + ldexp(xi, e - HARNESS_T_DOUBLE));
}

/* ---------------------------------------------------------------- instrumented operations */
/* h_add_f(a, b, rng), h_sub_f, h_mul_f, h_fma_f(a, b, c) = a*b + c, h_div_f; _d for double.
 * In IEEE mode the rng argument is unused and the operations compile to single instructions. */

#if defined(HARNESS_MODE_SR) || defined(HARNESS_MODE_RR)

#if defined(HARNESS_MODE_SR)
#define HARNESS_ROUND(SUF) harness_sr_round_##SUF
#else
#define HARNESS_ROUND(SUF) harness_rr_round_##SUF
#endif

#define HARNESS_DEFINE_OPS(SUF, T, FMA)                                                       \
    HARNESS_HD T h_add_##SUF(T a, T b, harness_rng *r) {                                      \
        T s = a + b;                                                                          \
        return HARNESS_ROUND(SUF)(s, HARNESS_TWO_SUM_ERR(T, a, b, s), r);                     \
    }                                                                                         \
    HARNESS_HD T h_sub_##SUF(T a, T b, harness_rng *r) { return h_add_##SUF(a, -b, r); }      \
    HARNESS_HD T h_mul_##SUF(T a, T b, harness_rng *r) {                                      \
        T p = a * b;                                                                          \
        return HARNESS_ROUND(SUF)(p, FMA(a, b, -p), r);                                       \
    }                                                                                         \
    HARNESS_HD T h_fma_##SUF(T a, T b, T c, harness_rng *r) {                                 \
        T y = FMA(a, b, c);                                                                   \
        T err;                                                                                \
        HARNESS_FMA_ERR(T, FMA, a, b, c, y, err);                                             \
        return HARNESS_ROUND(SUF)(y, err, r);                                                 \
    }                                                                                         \
    HARNESS_HD T h_div_##SUF(T a, T b, harness_rng *r) {                                      \
        T q = a / b;                                                                          \
        T rem = FMA(-q, b, a); /* exact: a - q b */                                           \
        return HARNESS_ROUND(SUF)(q, rem / b, r);                                             \
    }

#else /* IEEE */

#define HARNESS_DEFINE_OPS(SUF, T, FMA)                                                          \
    HARNESS_HD T h_add_##SUF(T a, T b, harness_rng *r) { (void)r; return a + b; }                \
    HARNESS_HD T h_sub_##SUF(T a, T b, harness_rng *r) { (void)r; return a - b; }                \
    HARNESS_HD T h_mul_##SUF(T a, T b, harness_rng *r) { (void)r; return a * b; }                \
    HARNESS_HD T h_fma_##SUF(T a, T b, T c, harness_rng *r) { (void)r; return FMA(a, b, c); }    \
    HARNESS_HD T h_div_##SUF(T a, T b, harness_rng *r) { (void)r; return a / b; }

#endif

HARNESS_DEFINE_OPS(f, float, fmaf)
HARNESS_DEFINE_OPS(d, double, fma)

#if defined(HARNESS_MODE_SR)
#define HARNESS_MODE_NAME "sr"
#elif defined(HARNESS_MODE_RR)
#define HARNESS_MODE_NAME "rr"
#else
#define HARNESS_MODE_NAME "ieee"
#endif

#endif /* HARNESS_ARITH_H */
