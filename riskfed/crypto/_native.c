/*
 * riskfed's C kernels: Montgomery products on GMP's low-level (mpn) functions, or eight
 * at a time on AVX-512 IFMA where the CPU has it (_ifma.h). All are optional: riskfed
 * computes exactly the same values with gmpy2 when this extension is not built (see
 * setup.py), and the IFMA kernels are used only where the CPU reports the instructions.
 *
 * 1. Fixed-base products (DJN randomness: the key holder's modulo p^2 and q^2, a party's
 * own modulo n^2). A Table holds, for an odd modulus m and a base b,
 *     entry[i][d] = b^(d * 2^(window*i)) * R mod m      (Montgomery form)
 * and Table.products(digits) returns, for each column k of a (rows x count) digit array,
 *     prod_i entry[i][digits[i][k]]  as a plain residue mod m,
 * i.e. b^r mod m for r = sum_i digits[i][k] * 2^(window*i): one Montgomery
 * multiplication per digit. On GMP's mpn functions (R = 2^(64n)) a 2048-bit product
 * costs about 1.2 us (1.9 us through gmpy2, counting interpreter overhead and cache
 * misses); on IFMA (R = 2^(52L), entries in 52-bit limbs) eight randomizers advance
 * together, 0.28 us per product.
 * Threads: the table is built row by row with fill(start, stop) and read-only afterwards;
 * fill and products release the GIL, so a pool of threads can share one table.
 * Secrets: the modulus p^2 reveals the factorisation; a Table never leaves the key
 * holder's process (it cannot be pickled) and is freed with its last reference.
 *
 * 2. Bit-plane multi-exponentiation (the encrypted gradient over many columns, on GMP):
 * planes(modulus, bases, exponents, rows, cols, g) returns prod_i bases[i]^exps[i][j] mod m
 * for every column j, by the method of riskfed.crypto.multiexp._by_planes: subset
 * products of g-row groups, shared by every column and bit plane. Modulo n^2 (4096 bits)
 * a product costs what it costs through gmpy2 (GMP either way); what C saves is the
 * interpreter's share of the inner loop, about a sixth of this method's time.
 *
 * 3. On IFMA only: windows() (window-bucket multi-exponentiation, every encrypted
 * gradient of two or more columns), affine() (the bank's residual refresh) and pack()
 * (Horner packing of masked values), each eight lanes per vector product.
 * Except for the key holder's tables, everything here is public (ciphertexts) or the
 * calling party's own (features, exponents, masked values).
 *
 * Sizes: the IFMA kernels take moduli of up to RF_IFMA_MAX_BITS (8,318) bits, n^2 of a
 * 4096-bit key; GMP's take up to 32 KiB. Counts (rows, columns, values) must be below
 * 2^48, and every product of counts and widths that sizes a buffer or bounds a loop is
 * checked (size_product) before anything is allocated or read: OverflowError names the
 * kernel and the sizes; other bad input raises ValueError.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <gmp.h>

/* Digits and exponents arrive as little-endian numpy buffers and are read in place;
 * residues are assembled from 64-bit limbs. Elsewhere the build fails, and setup.py then
 * skips this optional extension: riskfed falls back to gmpy2. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__ || GMP_LIMB_BITS != 64
#error "riskfed's C kernels need a little-endian machine with 64-bit GMP limbs"
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_ifma.h"

typedef struct {
    PyObject_HEAD
    mp_size_t n;          /* limbs of the modulus */
    int window;           /* bits per digit */
    int rows;             /* digits per exponent */
    mp_limb_t minv;       /* -m^-1 mod 2^64 */
    mp_limb_t *mod;       /* n limbs */
    mp_limb_t *one;       /* R mod m: Montgomery 1, entry 0 of every row */
    mp_limb_t *bases;     /* rows * n limbs: b^(2^(window*i)) in Montgomery form */
    mp_limb_t *table;     /* rows * 2^window * n limbs */
    unsigned char *filled;/* rows flags */
    /* With AVX-512 IFMA (see _ifma.h) the entries live in 52-bit limbs instead: */
    int ready;            /* __init__ succeeded */
    int ifma;             /* 1: table52 holds the entries, table is NULL */
    int L;                /* 52-bit limbs per entry */
    uint64_t k0;          /* -m^-1 mod 2^52 */
    uint64_t *mod52;      /* L limbs */
    uint64_t *one52;      /* 2^(52L) mod m */
    uint64_t *bases52;    /* rows * L limbs */
    uint64_t *table52;    /* rows * 2^window * L limbs, 64-byte aligned */
} TableObject;

/* r = a * b / R mod m, fully reduced; t is scratch of 2n limbs; r may alias a or b. */
static void
mont_mul(mp_limb_t *r, const mp_limb_t *a, const mp_limb_t *b, mp_limb_t *t,
         const mp_limb_t *m, mp_size_t n, mp_limb_t minv)
{
    if (a == b)
        mpn_sqr(t, a, n);
    else
        mpn_mul_n(t, a, b, n);
    for (mp_size_t i = 0; i < n; i++) {
        mp_limb_t q = t[i] * minv;
        t[i] = mpn_addmul_1(t + i, m, n, q); /* t[i] becomes 0 + carry, kept for later */
    }
    mp_limb_t carry = mpn_add_n(r, t + n, t, n);
    if (carry || mpn_cmp(r, m, n) >= 0)
        mpn_sub_n(r, r, m, n);
}

/* r = a / R mod m (leave Montgomery form). */
static void
mont_out(mp_limb_t *r, const mp_limb_t *a, mp_limb_t *t, const mp_limb_t *m, mp_size_t n, mp_limb_t minv)
{
    memcpy(t, a, n * sizeof(mp_limb_t));
    memset(t + n, 0, n * sizeof(mp_limb_t));
    for (mp_size_t i = 0; i < n; i++) {
        mp_limb_t q = t[i] * minv;
        t[i] = mpn_addmul_1(t + i, m, n, q);
    }
    mp_limb_t carry = mpn_add_n(r, t + n, t, n);
    if (carry || mpn_cmp(r, m, n) >= 0)
        mpn_sub_n(r, r, m, n);
}

/* Little-endian bytes -> n limbs (zero-padded). */
static void
limbs_from_bytes(mp_limb_t *out, mp_size_t n, const unsigned char *buf, Py_ssize_t len)
{
    memset(out, 0, n * sizeof(mp_limb_t));
    for (Py_ssize_t i = 0; i < len; i++)
        out[i / 8] |= ((mp_limb_t)buf[i]) << (8 * (i % 8));
}

static void
limbs_to_bytes(unsigned char *dst, const mp_limb_t *a, mp_size_t n)
{
    for (mp_size_t l = 0; l < n; l++)
        for (int b = 0; b < 8; b++)
            dst[l * 8 + b] = (unsigned char)(a[l] >> (8 * b));
}

/* Moduli of at most 32 KiB (262,144 bits, far beyond any Paillier key): limb counts and
 * every width derived from them then fit an int. */
#define RF_MAX_MODULUS_BYTES (1 << 15)

/* Whether mod_buf holds an odd modulus of 8 bytes to 32 KiB, little-endian without
 * padding; sets ValueError otherwise. */
static int
modulus_ok(const Py_buffer *mod_buf)
{
    const unsigned char *mb = mod_buf->buf;
    if (mod_buf->len < 8 || (mb[0] & 1) == 0 || mb[mod_buf->len - 1] == 0) {
        PyErr_SetString(PyExc_ValueError, "modulus must be odd, at least 8 bytes, little-endian without padding");
        return 0;
    }
    if (mod_buf->len > RF_MAX_MODULUS_BYTES) {
        PyErr_Format(PyExc_ValueError, "modulus must be at most %d bytes; got %zd", RF_MAX_MODULUS_BYTES, mod_buf->len);
        return 0;
    }
    return 1;
}

/* Counts a caller passes (rows, columns, values): below 2^48, so that a count plus a few
 * cannot overflow; their products are checked by size_product. */
#define RF_MAX_COUNT ((Py_ssize_t)1 << 48)

/* Whether 0 <= count < 2^48; sets ValueError (negative) or OverflowError naming the
 * kernel and the count otherwise. */
