/*
 * kernels_cpu_impl.h -- body of the CPU kernels, included once per scalar type by kernels_cpu.c
 * with SUF (f | d) and T (float | double) defined. Plain C99, also valid C++.
 *
 * Summation orders are fixed (no reassociation, compiled with -ffp-contract=off), so results do
 * not depend on the number of OpenMP threads; each output element owns its random stream.
 */

#define HK_CAT_(a, b) a##b
#define HK_CAT(a, b) HK_CAT_(a, b)
#define HK_FN(name) HK_CAT(name, SUF)
#define HK_ADD HK_CAT(h_add_, SUF)
#define HK_SUB HK_CAT(h_sub_, SUF)
#define HK_MUL HK_CAT(h_mul_, SUF)
#define HK_FMA HK_CAT(h_fma_, SUF)
#define HK_DIV HK_CAT(h_div_, SUF)

void HK_FN(harness_conv2d_fwd_)(const T *x, const T *w, const T *b, T *y,
                                const harness_conv_shape *s, uint64_t seed, uint32_t call) {
    const int64_t N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    const int64_t P = s->P, Q = s->Q;
    int64_t nk;
#pragma omp parallel for schedule(static)
    for (nk = 0; nk < N * K; ++nk) {
        const int64_t n = nk / K, k = nk % K;
        int64_t p, q, c, r, t;
        for (p = 0; p < P; ++p) {
            for (q = 0; q < Q; ++q) {
                const int64_t out = (nk * P + p) * Q + q;
                harness_rng rng;
                T acc = 0;
                harness_rng_init(&rng, seed, (uint64_t)out, (call << 4) | HARNESS_TAG_CONV_FWD);
                for (c = 0; c < C; ++c) {
                    const T *xc = x + (n * C + c) * H * W;
                    const T *wc = w + (k * C + c) * R * S;
                    for (r = 0; r < R; ++r) {
                        const int64_t ih = p * s->stride_h - s->pad_h + r * s->dil_h;
                        if (ih < 0 || ih >= H) continue;
                        for (t = 0; t < S; ++t) {
                            const int64_t iw = q * s->stride_w - s->pad_w + t * s->dil_w;
                            if (iw < 0 || iw >= W) continue;
                            acc = HK_FMA(xc[ih * W + iw], wc[r * S + t], acc, &rng);
                        }
                    }
                }
                if (b) acc = HK_ADD(acc, b[k], &rng);
                y[out] = acc;
            }
        }
    }
}

void HK_FN(harness_conv2d_bwd_input_)(const T *gy, const T *w, T *gx,
                                      const harness_conv_shape *s, uint64_t seed, uint32_t call) {
    const int64_t N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    const int64_t P = s->P, Q = s->Q;
    int64_t nc;
#pragma omp parallel for schedule(static)
    for (nc = 0; nc < N * C; ++nc) {
        const int64_t n = nc / C, c = nc % C;
        int64_t h, ww, k, r, t;
        for (h = 0; h < H; ++h) {
            for (ww = 0; ww < W; ++ww) {
                const int64_t out = (nc * H + h) * W + ww;
                harness_rng rng;
                T acc = 0;
                harness_rng_init(&rng, seed, (uint64_t)out,
                                 (call << 4) | HARNESS_TAG_CONV_BWD_INPUT);
                for (k = 0; k < K; ++k) {
                    const T *gyk = gy + (n * K + k) * P * Q;
                    const T *wk = w + (k * C + c) * R * S;
                    for (r = 0; r < R; ++r) {
                        const int64_t ph = h + s->pad_h - r * s->dil_h;
                        int64_t p;
                        if (ph < 0 || ph % s->stride_h) continue;
                        p = ph / s->stride_h;
                        if (p >= P) continue;
                        for (t = 0; t < S; ++t) {
                            const int64_t qw = ww + s->pad_w - t * s->dil_w;
                            int64_t q;
                            if (qw < 0 || qw % s->stride_w) continue;
                            q = qw / s->stride_w;
                            if (q >= Q) continue;
                            acc = HK_FMA(gyk[p * Q + q], wk[r * S + t], acc, &rng);
                        }
                    }
                }
                gx[out] = acc;
            }
        }
    }
}

