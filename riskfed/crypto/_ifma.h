/*
 * Montgomery products eight at a time with AVX-512 IFMA (52-bit multiply-accumulate),
 * for riskfed's C kernels (_native.c). Optional twice over: compiled only for x86-64 with
 * GCC or Clang, and used only where the CPU reports avx512ifma at run time; elsewhere
 * the kernels use GMP's mpn functions and compute the same values.
 *
 * Layout ("vertical"): eight independent residues modulo one odd modulus N, each as L
 * limbs of 52 bits, interleaved limb by limb: x[l*8 + lane]. With R = 2^(52L) and
 * 4N < R, rf_amm8 returns a*b/R mod N for every lane as a value below 2N (an "almost
 * Montgomery" product), given inputs below 2N; products chain without final
 * subtractions, and one subtraction at the end, after leaving Montgomery form, gives
 * the reduced residue. Column-wise (product-scanning) Montgomery multiplication: each
 * output column sums at most 4L + 2 halves of 52-bit products and a carry, below 2^62
 * for L <= RF_MAX_L52 = 160, so 64-bit lanes never overflow.
 *
 * Sizes: up to 160 limbs, i.e. moduli of up to 8,318 bits: n^2 of a 4096-bit Paillier
 * key needs 158 (2048 bits: 79; 3072 bits: 119). Only the first L limbs of the
 * fixed-size scratch arrays are touched, so the bound costs smaller moduli nothing.
 *
 * Speed on the project's machine (AMD EPYC, Zen 4): 0.28 us per 2048-bit product and
 * 1.07 us per 4096-bit one, against 1.17 us and 4.3 us for GMP's mpn Montgomery product.
 */
#ifndef RISKFED_IFMA_H
#define RISKFED_IFMA_H

#include <stdint.h>

#define RF_MASK52 ((UINT64_C(1) << 52) - 1)
#define RF_MAX_L52 160 /* 8192-bit moduli (n^2 of a 4096-bit key) need 158 limbs of 52 bits */
#define RF_IFMA_MAX_BITS (52 * RF_MAX_L52 - 2) /* 4m < 2^(52L): 8,318 bits */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define RF_IFMA_BUILT 1
#include <immintrin.h>
#define RF_IFMA_TARGET __attribute__((target("avx512f,avx512ifma")))

static int
rf_ifma_supported(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}

/* r = a*b/R mod N (< 2N) for eight lanes; r may alias a or b (column i writes limb i-L,
 * which no later column reads). N is given as L plain 52-bit limbs, k0 = -N^-1 mod 2^52.
 * Column i sums the low halves of the limb products a_j*b_(i-j) and m_j*N_(i-j); their
 * high halves, taken from the same loaded operands, start column i+1. Two accumulators
 * per column hide the multiply-adds' latency; this runs at about 80 % of the machine's
 * multiply-add throughput. */
RF_IFMA_TARGET static inline __attribute__((always_inline)) void
rf_amm8_impl(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *N, uint64_t k0, int L, const int one_b)
{
    __m512i m[RF_MAX_L52];
    const __m512i *A = (const __m512i *)a, *B = (const __m512i *)b;
#define RF_LOAD_B(at) (one_b ? _mm512_set1_epi64((long long)b[at]) : _mm512_load_si512(B + (at)))
    __m512i *Rv = (__m512i *)r;
    const __m512i mask = _mm512_set1_epi64((long long)RF_MASK52);
    const __m512i vk0 = _mm512_set1_epi64((long long)k0);
    const __m512i zero = _mm512_setzero_si512();
    __m512i carry = zero, hi0 = zero, hi1 = zero;
    for (int i = 0; i < 2 * L - 1; i++) {
        __m512i c0 = _mm512_add_epi64(carry, hi0), c1 = hi1, n0 = zero, n1 = zero;
        int from = i - L + 1 > 0 ? i - L + 1 : 0, to = i < L - 1 ? i : L - 1;
        int mto = i >= L ? to : i - 1; /* m_i is made in this column */
        int j;
        for (j = from; j + 1 <= to; j += 2) {
            __m512i x0 = _mm512_load_si512(A + j), y0 = RF_LOAD_B(i - j);
            __m512i x1 = _mm512_load_si512(A + j + 1), y1 = RF_LOAD_B(i - j - 1);
            c0 = _mm512_madd52lo_epu64(c0, x0, y0);
            n0 = _mm512_madd52hi_epu64(n0, x0, y0);
            c1 = _mm512_madd52lo_epu64(c1, x1, y1);
            n1 = _mm512_madd52hi_epu64(n1, x1, y1);
        }
        if (j <= to) {
            __m512i x0 = _mm512_load_si512(A + j), y0 = RF_LOAD_B(i - j);
            c0 = _mm512_madd52lo_epu64(c0, x0, y0);
            n0 = _mm512_madd52hi_epu64(n0, x0, y0);
        }
        for (j = from; j + 1 <= mto; j += 2) {
            __m512i y0 = _mm512_set1_epi64((long long)N[i - j]), y1 = _mm512_set1_epi64((long long)N[i - j - 1]);
            c0 = _mm512_madd52lo_epu64(c0, m[j], y0);
            n0 = _mm512_madd52hi_epu64(n0, m[j], y0);
            c1 = _mm512_madd52lo_epu64(c1, m[j + 1], y1);
            n1 = _mm512_madd52hi_epu64(n1, m[j + 1], y1);
        }
        if (j <= mto) {
            __m512i y0 = _mm512_set1_epi64((long long)N[i - j]);
            c0 = _mm512_madd52lo_epu64(c0, m[j], y0);
            n0 = _mm512_madd52hi_epu64(n0, m[j], y0);
        }
        __m512i acc = _mm512_add_epi64(c0, c1);
        if (i < L) {
            /* m_i makes this column divisible by 2^52; only the carry moves on. */
            __m512i mi = _mm512_and_si512(_mm512_madd52lo_epu64(zero, acc, vk0), mask);
            __m512i n = _mm512_set1_epi64((long long)N[0]);
            m[i] = mi;
            acc = _mm512_madd52lo_epu64(acc, mi, n);
            n0 = _mm512_madd52hi_epu64(n0, mi, n);
        } else {
            _mm512_store_si512(Rv + i - L, _mm512_and_si512(acc, mask));
        }
        carry = _mm512_srli_epi64(acc, 52);
        hi0 = n0;
        hi1 = n1;
    }
    /* The top column holds only high halves and the carry: below 2^52, since r < 2N. */
    _mm512_store_si512(Rv + L - 1, _mm512_add_epi64(_mm512_add_epi64(carry, hi0), hi1));
#undef RF_LOAD_B
}