static int
count_ok(Py_ssize_t count, const char *kernel, const char *what)
{
    if (count < 0) {
        PyErr_Format(PyExc_ValueError, "%s needs %s >= 0; got %zd", kernel, what, count);
        return 0;
    }
    if (count >= RF_MAX_COUNT) {
        PyErr_Format(PyExc_OverflowError, "%s takes fewer than 2^48 %s; got %zd", kernel, what, count);
        return 0;
    }
    return 1;
}

/* *out = a * b * c for the size of a buffer or the bound of a loop, or 0 with
 * OverflowError naming the kernel when a factor is negative or the product does not fit
 * a Py_ssize_t. Every size made from a caller's counts goes through this (or is bounded
 * by one that did) before anything is allocated or read. */
static int
size_product(Py_ssize_t *out, const char *kernel, Py_ssize_t a, Py_ssize_t b, Py_ssize_t c)
{
    Py_ssize_t ab, abc;
    if (a < 0 || b < 0 || c < 0 || __builtin_mul_overflow(a, b, &ab) || __builtin_mul_overflow(ab, c, &abc)) {
        PyErr_Format(PyExc_OverflowError, "%s: a buffer of %zd x %zd x %zd overflows the address space", kernel, a, b, c);
        return 0;
    }
    *out = abc;
    return 1;
}

/* The 52-bit limbs L an IFMA residue modulo this (valid) modulus needs: 4m < 2^(52L). */
static int
limbs52(const Py_buffer *mod_buf)
{
    const unsigned char *mb = mod_buf->buf;
    int top = 7;
    while (top > 0 && !(mb[mod_buf->len - 1] >> top))
        top--;
    return (int)((8 * (mod_buf->len - 1) + top + 1 + 2 + 51) / 52);
}

#if RF_IFMA_BUILT
/* Whether the little-endian residue of n limbs at src is not below m. */
static int
not_reduced(const unsigned char *src, const mp_limb_t *m, mp_size_t n)
{
    mp_limb_t x[2 * RF_MAX_L52];
    if (n > 2 * RF_MAX_L52)
        return 1;
    limbs_from_bytes(x, n, src, (Py_ssize_t)(n * 8));
    return mpn_cmp(x, m, n) >= 0;
}

/* Whether each of count residues of n limbs at buf is below m; sets ValueError naming
 * the kernel otherwise. */
static int
all_reduced(const unsigned char *buf, Py_ssize_t count, const mp_limb_t *m, mp_size_t n, const char *kernel)
{
    for (Py_ssize_t i = 0; i < count; i++) {
        if (not_reduced(buf + i * n * 8, m, n)) {
            PyErr_Format(PyExc_ValueError, "%s needs residues reduced modulo the modulus", kernel);
            return 0;
        }
    }
    return 1;
}

/* The modulus of an IFMA kernel's call as *n 64-bit limbs (PyMem_RawFree them), with *L
 * its 52-bit limb count; NULL with an exception set when the CPU has no AVX-512 IFMA or
 * the modulus is unusable. */