void HK_FN(harness_conv2d_bwd_weight_)(const T *x, const T *gy, T *gw, T *gb,
                                       const harness_conv_shape *s, uint64_t seed, uint32_t call) {
    const int64_t N = s->N, C = s->C, H = s->H, W = s->W, K = s->K, R = s->R, S = s->S;
    const int64_t P = s->P, Q = s->Q;
    int64_t kcrs;
#pragma omp parallel for schedule(static)
    for (kcrs = 0; kcrs < K * C * R * S; ++kcrs) {
        const int64_t k = kcrs / (C * R * S), c = (kcrs / (R * S)) % C;
        const int64_t r = (kcrs / S) % R, t = kcrs % S;
        int64_t n, p, q;
        harness_rng rng;
        T acc = 0;
        harness_rng_init(&rng, seed, (uint64_t)kcrs, (call << 4) | HARNESS_TAG_CONV_BWD_WEIGHT);
        for (n = 0; n < N; ++n) {
            const T *xc = x + (n * C + c) * H * W;
            const T *gyk = gy + (n * K + k) * P * Q;
            for (p = 0; p < P; ++p) {
                const int64_t ih = p * s->stride_h - s->pad_h + r * s->dil_h;
                if (ih < 0 || ih >= H) continue;
                for (q = 0; q < Q; ++q) {
                    const int64_t iw = q * s->stride_w - s->pad_w + t * s->dil_w;
                    if (iw < 0 || iw >= W) continue;
                    acc = HK_FMA(gyk[p * Q + q], xc[ih * W + iw], acc, &rng);
                }
            }
        }
        gw[kcrs] = acc;
    }
    if (gb) {
        int64_t k;
#pragma omp parallel for schedule(static)
        for (k = 0; k < K; ++k) {
            int64_t n, pq;
            harness_rng rng;
            T acc = 0;
            harness_rng_init(&rng, seed, (uint64_t)k, (call << 4) | HARNESS_TAG_CONV_BWD_BIAS);
            for (n = 0; n < N; ++n)
                for (pq = 0; pq < P * Q; ++pq) acc = HK_ADD(acc, gy[(n * K + k) * P * Q + pq], &rng);
            gb[k] = acc;
        }
    }
}

/* per-channel y = (x - mean) * invstd * gamma + beta, one stream per element */
static void HK_FN(hk_bn_elementwise_)(const T *x, const T *gamma, const T *beta, const T *mean,
                                      const T *invstd, T *y, int64_t N, int64_t C, int64_t HW,
                                      uint64_t seed, uint32_t call) {
    int64_t nc;
#pragma omp parallel for schedule(static)
    for (nc = 0; nc < N * C; ++nc) {
        const int64_t c = nc % C;
        const T g = gamma ? gamma[c] : (T)1, bt = beta ? beta[c] : (T)0;
        int64_t i;
        for (i = 0; i < HW; ++i) {
            const int64_t e = nc * HW + i;
            harness_rng rng;
            T xhat;
            harness_rng_init(&rng, seed, (uint64_t)e, (call << 4) | HARNESS_TAG_BN_FWD);
            xhat = HK_MUL(HK_SUB(x[e], mean[c], &rng), invstd[c], &rng);
            y[e] = gamma || beta ? HK_FMA(xhat, g, bt, &rng) : xhat;
        }
    }
}