RF_IFMA_TARGET static void
rf_amm8(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *N, uint64_t k0, int L)
{
    rf_amm8_impl(r, a, b, N, k0, L, 0);
}

/* The same with one factor b (L plain limbs) shared by all eight lanes. */
RF_IFMA_TARGET static void
rf_amm8_1(uint64_t *r, const uint64_t *a, const uint64_t *b, const uint64_t *N, uint64_t k0, int L)
{
    rf_amm8_impl(r, a, b, N, k0, L, 1);
}

/* x (vertical) <-> slots of a vertical array: lane k's value lives at
 * base[idx[k] + 8*l] for limb l (idx in 64-bit words). */
RF_IFMA_TARGET static void
rf_gather_slots(uint64_t *x, const uint64_t *base, const int64_t *idx, int L)
{
    __m512i v = _mm512_loadu_si512((const void *)idx);
    for (int l = 0; l < L; l++)
        _mm512_store_si512((__m512i *)(x + 8 * l), _mm512_i64gather_epi64(v, (const void *)(base + 8 * l), 8));
}

RF_IFMA_TARGET static void
rf_scatter_slots(uint64_t *base, const uint64_t *x, const int64_t *idx, int L)
{
    __m512i v = _mm512_loadu_si512((const void *)idx);
    for (int l = 0; l < L; l++)
        _mm512_i64scatter_epi64((void *)(base + 8 * l), v, _mm512_load_si512((const __m512i *)(x + 8 * l)), 8);
}

/* dst (vertical, L limbs) = the entries at limb offsets idx[0..7] of table. */
RF_IFMA_TARGET static void
rf_gather8(uint64_t *dst, const uint64_t *table, const int64_t *idx, int L)
{
    __m512i v = _mm512_loadu_si512((const void *)idx);
    for (int l = 0; l < L; l++)
        _mm512_store_si512((__m512i *)(dst + 8 * l), _mm512_i64gather_epi64(v, (const void *)(table + l), 8));
}

/* F (vertical) = per lane: UV where both masks have the lane, U or V where one has it,
 * one where neither does. */
RF_IFMA_TARGET static void
rf_select8(uint64_t *F, const uint64_t *one, const uint64_t *U, const uint64_t *V, const uint64_t *UV,
           unsigned ms, unsigned mt, int L)
{
    __mmask8 only_u = (__mmask8)(ms & ~mt), only_v = (__mmask8)(mt & ~ms), both = (__mmask8)(ms & mt);
    for (int l = 0; l < L; l++) {
        __m512i f = _mm512_load_si512((const __m512i *)(one + 8 * l));
        f = _mm512_mask_blend_epi64(only_u, f, _mm512_load_si512((const __m512i *)(U + 8 * l)));
        f = _mm512_mask_blend_epi64(only_v, f, _mm512_load_si512((const __m512i *)(V + 8 * l)));
        f = _mm512_mask_blend_epi64(both, f, _mm512_load_si512((const __m512i *)(UV + 8 * l)));
        _mm512_store_si512((__m512i *)(F + 8 * l), f);
    }
}

#else
#define RF_IFMA_BUILT 0
static int
rf_ifma_supported(void)
{
    return 0;
}
#endif

/* Plain little-endian 64-bit limbs (n of them) <-> L limbs of 52 bits. */
static inline void
rf_to52(uint64_t *out, int L, const uint64_t *in, int n)
{
    for (int l = 0; l < L; l++) {
        int bit = 52 * l, w = bit / 64, s = bit % 64;
        uint64_t v = w < n ? in[w] >> s : 0;
        if (s > 12 && w + 1 < n)
            v |= in[w + 1] << (64 - s);
        out[l] = v & RF_MASK52;
    }
}

static inline void
rf_from52(uint64_t *out, int n, const uint64_t *in, int L)
{
    for (int w = 0; w < n; w++)
        out[w] = 0;
    for (int l = 0; l < L; l++) {
        int bit = 52 * l, w = bit / 64, s = bit % 64;
        if (w < n)
            out[w] |= in[l] << s;
        if (s > 12 && w + 1 < n)
            out[w + 1] |= in[l] >> (64 - s);
    }
}

#endif
