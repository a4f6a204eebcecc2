/* Peak multiply-add rates of this CPU's AVX-512 dot-product instructions, the ceiling that the
 * integer, bf16 and f32 products are held against: vpdpbusd (u8 x s8, 4 products per 32-bit
 * lane), vpdpwssd (s16 x s16, 2 per lane), vdpbf16ps (bf16 pairs into f32) and vfmadd231ps (one
 * f32 product per lane), on zmm registers, one
 * thread per core (OpenMP), 12 independent accumulators so that latency does not limit.
 * Prints GOP/s (2 ops per multiply-add) for each, one line of JSON.
 *
 *   cc -O2 -mavx512f -mavx512bw -mavx512vnni -mavx512bf16 -fopenmp scripts/peak_rates.c -o peak
 *   OMP_NUM_THREADS=2 ./peak
 */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <time.h>

#define ITERS 100000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define BODY(OP, T, INIT, SUM)                                                                   \
    {                                                                                            \
        T a0 = INIT(0), a1 = INIT(1), a2 = INIT(2), a3 = INIT(3), a4 = INIT(4), a5 = INIT(5),         \
          a6 = INIT(6), a7 = INIT(7), a8 = INIT(8), a9 = INIT(9), a10 = INIT(10), a11 = INIT(11); \
        for (long i = 0; i < ITERS; i++) {                                                       \
            __asm__ volatile("" : "+v"(x), "+v"(y));                                             \
            a0 = OP(a0, x, y); a1 = OP(a1, x, y); a2 = OP(a2, x, y); a3 = OP(a3, x, y);          \
            a4 = OP(a4, x, y); a5 = OP(a5, x, y); a6 = OP(a6, x, y); a7 = OP(a7, x, y);          \
            a8 = OP(a8, x, y); a9 = OP(a9, x, y); a10 = OP(a10, x, y); a11 = OP(a11, x, y);      \
        }                                                                                        \
        sink += SUM(a0) + SUM(a1) + SUM(a2) + SUM(a3) + SUM(a4) + SUM(a5) + SUM(a6) + SUM(a7) +  \
                SUM(a8) + SUM(a9) + SUM(a10) + SUM(a11);                                         \
    }

/* the same loop on bf16 pairs, accumulating in f32 */
#define BODY_BF16(X, Y)                                                                          \
    {                                                                                            \
        __m512bh x = X, y = Y;                                                                   \
        BODY(_mm512_dpbf16_ps, __m512, _mm512_set1_ps, _mm512_reduce_add_ps)                \
    }

static double run(int which) {
    double total = 0, t0 = now();
#pragma omp parallel reduction(+ : total)
    {
        double sink = 0;
        __m512i x = _mm512_set1_epi8(1), y = _mm512_set1_epi8(1);
        if (which == 0) {
            BODY(_mm512_dpbusd_epi32, __m512i, _mm512_set1_epi32, _mm512_reduce_add_epi32)
        } else if (which == 1) {
            BODY(_mm512_dpwssd_epi32, __m512i, _mm512_set1_epi32, _mm512_reduce_add_epi32)
        } else if (which == 3) {
            __m512 fx = _mm512_set1_ps(1e-9f), fy = _mm512_set1_ps(1e-9f);
            {
                __m512 x = fx, y = fy;
                BODY(_mm512_fmadd_ps, __m512, _mm512_set1_ps, _mm512_reduce_add_ps)
            }
        } else {
            __m512bh bx = (__m512bh)x, by = (__m512bh)y;
            BODY_BF16(bx, by)
        }
        total += sink;
    }
    double secs = now() - t0;
    /* multiply-adds per instruction: 64 (u8 x s8), 32 (s16), 32 (bf16 pairs), 16 (f32) */
    double macs = (which == 0 ? 64 : which == 3 ? 16 : 32) * 12.0 * ITERS * omp_get_max_threads();
    if (total == 12345.678) puts(""); /* keeps the sums */
    return 2 * macs / secs / 1e9;
}

int main(void) {
    double i8 = run(0), i16 = run(1), bf = run(2), f32 = run(3);
    printf("{\"threads\": %d, \"vpdpbusd_gops\": %.0f, \"vpdpwssd_gops\": %.0f, "
           "\"vdpbf16ps_gflops\": %.0f, \"vfmadd_gflops\": %.0f}\n", omp_get_max_threads(), i8,
           i16, bf, f32);
    return 0;
}