static mp_limb_t *
ifma_modulus(const Py_buffer *mod_buf, const char *kernel, mp_size_t *n, int *L)
{
    if (!rf_ifma_supported()) {
        PyErr_Format(PyExc_ValueError, "%s needs a CPU with AVX-512 IFMA", kernel);
        return NULL;
    }
    if (!modulus_ok(mod_buf))
        return NULL;
    *L = limbs52(mod_buf);
    if (*L > RF_MAX_L52) {
        PyErr_Format(PyExc_ValueError, "%s needs a modulus of at most %d bits", kernel, RF_IFMA_MAX_BITS);
        return NULL;
    }
    *n = (mp_size_t)((mod_buf->len + 7) / 8);
    mp_limb_t *mod = PyMem_RawCalloc(*n, sizeof(mp_limb_t));
    if (mod == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    limbs_from_bytes(mod, *n, mod_buf->buf, mod_buf->len);
    return mod;
}
#endif

/* x * 2^shift mod m as n limbs, via mpz (x given as n limbs; NULL stands for 1):
 * x * R mod m enters Montgomery form, R^2 mod m (x = 1, shift 128n) does it by one product. */
static void
shifted_mod(mp_limb_t *out, const mp_limb_t *x, mp_bitcnt_t shift, const mp_limb_t *m, mp_size_t n)
{
    mpz_t X, M;
    mpz_init(X);
    mpz_init(M);
    if (x != NULL)
        mpz_import(X, n, -1, sizeof(mp_limb_t), 0, 0, x);
    else
        mpz_set_ui(X, 1);
    mpz_import(M, n, -1, sizeof(mp_limb_t), 0, 0, m);
    mpz_mul_2exp(X, X, shift);
    mpz_mod(X, X, M);
    memset(out, 0, n * sizeof(mp_limb_t));
    mpz_export(out, NULL, -1, sizeof(mp_limb_t), 0, 0, X);
    mpz_clear(X);
    mpz_clear(M);
}

static void
Table_dealloc(TableObject *self)
{
    PyMem_RawFree(self->mod);
    PyMem_RawFree(self->one);
    PyMem_RawFree(self->bases);
    PyMem_RawFree(self->table);
    PyMem_RawFree(self->filled);
    PyMem_RawFree(self->mod52);
    PyMem_RawFree(self->one52);
    PyMem_RawFree(self->bases52);
    free(self->table52);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* T (an mpz below the modulus of n limbs) as L limbs of 52 bits. */
static void
mpz_to52(uint64_t *out, int L, const mpz_t T, mp_size_t n)
{
    uint64_t tmp[2 * RF_MAX_L52];
    memset(tmp, 0, sizeof(tmp));
    mpz_export(tmp, NULL, -1, sizeof(uint64_t), 0, 0, T);
    rf_to52(out, L, tmp, (int)n);
}

/* The IFMA form of a table: modulus, 1 and the row bases b^(2^(window*i)) times
 * R = 2^(52L) mod m, computed with mpz (a few hundred products, next to the rows'
 * millions). */
static int
table_init52(TableObject *self, const mp_limb_t *b)
{
    mp_size_t n = self->n;
    int L = self->L;
    Py_ssize_t table_bytes;
    if (!size_product(&table_bytes, "Table", (Py_ssize_t)self->rows << self->window, L, sizeof(uint64_t)))
        return -1;
    self->k0 = self->minv & RF_MASK52;
    self->mod52 = PyMem_RawCalloc(L, sizeof(uint64_t));
    self->one52 = PyMem_RawCalloc(L, sizeof(uint64_t));
    self->bases52 = PyMem_RawCalloc((size_t)self->rows * L, sizeof(uint64_t));
    if (posix_memalign((void **)&self->table52, 64, (size_t)table_bytes) != 0)
        self->table52 = NULL;
    if (!self->mod52 || !self->one52 || !self->bases52 || !self->table52) {
        PyErr_NoMemory();
        return -1;
    }
    rf_to52(self->mod52, L, self->mod, (int)n);
    mpz_t M, X, T;
    mpz_inits(M, X, T, NULL);
    mpz_import(M, n, -1, sizeof(mp_limb_t), 0, 0, self->mod);
    mpz_import(X, n, -1, sizeof(mp_limb_t), 0, 0, b);
    mpz_set_ui(T, 1);
    mpz_mul_2exp(T, T, 52 * (mp_bitcnt_t)L);
    mpz_mod(T, T, M);
    mpz_to52(self->one52, L, T, n);
    for (int i = 0; i < self->rows; i++) {
        mpz_mul_2exp(T, X, 52 * (mp_bitcnt_t)L);
        mpz_mod(T, T, M);
        mpz_to52(self->bases52 + (size_t)i * L, L, T, n);
        for (int k = 0; k < self->window; k++) {
            mpz_mul(X, X, X);
            mpz_mod(X, X, M);
        }
    }
    mpz_clears(M, X, T, NULL);
    return 0;
}

static int
Table_init(TableObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"modulus", "base", "window", "rows", "ifma", NULL};
    Py_buffer mod_buf, base_buf;
    int window, rows, ifma = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*y*ii|i", kwlist, &mod_buf, &base_buf, &window, &rows, &ifma))
        return -1;
    int ok = -1;
    mp_limb_t *b = NULL, *t = NULL;
    if (self->mod != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Table is already initialised");
        goto done;
    }
    if (window < 1 || window > 16 || rows < 1 || rows > 4096) {
        PyErr_SetString(PyExc_ValueError, "window must be 1..16 bits and rows 1..4096");
        goto done;
    }
    if (!modulus_ok(&mod_buf))
        goto done;
    const unsigned char *mb = mod_buf.buf;
    mp_size_t n = (mp_size_t)((mod_buf.len + 7) / 8);
    if (base_buf.len > (Py_ssize_t)(n * 8)) {
        PyErr_SetString(PyExc_ValueError, "base must be reduced modulo the modulus");
        goto done;
    }
    /* Beyond RF_MAX_L52 limbs of 52 bits only GMP's path. */
    int L = limbs52(&mod_buf);
    int fits = L <= RF_MAX_L52 && rf_ifma_supported();
    if (ifma > 0 && !fits) {
        PyErr_Format(PyExc_ValueError, "ifma=1 needs a CPU with AVX-512 IFMA and a modulus of at most %d bits", RF_IFMA_MAX_BITS);
        goto done;
    }
    self->ifma = ifma < 0 ? fits : ifma;
    self->L = L;
    self->mod = PyMem_RawCalloc(n, sizeof(mp_limb_t));
    self->filled = PyMem_RawCalloc(rows, 1);
    b = PyMem_RawCalloc(n, sizeof(mp_limb_t));
    t = PyMem_RawMalloc(2 * n * sizeof(mp_limb_t));
    if (!self->mod || !self->filled || !b || !t) {
        PyErr_NoMemory();
        goto done;
    }
    self->n = n;
    self->window = window;
    self->rows = rows;
    limbs_from_bytes(self->mod, n, mb, mod_buf.len);
    mp_limb_t inv = 1; /* Newton: inv = m0^-1 mod 2^64 */
    for (int k = 0; k < 7; k++)
        inv *= 2 - self->mod[0] * inv;
    self->minv = -inv;
    limbs_from_bytes(b, n, base_buf.buf, base_buf.len);
    if (mpn_cmp(b, self->mod, n) >= 0) {
        PyErr_SetString(PyExc_ValueError, "base must be reduced modulo the modulus");
        goto done;
    }
    if (self->ifma) {
        ok = table_init52(self, b);
        self->ready = ok == 0;
        goto done;
    }
    Py_ssize_t table_bytes;
    if (!size_product(&table_bytes, "Table", (Py_ssize_t)rows << window, n, sizeof(mp_limb_t)))
        goto done;
    self->one = PyMem_RawCalloc(n, sizeof(mp_limb_t));
    self->bases = PyMem_RawCalloc((size_t)rows * n, sizeof(mp_limb_t));
    self->table = PyMem_RawMalloc((size_t)table_bytes);
    if (!self->one || !self->bases || !self->table) {
        PyErr_NoMemory();
        goto done;
    }
    shifted_mod(self->bases, b, 64 * n, self->mod, n);
    shifted_mod(self->one, NULL, 64 * n, self->mod, n);
    /* bases[i] = b^(2^(window*i)): window squarings per row, cheap next to the rows. */
    for (int i = 1; i < rows; i++) {
        mp_limb_t *cur = self->bases + (size_t)i * n;
        memcpy(cur, cur - n, n * sizeof(mp_limb_t));
        for (int s = 0; s < window; s++)
            mont_mul(cur, cur, cur, t, self->mod, n, self->minv);
    }
    ok = 0;
    self->ready = 1;
done:
    PyMem_RawFree(b);
    PyMem_RawFree(t);
    PyBuffer_Release(&mod_buf);
    PyBuffer_Release(&base_buf);
    return ok;
}

#if RF_IFMA_BUILT
/* Lane k of the vertical x = the residue of n limbs at src (52-bit limbs, L of them). */
static void
put_lane(uint64_t *x, int k, const unsigned char *src, mp_size_t n, int L)
{
    uint64_t limbs[2 * RF_MAX_L52], lane[RF_MAX_L52];
    limbs_from_bytes((mp_limb_t *)limbs, n, src, (Py_ssize_t)(n * 8));
    rf_to52(lane, L, limbs, (int)n);
    for (int l = 0; l < L; l++)
        x[8 * l + k] = lane[l];
}

/* The reduced residue of lane k of x (a value below 2m) as n limbs, little-endian. */
static void
take_lane(unsigned char *dst, const uint64_t *x, int k, const mp_limb_t *mod, mp_size_t n, int L)
{
    uint64_t lane[RF_MAX_L52];
    mp_limb_t out[2 * RF_MAX_L52];
    for (int l = 0; l < L; l++)
        lane[l] = x[8 * l + k];
    rf_from52((uint64_t *)out, (int)n, lane, L);
    if (mpn_cmp(out, mod, n) >= 0)
        mpn_sub_n(out, out, mod, n);
    limbs_to_bytes(dst, out, n);
}

/* The constants of an IFMA kernel modulo m (n limbs, L limbs of 52 bits): N = m's 52-bit
 * limbs, and in every lane one = R mod m, r2 = R^2 mod m (R = 2^(52L)) and, unless NULL,
 * plain1 = 1. Returns k0 = -m^-1 mod 2^52. */
static uint64_t
montgomery_consts(uint64_t *N, uint64_t *one, uint64_t *r2, uint64_t *plain1, const mp_limb_t *mod, mp_size_t n, int L)
{
    mp_limb_t inv = 1;
    for (int k = 0; k < 7; k++)
        inv *= 2 - mod[0] * inv;
    rf_to52(N, L, mod, (int)n);
    uint64_t lane[RF_MAX_L52];
    mpz_t M, T;
    mpz_inits(M, T, NULL);
    mpz_import(M, n, -1, sizeof(mp_limb_t), 0, 0, mod);
    for (int which = 0; which < 2; which++) {
        mpz_set_ui(T, 1);
        mpz_mul_2exp(T, T, (which + 1) * 52 * (mp_bitcnt_t)L);
        mpz_mod(T, T, M);
        mpz_to52(lane, L, T, n);
        uint64_t *dst = which ? r2 : one;
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 8; k++)
                dst[8 * l + k] = lane[l];
    }
    mpz_clears(M, T, NULL);
    if (plain1 != NULL) {
        memset(plain1, 0, 64 * (size_t)L);
        for (int k = 0; k < 8; k++)
            plain1[k] = 1;
    }
    return (-inv) & RF_MASK52;
}

static uint64_t *
vectors(int count, int L)
{
    uint64_t *p = NULL;
    if (posix_memalign((void **)&p, 64, (size_t)count * 64 * L) != 0)
        return NULL;
    return p;
}

/* Rows start..stop-1 of an IFMA table, eight rows at a time (one per lane): entry d of
 * a row is entry d-1 times the row's base. Releases the GIL. */
static int
fill52(TableObject *self, int start, int stop)
{
    int L = self->L;
    size_t width = (size_t)1 << self->window;
    uint64_t *A = NULL, *B = NULL;
    if (posix_memalign((void **)&A, 64, 64 * (size_t)L) || posix_memalign((void **)&B, 64, 64 * (size_t)L)) {
        free(A);
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int g0 = start; g0 < stop; g0 += 8) {
        int lanes = stop - g0 < 8 ? stop - g0 : 8;
        for (int k = 0; k < 8; k++) {
            const uint64_t *base = self->bases52 + (size_t)(g0 + (k < lanes ? k : lanes - 1)) * L;
            for (int l = 0; l < L; l++)
                B[8 * l + k] = base[l];
        }
        memcpy(A, B, 64 * (size_t)L);
        for (int k = 0; k < lanes; k++) {
            uint64_t *row = self->table52 + (size_t)(g0 + k) * width * L;
            memcpy(row, self->one52, L * sizeof(uint64_t));
            memcpy(row + L, self->bases52 + (size_t)(g0 + k) * L, L * sizeof(uint64_t));
        }
        for (size_t d = 2; d < width; d++) {
            rf_amm8(A, A, B, self->mod52, self->k0, L);
            for (int k = 0; k < lanes; k++) {
                uint64_t *dst = self->table52 + ((size_t)(g0 + k) * width + d) * L;
                for (int l = 0; l < L; l++)
                    dst[l] = A[8 * l + k];
            }
        }
    }
    Py_END_ALLOW_THREADS
    free(A);
    free(B);
    return 0;
}