void HK_FN(harness_bn_fwd_train_)(const T *x, const T *gamma, const T *beta, T *y, T *mean,
                                  T *invstd, T *running_mean, T *running_var, int64_t N, int64_t C,
                                  int64_t HW, double eps, double momentum, uint64_t seed,
                                  uint32_t call) {
    const T count = (T)(N * HW);
    int64_t c;
#pragma omp parallel for schedule(static)
    for (c = 0; c < C; ++c) {
        harness_rng rng;
        T sum = 0, sq = 0, mu, var;
        int64_t n, i;
        harness_rng_init(&rng, seed, (uint64_t)c, (call << 4) | HARNESS_TAG_BN_STATS);
        for (n = 0; n < N; ++n)
            for (i = 0; i < HW; ++i) sum = HK_ADD(sum, x[(n * C + c) * HW + i], &rng);
        mu = HK_DIV(sum, count, &rng);
        for (n = 0; n < N; ++n)
            for (i = 0; i < HW; ++i) {
                const T d = HK_SUB(x[(n * C + c) * HW + i], mu, &rng);
                sq = HK_FMA(d, d, sq, &rng);
            }
        var = HK_DIV(sq, count, &rng);
        mean[c] = mu;
        /* sqrt is not instrumented (as in Verificarlo); the division is */
        invstd[c] = HK_DIV((T)1, (T)sqrt((double)HK_ADD(var, (T)eps, &rng)), &rng);
        if (running_mean && running_var) {
            const T keep = (T)(1.0 - momentum), mom = (T)momentum;
            const T unbiased = count > 1 ? HK_DIV(sq, count - 1, &rng) : var;
            running_mean[c] =
                HK_ADD(HK_MUL(keep, running_mean[c], &rng), HK_MUL(mom, mu, &rng), &rng);
            running_var[c] =
                HK_ADD(HK_MUL(keep, running_var[c], &rng), HK_MUL(mom, unbiased, &rng), &rng);
        }
    }
    HK_FN(hk_bn_elementwise_)(x, gamma, beta, mean, invstd, y, N, C, HW, seed, call);
}

void HK_FN(harness_bn_apply_)(const T *x, const T *gamma, const T *beta, const T *mean,
                              const T *invstd, T *y, int64_t N, int64_t C, int64_t HW,
                              uint64_t seed, uint32_t call) {
    HK_FN(hk_bn_elementwise_)(x, gamma, beta, mean, invstd, y, N, C, HW, seed, call);
}

void HK_FN(harness_bn_bwd_train_)(const T *x, const T *gy, const T *gamma, const T *mean,
                                  const T *invstd, T *gx, T *ggamma, T *gbeta, int64_t N,
                                  int64_t C, int64_t HW, uint64_t seed, uint32_t call) {
    const T count = (T)(N * HW);
    int64_t c;
#pragma omp parallel for schedule(static)
    for (c = 0; c < C; ++c) {
        harness_rng rng;
        T sum_dy = 0, sum_dy_xhat = 0, a, bcoef, scale;
        int64_t n, i;
        harness_rng_init(&rng, seed, (uint64_t)c, (call << 4) | HARNESS_TAG_BN_BWD_REDUCE);
        for (n = 0; n < N; ++n)
            for (i = 0; i < HW; ++i) {
                const int64_t e = (n * C + c) * HW + i;
                const T xhat = HK_MUL(HK_SUB(x[e], mean[c], &rng), invstd[c], &rng);
                sum_dy = HK_ADD(sum_dy, gy[e], &rng);
                sum_dy_xhat = HK_FMA(gy[e], xhat, sum_dy_xhat, &rng);
            }
        if (gbeta) gbeta[c] = sum_dy;
        if (ggamma) ggamma[c] = sum_dy_xhat;
        a = HK_DIV(sum_dy, count, &rng);
        bcoef = HK_DIV(sum_dy_xhat, count, &rng);
        scale = gamma ? HK_MUL(gamma[c], invstd[c], &rng) : invstd[c];
        for (n = 0; n < N; ++n)
            for (i = 0; i < HW; ++i) {
                const int64_t e = (n * C + c) * HW + i;
                harness_rng er;
                T xhat, t;
                harness_rng_init(&er, seed, (uint64_t)e, (call << 4) | HARNESS_TAG_BN_BWD);
                xhat = HK_MUL(HK_SUB(x[e], mean[c], &er), invstd[c], &er);
                t = HK_SUB(gy[e], a, &er);
                t = HK_FMA(-xhat, bcoef, t, &er);
                gx[e] = HK_MUL(scale, t, &er);
            }
    }
}

#undef HK_CAT_
#undef HK_CAT
#undef HK_FN
#undef HK_ADD
#undef HK_SUB
#undef HK_MUL
#undef HK_FMA
#undef HK_DIV