/* Table.products on an IFMA table: randomizers eight at a time (one per lane), row by
 * row over the whole batch so that a row (2^window entries) stays in cache while the
 * batch reads it. Writes count residues of n limbs, little-endian, to dst; -1 with an
 * exception set when it cannot allocate. */
static int
products52(TableObject *self, const uint16_t *digits, Py_ssize_t count, unsigned char *dst)
{
    int L = self->L;
    mp_size_t n = self->n;
    size_t width = (size_t)1 << self->window;
    Py_ssize_t groups = (count + 7) / 8, acc_bytes;
    if (groups == 0)
        return 0;
    if (!size_product(&acc_bytes, "products", groups, 64, L))
        return -1;
    uint64_t *acc = NULL, *B = NULL;
    if (posix_memalign((void **)&acc, 64, (size_t)acc_bytes) || posix_memalign((void **)&B, 64, 64 * (size_t)L)) {
        free(acc);
        PyErr_NoMemory();
        return -1;
    }
    Py_BEGIN_ALLOW_THREADS
    int64_t idx[8];
    for (int i = 0; i < self->rows; i++) {
        const uint16_t *d = digits + (size_t)i * count;
        const uint64_t *row = self->table52 + (size_t)i * width * L;
        for (Py_ssize_t g = 0; g < groups; g++) {
            for (int k = 0; k < 8; k++) {
                Py_ssize_t at = 8 * g + k < count ? 8 * g + k : count - 1;
                idx[k] = (int64_t)d[at] * L;
            }
            if (g + 1 < groups) { /* the next group's entries, while this one multiplies */
                for (int k = 0; k < 8; k++) {
                    Py_ssize_t at = 8 * (g + 1) + k < count ? 8 * (g + 1) + k : count - 1;
                    const char *e = (const char *)(row + (size_t)d[at] * L);
                    for (int off = 0; off < 8 * L; off += 64)
                        __builtin_prefetch(e + off);
                }
            }
            uint64_t *a = acc + (size_t)g * 8 * L;
            if (i == 0) {
                rf_gather8(a, row, idx, L);
            } else {
                rf_gather8(B, row, idx, L);
                rf_amm8(a, a, B, self->mod52, self->k0, L);
            }
        }
    }
    /* Leave Montgomery form (a product with plain 1 gives a value <= m), then reduce. */
    memset(B, 0, 64 * (size_t)L);
    for (int k = 0; k < 8; k++)
        B[k] = 1;
    for (Py_ssize_t g = 0; g < groups; g++) {
        uint64_t *a = acc + (size_t)g * 8 * L;
        rf_amm8(a, a, B, self->mod52, self->k0, L);
        for (int k = 0; k < 8 && 8 * g + k < count; k++)
            take_lane(dst + (size_t)(8 * g + k) * n * 8, a, k, self->mod, n, L);
    }
    Py_END_ALLOW_THREADS
    free(acc);
    free(B);
    return 0;
}
#else
static int
fill52(TableObject *self, int start, int stop)
{
    return -1; /* unreachable: ifma is never set without RF_IFMA_BUILT */
}

static int
products52(TableObject *self, const uint16_t *digits, Py_ssize_t count, unsigned char *dst)
{
    PyErr_SetString(PyExc_RuntimeError, "this build has no AVX-512 IFMA products");
    return -1;
}
#endif

static PyObject *
Table_fill(TableObject *self, PyObject *args)
{
    int start, stop;
    if (!PyArg_ParseTuple(args, "ii", &start, &stop))
        return NULL;
    if (!self->ready || start < 0 || stop > self->rows || start > stop) {
        PyErr_SetString(PyExc_ValueError, "fill(start, stop) needs 0 <= start <= stop <= rows of an initialised table");
        return NULL;
    }
    mp_size_t n = self->n;
    size_t width = (size_t)1 << self->window;
    if (self->ifma) {
        if (fill52(self, start, stop) < 0)
            return PyErr_NoMemory();
        for (int i = start; i < stop; i++)
            self->filled[i] = 1;
        Py_RETURN_NONE;
    }
    mp_limb_t *t = PyMem_RawMalloc(2 * n * sizeof(mp_limb_t));
    if (!t)
        return PyErr_NoMemory();
    Py_BEGIN_ALLOW_THREADS
    for (int i = start; i < stop; i++) {
        mp_limb_t *row = self->table + (size_t)i * width * n;
        const mp_limb_t *base = self->bases + (size_t)i * n;
        memcpy(row, self->one, n * sizeof(mp_limb_t));
        memcpy(row + n, base, n * sizeof(mp_limb_t));
        for (size_t d = 2; d < width; d++)
            mont_mul(row + d * n, row + (d - 1) * n, base, t, self->mod, n, self->minv);
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(t);
    for (int i = start; i < stop; i++)
        self->filled[i] = 1;
    Py_RETURN_NONE;
}

static PyObject *
Table_products(TableObject *self, PyObject *args)
{
    Py_buffer dig;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*n", &dig, &count))
        return NULL;
    PyObject *out = NULL;
    mp_limb_t *acc = NULL, *t = NULL;
    int *order = NULL, *slots = NULL;
    if (!self->ready) {
        PyErr_SetString(PyExc_ValueError, "uninitialised table");
        goto done;
    }
    for (int i = 0; i < self->rows; i++) {
        if (!self->filled[i]) {
            PyErr_SetString(PyExc_ValueError, "table rows not filled yet (call fill)");
            goto done;
        }
    }
    Py_ssize_t digit_bytes, out_bytes;
    if (count < 0) {
        PyErr_SetString(PyExc_ValueError, "digits must be rows * count little-endian uint16 values");
        goto done;
    }
    if (count > INT_MAX) { /* the counting sort below numbers the batch with ints */
        PyErr_Format(PyExc_OverflowError, "products takes at most %d values per call; got %zd", INT_MAX, count);
        goto done;
    }
    mp_size_t n = self->n;
    if (!size_product(&digit_bytes, "products", count, self->rows, 2) || !size_product(&out_bytes, "products", count, n, 8))
        goto done;
    if (dig.len != digit_bytes) {
        PyErr_SetString(PyExc_ValueError, "digits must be rows * count little-endian uint16 values");
        goto done;
    }
    const uint16_t *digits = dig.buf;
    size_t width = (size_t)1 << self->window;
    for (Py_ssize_t k = 0; k < digit_bytes / 2; k++) {
        if (digits[k] >= width) {
            PyErr_SetString(PyExc_ValueError, "digit out of range for the table's window");
            goto done;
        }
    }
    if (self->ifma) {
        out = PyBytes_FromStringAndSize(NULL, out_bytes);
        if (out && products52(self, digits, count, (unsigned char *)PyBytes_AS_STRING(out)) < 0)
            Py_CLEAR(out);
        goto done;
    }
    out = PyBytes_FromStringAndSize(NULL, out_bytes);
    acc = PyMem_RawMalloc(count ? (size_t)out_bytes : n * sizeof(mp_limb_t));
    t = PyMem_RawMalloc(2 * n * sizeof(mp_limb_t));
    order = PyMem_RawMalloc((size_t)(count ? count : 1) * sizeof(int));
    slots = PyMem_RawMalloc((width + 1) * sizeof(int));
    if (!out || !acc || !t || !order || !slots) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    const mp_limb_t *row0 = self->table;
    for (Py_ssize_t k = 0; k < count; k++)
        memcpy(acc + k * n, row0 + (size_t)digits[k] * n, n * sizeof(mp_limb_t));
    for (int i = 1; i < self->rows; i++) {
        const uint16_t *d = digits + (size_t)i * count;
        const mp_limb_t *row = self->table + (size_t)i * width * n;
        /* Visit the batch in digit order (a counting sort): the row is then streamed
         * through the cache once instead of being read at random. */
        memset(slots, 0, (width + 1) * sizeof(int));
        for (Py_ssize_t k = 0; k < count; k++)
            slots[d[k] + 1]++;
        for (size_t v = 0; v < width; v++)
            slots[v + 1] += slots[v];
        for (Py_ssize_t k = 0; k < count; k++)
            order[slots[d[k]]++] = (int)k;
        for (Py_ssize_t j = 0; j < count; j++) {
            int k = order[j];
            if (d[k])
                mont_mul(acc + (size_t)k * n, acc + (size_t)k * n, row + (size_t)d[k] * n, t, self->mod, n, self->minv);
        }
    }
    for (Py_ssize_t k = 0; k < count; k++) {
        mp_limb_t *a = acc + k * n;
        mont_out(a, a, t, self->mod, n, self->minv);
        for (mp_size_t l = 0; l < n; l++) {
            mp_limb_t v = a[l];
            for (int b = 0; b < 8; b++)
                dst[(k * n + l) * 8 + b] = (unsigned char)(v >> (8 * b));
        }
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_RawFree(acc);
    PyMem_RawFree(t);
    PyMem_RawFree(order);
    PyMem_RawFree(slots);
    PyBuffer_Release(&dig);
    return out;
}

static PyObject *
Table_getstate(TableObject *self, PyObject *Py_UNUSED(ignored))
{
    PyErr_SetString(PyExc_TypeError, "fixed-base tables cannot be pickled (the key holder's hold key material)");
    return NULL;
}

static PyObject *
Table_get_limbs(TableObject *self, void *closure)
{
    return PyLong_FromSsize_t((Py_ssize_t)self->n);
}

static PyObject *
Table_get_window(TableObject *self, void *closure)
{
    return PyLong_FromLong(self->window);
}

static PyObject *
Table_get_rows(TableObject *self, void *closure)
{
    return PyLong_FromLong(self->rows);
}

static PyObject *
Table_get_ifma(TableObject *self, void *closure)
{
    return PyBool_FromLong(self->ifma);
}

static PyObject *
ifma_supported(PyObject *Py_UNUSED(module), PyObject *Py_UNUSED(ignored))
{
    return PyBool_FromLong(rf_ifma_supported());
}

static PyObject *
planes(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer mod_buf, base_buf, exp_buf;
    Py_ssize_t rows, cols;
    int g;
    if (!PyArg_ParseTuple(args, "y*y*y*nni", &mod_buf, &base_buf, &exp_buf, &rows, &cols, &g))
        return NULL;
    PyObject *out = NULL;
    mp_limb_t *mod = NULL, *r2 = NULL, *t = NULL, *bases = NULL, *tables = NULL, *acc = NULL, *total = NULL;
    unsigned char *set = NULL;
    const unsigned char *mb = mod_buf.buf;
    if (!modulus_ok(&mod_buf))
        goto done;
    mp_size_t n = (mp_size_t)((mod_buf.len + 7) / 8);
    size_t width = (size_t)n * 8;
    if (g < 1 || g > 16 || rows < 0 || cols < 0) {
        PyErr_SetString(PyExc_ValueError, "planes needs 1 <= g <= 16 and non-negative rows and columns");
        goto done;
    }
    if (!count_ok(rows, "planes", "rows") || !count_ok(cols, "planes", "columns"))
        goto done;
    Py_ssize_t groups = (rows + g - 1) / g, entries = (Py_ssize_t)1 << g;
    Py_ssize_t base_bytes, n_exps, exp_bytes, bases_bytes, tables_bytes, acc_bytes, out_bytes;
    if (!size_product(&base_bytes, "planes", rows, width, 1) || !size_product(&n_exps, "planes", rows, cols, 1) ||
        !size_product(&exp_bytes, "planes", n_exps, 8, 1) || !size_product(&bases_bytes, "planes", rows + 1, n, 8) ||
        !size_product(&tables_bytes, "planes", groups + 1, entries, n * 8) ||
        !size_product(&acc_bytes, "planes", cols + 1, n, 8) || !size_product(&out_bytes, "planes", cols + 1, width, 1))
        goto done;
    if (base_buf.len != base_bytes || exp_buf.len != exp_bytes) {
        PyErr_SetString(PyExc_ValueError, "planes needs rows bases of the modulus' width and rows * cols int64 exponents");
        goto done;
    }
    const int64_t *exps = exp_buf.buf;
    int64_t top = 0;
    for (Py_ssize_t k = 0; k < n_exps; k++) {
        if (exps[k] < 0) {
            PyErr_SetString(PyExc_ValueError, "planes needs non-negative exponents");
            goto done;
        }
        if (exps[k] > top)
            top = exps[k];
    }
    int bits = 0;
    while (bits < 63 && (top >> bits) != 0)
        bits++;
    mod = PyMem_RawCalloc(n, sizeof(mp_limb_t));
    r2 = PyMem_RawCalloc(n, sizeof(mp_limb_t));
    t = PyMem_RawMalloc(2 * n * sizeof(mp_limb_t));
    bases = PyMem_RawMalloc((size_t)bases_bytes);
    tables = PyMem_RawMalloc((size_t)tables_bytes);
    acc = PyMem_RawMalloc((size_t)acc_bytes);
    total = PyMem_RawMalloc(n * sizeof(mp_limb_t));
    set = PyMem_RawCalloc((size_t)cols + 1, 1);
    out = PyBytes_FromStringAndSize(NULL, out_bytes);
    if (!mod || !r2 || !t || !bases || !tables || !acc || !total || !set || !out) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    limbs_from_bytes(mod, n, mb, mod_buf.len);
    for (Py_ssize_t i = 0; i < rows; i++) {
        limbs_from_bytes(bases + i * n, n, (const unsigned char *)base_buf.buf + i * width, (Py_ssize_t)width);
        if (mpn_cmp(bases + i * n, mod, n) >= 0) {
            Py_CLEAR(out);
            PyErr_SetString(PyExc_ValueError, "planes needs bases reduced modulo the modulus");
            goto done;
        }
    }
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    mp_limb_t inv = 1;
    for (int k = 0; k < 7; k++)
        inv *= 2 - mod[0] * inv;
    mp_limb_t minv = -inv;
    shifted_mod(r2, NULL, 128 * n, mod, n);
    for (Py_ssize_t i = 0; i < rows; i++)
        mont_mul(bases + i * n, bases + i * n, r2, t, mod, n, minv);
    /* Subset products of each group: table[mask] = prod of the members named by mask. */
    int have_total = 0;
    for (Py_ssize_t k = 0; k < groups; k++) {
        mp_limb_t *table = tables + (size_t)k * entries * n;
        Py_ssize_t members = (k + 1) * g <= rows ? g : rows - k * g;
        size_t used = (size_t)1 << members;
        for (size_t mask = 1; mask < used; mask++) {
            size_t low = mask & (~mask + 1);
            int bit = __builtin_ctzl(low);
            const mp_limb_t *c = bases + (k * g + bit) * n;
            if (mask == low)
                memcpy(table + mask * n, c, n * sizeof(mp_limb_t));
            else
                mont_mul(table + mask * n, table + (mask ^ low) * n, c, t, mod, n, minv);
        }
        if (used > 1) {
            if (have_total)
                mont_mul(total, total, table + (used - 1) * n, t, mod, n, minv);
            else
                memcpy(total, table + (used - 1) * n, n * sizeof(mp_limb_t));
            have_total = 1;
        }
    }
    /* Each column, bit plane by bit plane from the top: square, then one product per
     * group whose bits in this plane are not all zero. Groups are the outer loop so one
     * group's table stays in cache while every column reads it. */
    for (int p = bits - 1; p >= 0; p--) {
        for (Py_ssize_t j = 0; j < cols; j++)
            if (set[j])
                mont_mul(acc + j * n, acc + j * n, acc + j * n, t, mod, n, minv);
        for (Py_ssize_t k = 0; k < groups; k++) {
            Py_ssize_t first = k * g;
            Py_ssize_t members = first + g <= rows ? g : rows - first;
            const mp_limb_t *table = tables + (size_t)k * entries * n;
            for (Py_ssize_t j = 0; j < cols; j++) {
                size_t mask = 0;
                for (Py_ssize_t i = 0; i < members; i++)
                    mask |= (size_t)((exps[(first + i) * cols + j] >> p) & 1) << i;
                if (!mask)
                    continue;
                mp_limb_t *a = acc + j * n;
                if (set[j]) {
                    mont_mul(a, a, table + mask * n, t, mod, n, minv);
                } else {
                    memcpy(a, table + mask * n, n * sizeof(mp_limb_t));
                    set[j] = 1;
                }
            }
        }
    }
    /* Leave Montgomery form; an empty product is 1. */
    for (Py_ssize_t j = 0; j <= cols; j++) {
        mp_limb_t *a = j < cols ? acc + j * n : total;
        int present = j < cols ? set[j] : have_total;
        if (present) {
            mont_out(a, a, t, mod, n, minv);
        } else {
            memset(a, 0, n * sizeof(mp_limb_t));
            a[0] = 1;
        }
        limbs_to_bytes(dst + (size_t)j * width, a, n);
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_RawFree(mod);
    PyMem_RawFree(r2);
    PyMem_RawFree(t);
    PyMem_RawFree(bases);
    PyMem_RawFree(tables);
    PyMem_RawFree(acc);
    PyMem_RawFree(total);
    PyMem_RawFree(set);
    PyBuffer_Release(&mod_buf);
    PyBuffer_Release(&base_buf);
    PyBuffer_Release(&exp_buf);
    return out;
}


/* affine(modulus, fresh, u, v, s, t, rows): fresh_i * u_i^s_i * v_i^t_i mod m for each
 * row (v and t may be empty: one term), with short non-negative exponents, on AVX-512
 * IFMA eight rows at a time: the two powers share their squarings (Shamir's trick).
 * This is the bank's residual, riskfed.crypto.paillier.affine. */
static PyObject *
affine(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer mod_buf, fresh_buf, u_buf, v_buf, s_buf, t_buf;
    Py_ssize_t rows;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*n", &mod_buf, &fresh_buf, &u_buf, &v_buf, &s_buf, &t_buf, &rows))
        return NULL;
    PyObject *out = NULL;
#if RF_IFMA_BUILT
    uint64_t *buf = NULL;
    mp_size_t n;
    int L;
    mp_limb_t *mod = ifma_modulus(&mod_buf, "affine", &n, &L);
    if (mod == NULL)
        goto done;
    size_t width = (size_t)n * 8;
    int two = v_buf.len > 0;
    Py_ssize_t res_bytes, exp_bytes;
    if (!count_ok(rows, "affine", "rows") || !size_product(&res_bytes, "affine", rows, width, 1) ||
        !size_product(&exp_bytes, "affine", rows, 8, 1))
        goto done;
    if (fresh_buf.len != res_bytes || u_buf.len != res_bytes || (two && v_buf.len != res_bytes) ||
        s_buf.len != exp_bytes || t_buf.len != (two ? exp_bytes : 0)) {
        PyErr_SetString(PyExc_ValueError, "affine needs rows residues of the modulus' width per vector and rows int64 exponents per term");
        goto done;
    }
    const int64_t *se = s_buf.buf, *te = t_buf.buf;
    for (Py_ssize_t i = 0; i < rows; i++) {
        if (se[i] < 0 || (two && te[i] < 0)) {
            PyErr_SetString(PyExc_ValueError, "affine needs non-negative exponents");
            goto done;
        }
    }
    if (!all_reduced(fresh_buf.buf, rows, mod, n, "affine") || !all_reduced(u_buf.buf, rows, mod, n, "affine") ||
        (two && !all_reduced(v_buf.buf, rows, mod, n, "affine")))
        goto done;
    buf = vectors(10, L);
    out = PyBytes_FromStringAndSize(NULL, res_bytes);
    if (!buf || !out) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    uint64_t *N = buf, *one = buf + 8 * L, *r2 = buf + 16 * L, *U = buf + 24 * L, *V = buf + 32 * L,
             *UV = buf + 40 * L, *F = buf + 48 * L, *acc = buf + 56 * L, *fresh = buf + 64 * L;
    uint64_t k0 = montgomery_consts(N, one, r2, NULL, mod, n, L);
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t g0 = 0; g0 < rows; g0 += 8) {
        int lanes = rows - g0 < 8 ? (int)(rows - g0) : 8;
        int64_t top = 0;
        for (int k = 0; k < 8; k++) {
            Py_ssize_t i = g0 + (k < lanes ? k : lanes - 1);
            put_lane(fresh, k, (const unsigned char *)fresh_buf.buf + i * width, n, L);
            put_lane(U, k, (const unsigned char *)u_buf.buf + i * width, n, L);
            if (two)
                put_lane(V, k, (const unsigned char *)v_buf.buf + i * width, n, L);
            top |= se[i] | (two ? te[i] : 0);
        }
        rf_amm8(U, U, r2, N, k0, L); /* into Montgomery form */
        if (two) {
            rf_amm8(V, V, r2, N, k0, L);
            rf_amm8(UV, U, V, N, k0, L);
        }
        memcpy(acc, one, 64 * (size_t)L);
        int bits = 0;
        while (bits < 63 && (top >> bits) != 0)
            bits++;
        for (int b = bits - 1; b >= 0; b--) {
            if (b < bits - 1)
                rf_amm8(acc, acc, acc, N, k0, L);
            unsigned ms = 0, mt = 0;
            for (int k = 0; k < 8; k++) {
                Py_ssize_t i = g0 + (k < lanes ? k : lanes - 1);
                ms |= (unsigned)((se[i] >> b) & 1) << k;
                if (two)
                    mt |= (unsigned)((te[i] >> b) & 1) << k;
            }
            if (ms | mt) {
                rf_select8(F, one, U, two ? V : one, two ? UV : U, ms, mt, L);
                rf_amm8(acc, acc, F, N, k0, L);
            }
        }
        /* times the plain fresh encryption: leaves Montgomery form in the same product */
        rf_amm8(acc, acc, fresh, N, k0, L);
        for (int k = 0; k < lanes; k++)
            take_lane(dst + (size_t)(g0 + k) * width, acc, k, mod, n, L);
    }
    Py_END_ALLOW_THREADS
done:
    free(buf);
    PyMem_RawFree(mod);
#else
    PyErr_SetString(PyExc_ValueError, "affine needs a CPU with AVX-512 IFMA");
#endif
    PyBuffer_Release(&mod_buf);
    PyBuffer_Release(&fresh_buf);
    PyBuffer_Release(&u_buf);
    PyBuffer_Release(&v_buf);
    PyBuffer_Release(&s_buf);
    PyBuffer_Release(&t_buf);
    return out;
}

/* windows(modulus, bases, exponents, rows, cols, w): prod_i bases[i]^exps[i][j] mod m for
 * every column j (non-negative int64 exponents), then prod_i bases[i]; on AVX-512 IFMA.
 * Window buckets (Pippenger) with eight lanes per vector, each lane one (column, digit
 * position) pair: every row's base is multiplied into one bucket per lane, the buckets of
 * a lane fold into prod_d B_d^d with a running product, and each column joins its digit
 * positions with w squarings each. All lanes share the row's base, so a product costs
 * one gather and one scatter of the lanes' buckets. This is the encrypted gradient
 * X^T [[e]] of riskfed.crypto.multiexp. */
static PyObject *
windows(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer mod_buf, base_buf, exp_buf;
    Py_ssize_t rows, cols;
    int w;
    if (!PyArg_ParseTuple(args, "y*y*y*nni", &mod_buf, &base_buf, &exp_buf, &rows, &cols, &w))
        return NULL;
    PyObject *out = NULL;
#if RF_IFMA_BUILT
    uint64_t *consts = NULL, *cm = NULL, *buckets = NULL, *items = NULL, *x = NULL, *y = NULL, *tot = NULL;
    unsigned char *touched = NULL;
    mp_size_t n;
    int L;
    mp_limb_t *mod = ifma_modulus(&mod_buf, "windows", &n, &L);
    if (mod == NULL)
        goto done;
    size_t width = (size_t)n * 8;
    if (w < 1 || w > 12 || rows < 0 || cols < 0) {
        PyErr_SetString(PyExc_ValueError, "windows needs 1 <= w <= 12 and rows, cols >= 0");
        goto done;
    }
    Py_ssize_t base_bytes, n_exps, exp_bytes, out_bytes, cm_bytes;
    if (!count_ok(rows, "windows", "rows") || !count_ok(cols, "windows", "columns") ||
        !size_product(&base_bytes, "windows", rows, width, 1) || !size_product(&n_exps, "windows", rows, cols, 1) ||
        !size_product(&exp_bytes, "windows", n_exps, 8, 1) || !size_product(&out_bytes, "windows", cols + 1, width, 1) ||
        !size_product(&cm_bytes, "windows", rows + 1, L, sizeof(uint64_t)))
        goto done;
    if (base_buf.len != base_bytes || exp_buf.len != exp_bytes) {
        PyErr_SetString(PyExc_ValueError, "windows needs rows bases of the modulus' width and rows * cols int64 exponents");
        goto done;
    }
    const int64_t *exps = exp_buf.buf;
    int64_t top = 0;
    for (Py_ssize_t k = 0; k < n_exps; k++) {
        if (exps[k] < 0) {
            PyErr_SetString(PyExc_ValueError, "windows needs non-negative exponents");
            goto done;
        }
        top |= exps[k];
    }
    if (!all_reduced(base_buf.buf, rows, mod, n, "windows"))
        goto done;
    int bits = 0;
    while (bits < 63 && (top >> bits) != 0)
        bits++;
    int K = bits ? (bits + w - 1) / w : 1;           /* digit positions */
    Py_ssize_t n_items, items_bytes;
    if (!size_product(&n_items, "windows", cols, K, 1) || !size_product(&items_bytes, "windows", n_items + 8, L, sizeof(uint64_t)))
        goto done;
    Py_ssize_t groups = (n_items + 7) / 8;
    size_t width_b = (size_t)1 << w;
    out = PyBytes_FromStringAndSize(NULL, out_bytes);
    if (!out)
        goto done;
    consts = vectors(4, L);                             /* N, one, r2, plain 1 */
    cm = PyMem_RawMalloc((size_t)cm_bytes);
    if (posix_memalign((void **)&buckets, 64, width_b * 64 * (size_t)L) != 0)
        buckets = NULL;
    items = PyMem_RawMalloc((size_t)items_bytes);
    x = vectors(1, L);
    y = vectors(1, L);
    tot = vectors(1, L);
    touched = PyMem_RawMalloc(width_b);
    if (!consts || !cm || !buckets || !items || !x || !y || !tot || !touched) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    uint64_t *N = consts, *one = consts + 8 * L, *r2 = consts + 16 * L, *plain1 = consts + 24 * L;
    uint64_t k0 = montgomery_consts(N, one, r2, plain1, mod, n, L);
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    Py_BEGIN_ALLOW_THREADS
    /* Bases into Montgomery form, eight at a time, kept one after another (L limbs each);
     * their product, lane by lane, in tot. */
    memcpy(tot, one, 64 * (size_t)L);
    for (Py_ssize_t g0 = 0; g0 < rows; g0 += 8) {
        int lanes = rows - g0 < 8 ? (int)(rows - g0) : 8;
        for (int k = 0; k < 8; k++) {
            if (k < lanes) {
                put_lane(x, k, (const unsigned char *)base_buf.buf + (g0 + k) * width, n, L);
            } else {
                for (int l = 0; l < L; l++)
                    x[8 * l + k] = 0;
                x[k] = 1; /* plain 1: its Montgomery form is the product's neutral element */
            }
        }
        rf_amm8(x, x, r2, N, k0, L);
        rf_amm8(tot, tot, x, N, k0, L);
        for (int k = 0; k < lanes; k++)
            for (int l = 0; l < L; l++)
                cm[(size_t)(g0 + k) * L + l] = x[8 * l + k];
    }
    /* Buckets, eight (column, position) pairs at a time. */
    int64_t idx[8];
    Py_ssize_t col[8];
    int shift[8];
    for (Py_ssize_t g = 0; g < groups; g++) {
        for (int k = 0; k < 8; k++) {
            Py_ssize_t item = 8 * g + k < n_items ? 8 * g + k : n_items - 1;
            col[k] = item / K;
            shift[k] = w * (int)(item % K);
        }
        for (size_t d = 0; d < width_b; d++)
            memcpy(buckets + d * 8 * L, one, 64 * (size_t)L);
        memset(touched, 0, width_b);
        for (Py_ssize_t i = 0; i < rows; i++) {
            int any = 0;
            for (int k = 0; k < 8; k++) {
                int64_t d = (exps[i * cols + col[k]] >> shift[k]) & (int64_t)(width_b - 1);
                idx[k] = d * 8 * L + k;
                touched[d] = 1;
                any |= d != 0;
            }
            if (!any)
                continue;
            rf_gather_slots(x, buckets, idx, L);
            rf_amm8_1(x, x, cm + (size_t)i * L, N, k0, L);
            rf_scatter_slots(buckets, x, idx, L);
        }
        /* prod_d B_d^d = prod_d (B_top ... B_d): a running product from the top bucket */
        size_t d = width_b - 1;
        while (d > 0 && !touched[d])
            d--;
        memcpy(x, one, 64 * (size_t)L); /* running */
        memcpy(y, one, 64 * (size_t)L); /* acc */
        if (d > 0) {
            memcpy(x, buckets + d * 8 * L, 64 * (size_t)L);
            memcpy(y, x, 64 * (size_t)L);
            for (d = d - 1; d > 0; d--) {
                if (touched[d])
                    rf_amm8(x, x, buckets + d * 8 * L, N, k0, L);
                rf_amm8(y, y, x, N, k0, L);
            }
        }
        for (int k = 0; k < 8 && 8 * g + k < n_items; k++)
            for (int l = 0; l < L; l++)
                items[(size_t)(8 * g + k) * L + l] = y[8 * l + k];
    }
    /* Join each column's positions, eight columns at a time: from the top position,
     * w squarings then a product. */
    for (Py_ssize_t c0 = 0; c0 < cols; c0 += 8) {
        int lanes = cols - c0 < 8 ? (int)(cols - c0) : 8;
        for (int p = K - 1; p >= 0; p--) {
            for (int k = 0; k < 8; k++) {
                Py_ssize_t c = c0 + (k < lanes ? k : lanes - 1);
                const uint64_t *src = items + (size_t)(c * K + p) * L;
                for (int l = 0; l < L; l++)
                    buckets[8 * l + k] = src[l];
            }
            if (p == K - 1) {
                memcpy(x, buckets, 64 * (size_t)L);
            } else {
                for (int s = 0; s < w; s++)
                    rf_amm8(x, x, x, N, k0, L);
                rf_amm8(x, x, buckets, N, k0, L);
            }
        }
        rf_amm8(x, x, plain1, N, k0, L); /* leave Montgomery form */
        for (int k = 0; k < lanes; k++)
            take_lane(dst + (size_t)(c0 + k) * width, x, k, mod, n, L);
    }
    /* The product of all bases: join tot's eight lanes. */
    rf_amm8(tot, tot, plain1, N, k0, L);
    {
        mpz_t M, T, V;
        mpz_inits(M, T, V, NULL);
        mpz_import(M, n, -1, sizeof(mp_limb_t), 0, 0, mod);
        mpz_set_ui(T, 1);
        unsigned char *lane_bytes = dst + (size_t)cols * width;
        for (int k = 0; k < 8; k++) {
            take_lane(lane_bytes, tot, k, mod, n, L);
            mpz_import(V, width, -1, 1, 0, 0, lane_bytes);
            mpz_mul(T, T, V);
            mpz_mod(T, T, M);
        }
        mp_limb_t res[2 * RF_MAX_L52];
        memset(res, 0, sizeof(res));
        mpz_export(res, NULL, -1, sizeof(mp_limb_t), 0, 0, T);
        limbs_to_bytes(lane_bytes, res, n);
        mpz_clears(M, T, V, NULL);
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_RawFree(mod);
    free(consts);
    PyMem_RawFree(cm);
    free(buckets);
    PyMem_RawFree(items);
    free(x);
    free(y);
    free(tot);
    PyMem_RawFree(touched);
#else
    PyErr_SetString(PyExc_ValueError, "windows needs a CPU with AVX-512 IFMA");
#endif
    PyBuffer_Release(&mod_buf);
    PyBuffer_Release(&base_buf);
    PyBuffer_Release(&exp_buf);
    return out;
}

/* pack(modulus, ciphertexts, count, per, slot_bits): prod_j c_j^(2^(slot_bits*j)) for
 * each run of `per` consecutive ciphertexts (the last run may be shorter), by Horner's
 * rule on AVX-512 IFMA with one run per lane: slot_bits squarings and a product per
 * packed value. The parties' packing of masked gradients (riskfed.crypto.paillier.pack);
 * it pays when there are several runs to fill the lanes (a wide party's hundreds of
 * gradient values). */
static PyObject *
pack(PyObject *Py_UNUSED(module), PyObject *args)
{
    Py_buffer mod_buf, ct_buf;
    Py_ssize_t count, per;
    int slot_bits;
    if (!PyArg_ParseTuple(args, "y*y*nni", &mod_buf, &ct_buf, &count, &per, &slot_bits))
        return NULL;
    PyObject *out = NULL;
#if RF_IFMA_BUILT
    uint64_t *consts = NULL, *acc = NULL, *x = NULL;
    mp_size_t n;
    int L;
    mp_limb_t *mod = ifma_modulus(&mod_buf, "pack", &n, &L);
    if (mod == NULL)
        goto done;
    size_t width = (size_t)n * 8;
    if (count < 0 || per < 1 || slot_bits < 0 || slot_bits > 1 << 16) {
        PyErr_SetString(PyExc_ValueError, "pack needs count >= 0, per >= 1 and 0 <= slot_bits <= 65536");
        goto done;
    }
    Py_ssize_t ct_bytes;
    if (!count_ok(count, "pack", "ciphertexts") || !size_product(&ct_bytes, "pack", count, width, 1))
        goto done;
    if (ct_buf.len != ct_bytes) {
        PyErr_SetString(PyExc_ValueError, "pack needs count residues of the modulus' width");
        goto done;
    }
    if (!all_reduced(ct_buf.buf, count, mod, n, "pack"))
        goto done;
    /* A run longer than the values is one run of them all: its slots past the last value
     * multiply by nothing, so the loops below need not walk them. */
    if (per > count)
        per = count > 0 ? count : 1;
    Py_ssize_t runs = (count + per - 1) / per;
    consts = vectors(4, L); /* N, one, r2, plain 1 */
    acc = vectors(1, L);
    x = vectors(1, L);
    out = PyBytes_FromStringAndSize(NULL, runs * (Py_ssize_t)width); /* at most count * width */
    if (!consts || !acc || !x || !out) {
        Py_CLEAR(out);
        PyErr_NoMemory();
        goto done;
    }
    uint64_t *N = consts, *one = consts + 8 * L, *r2 = consts + 16 * L, *plain1 = consts + 24 * L;
    uint64_t k0 = montgomery_consts(N, one, r2, plain1, mod, n, L);
    unsigned char *dst = (unsigned char *)PyBytes_AS_STRING(out);
    const unsigned char *src = ct_buf.buf;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r0 = 0; r0 < runs; r0 += 8) {
        int lanes = runs - r0 < 8 ? (int)(runs - r0) : 8;
        memcpy(acc, one, 64 * (size_t)L);
        /* From the top slot down: lanes whose run is shorter multiply by 1 until their
         * run starts (1 squared stays 1). */
        for (Py_ssize_t t = per - 1; t >= 0; t--) {
            int any = 0;
            memcpy(x, plain1, 64 * (size_t)L); /* plain 1 -> Montgomery one below */
            for (int k = 0; k < lanes; k++) {
                Py_ssize_t i = (r0 + k) * per + t;
                if (i < count && t < per) {
                    put_lane(x, k, src + i * width, n, L);
                    any = 1;
                }
            }
            if (!any)
                continue;
            if (t < per - 1)
                for (int s = 0; s < slot_bits; s++)
                    rf_amm8(acc, acc, acc, N, k0, L);
            rf_amm8(x, x, r2, N, k0, L); /* into Montgomery form */
            rf_amm8(acc, acc, x, N, k0, L);
        }
        rf_amm8(acc, acc, plain1, N, k0, L);
        for (int k = 0; k < lanes; k++)
            take_lane(dst + (size_t)(r0 + k) * width, acc, k, mod, n, L);
    }
    Py_END_ALLOW_THREADS
done:
    PyMem_RawFree(mod);
    free(consts);
    free(acc);
    free(x);
#else
    PyErr_SetString(PyExc_ValueError, "pack needs a CPU with AVX-512 IFMA");
#endif
    PyBuffer_Release(&mod_buf);
    PyBuffer_Release(&ct_buf);
    return out;
}

static PyMethodDef module_methods[] = {
    {"pack", (PyCFunction)pack, METH_VARARGS,
     "pack(modulus, ciphertexts, count, per, slot_bits) -> bytes: prod_j c_j^(2^(slot_bits*j)) per run of per "
     "ciphertexts (AVX-512 IFMA only; releases the GIL)."},
    {"windows", (PyCFunction)windows, METH_VARARGS,
     "windows(modulus, bases, exponents, rows, cols, w) -> bytes: cols products prod_i bases[i]^exps[i][j] "
     "and then prod_i bases[i], each little-endian at the modulus' width (AVX-512 IFMA only; releases the GIL)."},
    {"affine", (PyCFunction)affine, METH_VARARGS,
     "affine(modulus, fresh, u, v, s, t, rows) -> bytes: fresh_i * u_i^s_i * v_i^t_i mod m per row "
     "(v, t empty for one term; AVX-512 IFMA only; releases the GIL)."},
    {"ifma_supported", (PyCFunction)ifma_supported, METH_NOARGS,
     "ifma_supported() -> bool: this build and CPU can run the AVX-512 IFMA products."},
    {"planes", (PyCFunction)planes, METH_VARARGS,
     "planes(modulus, bases, exponents, rows, cols, g) -> bytes: cols products prod_i bases[i]^exps[i][j] "
     "and then prod_i bases[i], each little-endian at the modulus' width (releases the GIL)."},
    {NULL, NULL, 0, NULL},
};

static PyMethodDef Table_methods[] = {
    {"fill", (PyCFunction)Table_fill, METH_VARARGS,
     "fill(start, stop): build table rows start..stop-1 (releases the GIL)."},
    {"products", (PyCFunction)Table_products, METH_VARARGS,
     "products(digits: bytes of rows*count uint16, count) -> bytes: count residues, little-endian, limbs*8 bytes each."},
    {"__reduce__", (PyCFunction)Table_getstate, METH_NOARGS, "Tables cannot be pickled."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Table_getset[] = {
    {"limbs", (getter)Table_get_limbs, NULL, "64-bit limbs per residue", NULL},
    {"window", (getter)Table_get_window, NULL, "bits per digit", NULL},
    {"rows", (getter)Table_get_rows, NULL, "digits per exponent", NULL},
    {"ifma", (getter)Table_get_ifma, NULL, "whether the products run on AVX-512 IFMA (see _ifma.h)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TableType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "riskfed.crypto._native.Table",
    .tp_basicsize = sizeof(TableObject),
    .tp_dealloc = (destructor)Table_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Fixed-base window table in Montgomery form (see the module source).",
    .tp_methods = Table_methods,
    .tp_getset = Table_getset,
    .tp_init = (initproc)Table_init,
    .tp_new = PyType_GenericNew,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native", "riskfed's C kernels on GMP's mpn layer (see the source).", -1, module_methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&TableType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&TableType);
    if (PyModule_AddObject(m, "Table", (PyObject *)&TableType) < 0) {
        Py_DECREF(&TableType);
        Py_DECREF(m);
        return NULL;
    }
    /* The largest moduli the kernels take: IFMA ones (tables, windows, affine, pack) and
     * GMP ones (tables, planes). */
    if (PyModule_AddIntConstant(m, "IFMA_MAX_BITS", RF_IFMA_MAX_BITS) < 0 ||
        PyModule_AddIntConstant(m, "MAX_MODULUS_BITS", 8 * RF_MAX_MODULUS_BYTES) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
