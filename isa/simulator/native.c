/* The simulator's fused datapaths in C: one pass over the data where the numpy path makes several.
 *
 * Optional (setup.py builds it when a C compiler is there; native.py falls back to numpy without
 * it).  Plain CPython API and the buffer protocol: no numpy headers at build time.  Every kernel
 * takes strided views (numpy arrays) and computes exactly what the numpy path computes; the rules
 * (the requantizer's rounding and saturation, RNE to bf16 with the canonical NaN) are specified in
 * ir/numerics, and tests/isa/test_native.py ties each kernel to them at the extremes.  Built with
 * -ffp-contract=off and without -ffast-math: every float operation is the IEEE one numpy does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_DIMS 8

/* A strided view of a buffer: ``ndim`` extents and byte strides. */
typedef struct {
    Py_buffer view;
    int held;
} Held;

/* ``obj``'s buffer, of ``itemsize``-byte items (0: 1- or 4-byte ones, -1: 4- or 8-byte ones, -2: 1-,
 * 2-, 4- or 8-byte ones, -3: 1- or 2-byte ones). */
static int get_view(PyObject *obj, Held *h, int writable, Py_ssize_t itemsize, const char *what) {
    h->held = 0;
    if (PyObject_GetBuffer(obj, &h->view, PyBUF_RECORDS_RO | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    h->held = 1;
    Py_ssize_t size = h->view.itemsize;
    static const char *const choices[] = {"1- or 4", "4- or 8", "1-, 2-, 4- or 8", "1- or 2"};
    int fits = itemsize > 0    ? size == itemsize
               : itemsize == 0  ? size == 1 || size == 4
               : itemsize == -1 ? size == 4 || size == 8
               : itemsize == -2 ? size == 1 || size == 2 || size == 4 || size == 8
                                : size == 1 || size == 2;
    if (!fits || h->view.ndim < 1 || h->view.ndim > MAX_DIMS) {
        char sizes[16];
        snprintf(sizes, sizeof sizes, "%s", itemsize <= 0 ? choices[-itemsize] : "");
        if (itemsize > 0) snprintf(sizes, sizeof sizes, "%zd", itemsize);
        PyErr_Format(PyExc_ValueError, "%s: %zd-byte items in %d dimensions (expected %s-byte items, 1-%d)", what,
                     size, h->view.ndim, sizes, MAX_DIMS);
        return -1;
    }
    return 0;
}

static void release(Held *h) {
    if (h->held) PyBuffer_Release(&h->view);
    h->held = 0;
}

static int same_shape(const Py_buffer *a, const Py_buffer *b, const char *what) {
    if (a->ndim == b->ndim) {
        int i;
        for (i = 0; i < a->ndim; i++)
            if (a->shape[i] != b->shape[i]) break;
        if (i == a->ndim) return 0;
    }
    PyErr_Format(PyExc_ValueError, "%s: shapes differ", what);
    return -1;
}

/* Odometer over all axes but the last: ``offset(view, index)`` of the leading index. */
static Py_ssize_t leading_count(const Py_buffer *v) {
    Py_ssize_t n = 1;
    for (int i = 0; i < v->ndim - 1; i++) n *= v->shape[i];
    return n;
}

static Py_ssize_t offset_of(const Py_buffer *v, const Py_ssize_t *index) {
    Py_ssize_t off = 0;
    for (int i = 0; i < v->ndim - 1; i++) off += index[i] * v->strides[i];
    return off;
}

static void advance(const Py_buffer *v, Py_ssize_t *index) {
    for (int i = v->ndim - 2; i >= 0; i--) {
        if (++index[i] < v->shape[i]) return;
        index[i] = 0;
    }
}

/* --- requantization ------------------------------------------------------------------------ */

enum { HALF_EVEN = 0, HALF_UP = 1, HALF_AWAY = 2, FLOOR = 3 };
#define PRODUCT_MAX ((INT64_C(1) << 62) - 1) /* |v * multiplier| and the centred input's bound */

/* Function versions for the CPU the process runs on (AVX-512 and AVX2 lanes of int64 where there
 * are, resolved once at load), where the compiler can. */
#if defined(__x86_64__) && defined(__GNUC__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define CLONES __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#endif
#endif
#ifndef CLONES
#define CLONES
#endif

/* The per-channel parameters of a requantization and its scalars. */
typedef struct {
    const int64_t *bias, *mult, *bound; /* bound: |v| <= bound <=> |v * mult| <= PRODUCT_MAX */
    const int64_t *shift, *half;        /* the row's shifts (its row shift added, at most 63) and 2**shift / 2 */
    int64_t src_zp, d_bound, pre_shift, zp, qmin, qmax;
} Stage;

/* The row's shifts: min(shift + extra, 63) and half of 2**that (0 for shift 0), per channel (a
 * shifted constant in the lanes' loop keeps the compiler from vectorizing it). */
static void row_shifts(Stage *st, const int64_t *shift, Py_ssize_t n, int64_t extra) {
    int64_t *shifts = (int64_t *)st->shift, *halves = (int64_t *)st->half; /* the caller's scratch */
    for (Py_ssize_t c = 0; c < n; c++) {
        int64_t s = shift[c] + extra;
        s = s < 63 ? s : 63;
        shifts[c] = s;
        halves[c] = s ? INT64_C(1) << (s - 1) : 0;
    }
}

/* round(p / 2**s) for |p| < 2**62 and s in [0, 63] (integer.rounding_right_shift), without branches:
 * half = 2**s / 2 (0 for s = 0), one = 1 if s > 0.  half_up is floor((p + half) / 2**s); half_even
 * adds half - 1 plus the floor quotient's low bit, which tips exact ties to even; half_away rounds
 * |p| half up and puts the sign back; floor is the arithmetic shift.  Nothing wraps: |p| + 2**62 < 2**63. */
#define ROUND_HALF_EVEN(p, s, half, one) (((p) + (half) - (one) + (((p) >> (s)) & (one))) >> (s))
#define ROUND_HALF_UP(p, s, half, one) (((p) + (half)) >> (s))
#define ROUND_HALF_AWAY(p, s, half, one) \
    ((p) < 0 ? -((((p) < 0 ? -(p) : (p)) + (half)) >> (s)) : (((p) < 0 ? -(p) : (p)) + (half)) >> (s))
#define ROUND_FLOOR(p, s, half, one) ((p) >> (s))

/* The stage on ``n`` contiguous lanes of one row (lane c: channel AT = c, or every lane channel
 * AT = 0: one set of parameters), with the row's shifts; nonzero where the spec refuses some lane
 * (the results are then garbage: the caller discards them). */
#define REQUANT_LANES(NAME, IN, OUT, ROUND, AT)                                                      \
    CLONES static int NAME(const IN *restrict x, OUT *restrict out, Py_ssize_t n, const Stage *st) { \
        const int64_t *restrict bias = st->bias, *restrict mult = st->mult, *restrict bound = st->bound; \
        const int64_t *restrict shift = st->shift, *restrict halves = st->half;                      \
        const int64_t src_zp = st->src_zp, d_bound = st->d_bound, pre_shift = st->pre_shift, zp = st->zp; \
        const int64_t qmin = st->qmin, qmax = st->qmax;                                              \
        int64_t bad = 0;                                                                             \
        for (Py_ssize_t c = 0; c < n; c++) {                                                         \
            int64_t d = (int64_t)x[c] - src_zp;                                                      \
            int64_t v = (int64_t)((uint64_t)d << pre_shift) + bias[AT]; /* garbage only where bad */ \
            bad |= (d > d_bound) | (d < -d_bound) | (v > bound[AT]) | (v < -bound[AT]);              \
            int64_t p = v * mult[AT];                                                                \
            int64_t s = shift[AT], half = halves[AT], one = s > 0;                                   \
            (void)one, (void)half;                                                                   \
            int64_t q = ROUND(p, s, half, one) + zp;                                                 \
            q = q < qmin ? qmin : q;                                                                 \
            q = q > qmax ? qmax : q;                                                                 \
            out[c] = (OUT)q;                                                                         \
        }                                                                                            \
        return bad != 0;                                                                             \
    }

#define REQUANT_MODES(IN, OUT, SUFFIX, AT)                                      \
    REQUANT_LANES(requant_even_##SUFFIX, IN, OUT, ROUND_HALF_EVEN, AT)          \
    REQUANT_LANES(requant_up_##SUFFIX, IN, OUT, ROUND_HALF_UP, AT)              \
    REQUANT_LANES(requant_away_##SUFFIX, IN, OUT, ROUND_HALF_AWAY, AT)          \
    REQUANT_LANES(requant_floor_##SUFFIX, IN, OUT, ROUND_FLOOR, AT)

REQUANT_MODES(int32_t, int8_t, 32_8, c)
REQUANT_MODES(int32_t, int32_t, 32_32, c)
REQUANT_MODES(int8_t, int8_t, 8_8, c)
REQUANT_MODES(int8_t, int32_t, 8_32, c)
REQUANT_MODES(int32_t, int8_t, 32_8_uniform, 0)
REQUANT_MODES(int32_t, int32_t, 32_32_uniform, 0)
REQUANT_MODES(int8_t, int8_t, 8_8_uniform, 0)
REQUANT_MODES(int8_t, int32_t, 8_32_uniform, 0)

typedef int (*LanesKernel)(const void *, void *, Py_ssize_t, const Stage *);
#define KERNELS(SUFFIX)                                                                                   \
    {(LanesKernel)requant_even_##SUFFIX, (LanesKernel)requant_up_##SUFFIX, (LanesKernel)requant_away_##SUFFIX, \
     (LanesKernel)requant_floor_##SUFFIX}
/* [uniform][int32 in][int32 out][mode] */
static const LanesKernel requant_kernels[2][2][2][4] = {
    {{KERNELS(8_8), KERNELS(8_32)}, {KERNELS(32_8), KERNELS(32_32)}},
    {{KERNELS(8_8_uniform), KERNELS(8_32_uniform)}, {KERNELS(32_8_uniform), KERNELS(32_32_uniform)}}};

/* requant(x, out, table, src_zp, pre_shift, zp, qmin, qmax, mode, row_shift, row_shift_max) -> bool
 *
 * The requantization unit's stage on int32 (4-byte) or int8 (1-byte) ``x`` into int8 or int32
 * ``out`` (same shape, the channels along the last axis):
 *   v = (x - src_zp) * 2**pre_shift + bias[c];  out = clamp(round(v * mult[c] / 2**min(shift[c] + row, 63)) + zp)
 * in int64, rounded in ``mode`` (integer.ROUNDING_MODES' order).  ``table``: contiguous int64
 * (TABLE_ROWS, channels) made by native.requant_parameters (a division per channel is too slow to
 * repeat on every call): bias, multiplier, bound = (2**62 - 1) // max(multiplier, 1), shift, and
 * the shift's min(shift, 63) and half of 2**that; one column for every channel alike.  ``row_shift`` (None, or int8 with x's leading
 * shape) adds a shift per row.  Returns False, having written garbage, where the spec module
 * refuses (a negative multiplier or shift, a row shift outside [0, row_shift_max], pre_shift
 * outside [0, 62], |x - src_zp| << pre_shift plus the largest |bias| at 2**62 or more:
 * centre_and_shift; |v * mult| at 2**62 or more: multiply_by_quantized_multiplier): the caller
 * then runs the numpy path, which raises the spec's error. */
enum { BIAS, MULT, BOUND, SHIFT, SHIFT63, HALF, TABLE_ROWS };

/* requant_wide's lanes: the stage without per-lane checks, where no lane can be refused. */
typedef void (*WideKernel)(const int32_t *, void *, Py_ssize_t, const Stage *);

/* A checked requantization: its views (x, out, table, row shifts), stage, kernel and scratch; ``ok``
 * false where the parameters alone make the spec refuse (a run then returns False). */
typedef struct {
    Held x, o, r, t;
    Stage st;
    const int64_t *shift; /* the table's shifts (row shifts are added to them) */
    LanesKernel kernel;
    WideKernel wide; /* (a requant step's, where no lane can be refused: requant_wide's proof) */
    Py_ssize_t cols, channels;
    int contiguous, ok, row_shift_max;
    void *scratch;
    char *xrow, *orow;
} RequantCall;

static void requant_release(RequantCall *k) {
    PyMem_Free(k->scratch);
    k->scratch = NULL;
    release(&k->x);
    release(&k->o);
    release(&k->r);
    release(&k->t);
}

/* requant's operands held and checked into ``k`` (zeroed first); -1 with an exception set. */
static int requant_setup(RequantCall *k, PyObject *xo, PyObject *oo, PyObject *to, long long src_zp, int pre_shift,
                         long long zp, long long qmin, long long qmax, int mode, PyObject *ro, int row_shift_max) {
    memset(k, 0, sizeof *k);
    k->row_shift_max = row_shift_max;
    if (get_view(xo, &k->x, 0, 0, "x") < 0 || get_view(oo, &k->o, 1, 0, "out") < 0 ||
        same_shape(&k->x.view, &k->o.view, "requant out") < 0 || get_view(to, &k->t, 0, 8, "table") < 0)
        return -1;
    const Py_buffer *x = &k->x.view, *o = &k->o.view, *t = &k->t.view;
    int nd = x->ndim;
    Py_ssize_t cols = x->shape[nd - 1], channels = t->ndim == 2 ? t->shape[1] : -1;
    if (t->ndim != 2 || t->shape[0] != TABLE_ROWS || (channels != cols && channels != 1) || t->strides[1] != 8 ||
        t->strides[0] != 8 * channels) {
        PyErr_SetString(PyExc_ValueError, "table: contiguous int64 (6, channels or 1) (native.requant_parameters)");
        return -1;
    }
    if (mode < HALF_EVEN || mode > FLOOR) {
        PyErr_SetString(PyExc_ValueError, "mode: 0-3 (integer.ROUNDING_MODES)");
        return -1;
    }
    if (ro != NULL && ro != Py_None) {
        if (get_view(ro, &k->r, 0, 1, "row_shift") < 0) return -1;
        int match = k->r.view.ndim == nd - 1;
        for (int i = 0; match && i < nd - 1; i++) match = k->r.view.shape[i] == x->shape[i];
        if (!match) {
            PyErr_SetString(PyExc_ValueError, "row_shift: x's leading shape expected");
            return -1;
        }
    }
    const int64_t *table = t->buf;
    k->shift = table + SHIFT * channels;
    Stage st = {table + BIAS * channels, table + MULT * channels, table + BOUND * channels, table + SHIFT63 * channels,
                table + HALF * channels, src_zp, 0, 0, zp, qmin, qmax};
    int ok = pre_shift >= 0 && pre_shift <= 62 && qmin <= qmax;
    int64_t largest_bias = 0, bad = 0;
    for (Py_ssize_t c = 0; c < channels; c++) {
        int64_t b = st.bias[c] < 0 ? -st.bias[c] : st.bias[c];
        largest_bias = b > largest_bias ? b : largest_bias;
        bad |= (st.mult[c] < 0) | (k->shift[c] < 0) | (k->shift[c] > INT32_MAX);
    }
    ok = ok && !bad && largest_bias <= PRODUCT_MAX;
    /* (|d| << pre_shift) + largest |bias| < 2**62 <=> |d| <= d_bound; then |d * 2**pre_shift + bias| < 2**62 */
    st.d_bound = ok ? (PRODUCT_MAX - largest_bias) >> pre_shift : 0;
    st.pre_shift = ok ? pre_shift : 0;
    const int wide_in = x->itemsize == 4, wide_out = o->itemsize == 4;
    k->kernel = requant_kernels[channels < cols][wide_in][wide_out][mode];
    k->contiguous = x->strides[nd - 1] == x->itemsize && o->strides[nd - 1] == o->itemsize;
    /* scratch: a row gathered and its results (strided lanes), the row's shifts (row shifts) */
    if (!k->contiguous || k->r.held) {
        k->scratch = PyMem_Malloc(cols * 8 + channels * 16 + 8);
        if (!k->scratch) {
            PyErr_NoMemory();
            return -1;
        }
        k->xrow = (char *)k->scratch + 16 * channels, k->orow = k->xrow + 4 * cols;
        if (k->r.held) st.shift = k->scratch, st.half = st.shift + channels;
    }
    k->st = st;
    k->cols = cols, k->channels = channels, k->ok = ok;
    return 0;
}

/* The stage over every row of a set-up call; false (garbage written) where the spec refuses. */
static int requant_run(RequantCall *k) {
    const Py_buffer *x = &k->x.view, *o = &k->o.view, *r = &k->r.view;
    int ok = k->ok;
    Stage st = k->st; /* (row shifts rewrite its shifts' scratch) */
    const int nd = x->ndim;
    const Py_ssize_t cols = k->cols, xs = x->strides[nd - 1], os = o->strides[nd - 1];
    Py_ssize_t rows = leading_count(x);
    Py_ssize_t index[MAX_DIMS] = {0};
    for (Py_ssize_t row = 0; ok && row < rows; row++) {
        if (k->r.held) {
            Py_ssize_t at = 0; /* row_shift's axes are x's leading ones */
            for (int i = 0; i < r->ndim; i++) at += index[i] * r->strides[i];
            int64_t extra = *((const int8_t *)r->buf + at);
            if (extra < 0 || extra > k->row_shift_max) {
                ok = 0;
                break;
            }
            row_shifts(&st, k->shift, k->channels, extra);
        }
        const char *xr = (const char *)x->buf + offset_of(x, index);
        char *or_ = (char *)o->buf + offset_of(o, index);
        if (k->contiguous && k->wide) {
            k->wide((const int32_t *)xr, or_, cols, &st);
        } else if (k->contiguous) {
            ok = !k->kernel(xr, or_, cols, &st);
        } else { /* gathered into a contiguous row and scattered back */
            for (Py_ssize_t c = 0; c < cols; c++) memcpy(k->xrow + c * x->itemsize, xr + c * xs, x->itemsize);
            if (k->wide)
                k->wide((const int32_t *)k->xrow, k->orow, cols, &st);
            else
                ok = !k->kernel(k->xrow, k->orow, cols, &st);
            for (Py_ssize_t c = 0; c < cols; c++) memcpy(or_ + c * os, k->orow + c * o->itemsize, o->itemsize);
        }
        advance(x, index);
    }
    return ok;
}

static PyObject *requant(PyObject *self, PyObject *args) {
    PyObject *xo, *oo, *to, *ro;
    long long src_zp, zp, qmin, qmax;
    int pre_shift, mode, row_shift_max;
    if (!PyArg_ParseTuple(args, "OOOLiLLLiOi", &xo, &oo, &to, &src_zp, &pre_shift, &zp, &qmin, &qmax, &mode, &ro,
                          &row_shift_max))
        return NULL;
    RequantCall k;
    PyObject *result = NULL;
    if (requant_setup(&k, xo, oo, to, src_zp, pre_shift, zp, qmin, qmax, mode, ro, row_shift_max) == 0) {
        int ok;
        Py_BEGIN_ALLOW_THREADS
        ok = requant_run(&k);
        Py_END_ALLOW_THREADS
        result = PyBool_FromLong(ok);
    }
    requant_release(&k);
    return result;
}

/* --- bf16 lanes ------------------------------------------------------------------------------ */

/* The float32 value of a bf16 pattern (exact). */
static inline float widen(uint16_t b) {
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* float32 rounded once to bf16, ties to even; every NaN the canonical 0x7FC0: bf16.round32_bits. */
static inline uint16_t round_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t rounded = (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16); /* no wrap: below NaN's patterns */
    return (u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC0 : rounded;
}

/* A 2-d (rows, length) view of uint16 lanes: a 1-d one is one row, read by every row (stride 0). */
typedef struct {
    const char *base;
    Py_ssize_t rows, length, row_stride, stride;
} Lanes;

static int lanes_of(Held *h, Lanes *l, const char *what) {
    Py_buffer *v = &h->view;
    if (v->ndim > 2) {
        PyErr_Format(PyExc_ValueError, "%s: 1-d or 2-d lanes expected", what);
        return -1;
    }
    l->base = v->buf;
    l->rows = v->ndim == 2 ? v->shape[0] : 1;
    l->length = v->shape[v->ndim - 1];
    l->row_stride = v->ndim == 2 ? v->strides[0] : 0;
    l->stride = v->strides[v->ndim - 1];
    return 0;
}

static int conform(Lanes *in, const Lanes *out, const char *what) {
    if (in->length != out->length || (in->rows != out->rows && in->rows != 1)) {
        PyErr_Format(PyExc_ValueError, "%s: lanes do not match the result's", what);
        return -1;
    }
    if (in->rows == 1) in->row_stride = 0;
    return 0;
}

#define LANE(l, r, i) (*(const uint16_t *)((l).base + (r) * (l).row_stride + (i) * (l).stride))

static inline int is_nan(uint16_t p) { return (p & 0x7FFF) > 0x7F80; }

/* The lane operations on bf16 patterns (the simulator's vbin / vfma rules, impl_vector.BINARY):
 * arithmetic rounded once to bf16 (vfma: the product rounded, then the sum); max / min with a NaN
 * giving the canonical NaN and +0 above -0; comparisons giving an all-ones or all-zeros lane
 * (false for a NaN). */
static inline uint16_t op_add(uint16_t a, uint16_t b, uint16_t c) { return round_bf16(widen(a) + widen(b)); }
static inline uint16_t op_sub(uint16_t a, uint16_t b, uint16_t c) { return round_bf16(widen(a) - widen(b)); }
static inline uint16_t op_rsub(uint16_t a, uint16_t b, uint16_t c) { return round_bf16(widen(b) - widen(a)); }
static inline uint16_t op_mul(uint16_t a, uint16_t b, uint16_t c) { return round_bf16(widen(a) * widen(b)); }
static inline uint16_t op_fma(uint16_t a, uint16_t b, uint16_t c) {
    return round_bf16(widen(round_bf16(widen(a) * widen(b))) + widen(c));
}
static inline uint16_t op_max(uint16_t a, uint16_t b, uint16_t c) {
    float x = widen(a), y = widen(b);
    uint16_t r = (x > y) | ((x == y) & (b == 0x8000)) ? a : b; /* max(+0, -0) = +0 */
    return is_nan(a) | is_nan(b) ? 0x7FC0 : r;
}
static inline uint16_t op_min(uint16_t a, uint16_t b, uint16_t c) {
    float x = widen(a), y = widen(b);
    uint16_t r = (x < y) | ((x == y) & (a == 0x8000)) ? a : b; /* min(+0, -0) = -0 */
    return is_nan(a) | is_nan(b) ? 0x7FC0 : r;
}
static inline uint16_t op_lt(uint16_t a, uint16_t b, uint16_t c) { return widen(a) < widen(b) ? 0xFFFF : 0; }
static inline uint16_t op_le(uint16_t a, uint16_t b, uint16_t c) { return widen(a) <= widen(b) ? 0xFFFF : 0; }
static inline uint16_t op_gt(uint16_t a, uint16_t b, uint16_t c) { return widen(a) > widen(b) ? 0xFFFF : 0; }
static inline uint16_t op_ge(uint16_t a, uint16_t b, uint16_t c) { return widen(a) >= widen(b) ? 0xFFFF : 0; }
static inline uint16_t op_eq(uint16_t a, uint16_t b, uint16_t c) { return widen(a) == widen(b) ? 0xFFFF : 0; }
/* vun's (b unused): rint (ties to even) rounded to bf16; ftoi: that integer saturated to int16, NaN 0;
 * itof: the lane as an int16, to bf16 (exact in float32, rounded once) */
static inline uint16_t op_rint(uint16_t a, uint16_t b, uint16_t c) { return round_bf16(rintf(widen(a))); }
static inline uint16_t op_ftoi(uint16_t a, uint16_t b, uint16_t c) {
    float r = rintf(widen(a));
    r = r < -32768.0f ? -32768.0f : r > 32767.0f ? 32767.0f : r;
    return is_nan(a) ? 0 : (uint16_t)(int32_t)r;
}
static inline uint16_t op_itof(uint16_t a, uint16_t b, uint16_t c) { return round_bf16((float)(int16_t)a); }
/* The integer lane rules (vbin and, or, xor; iadd, isub, irsub modulo 2**16; vun shl and shr by b,
 * 0 from 16 on) and vsel (a: the mask; b where it is nonzero, else c). */
static inline uint16_t op_and(uint16_t a, uint16_t b, uint16_t c) { return a & b; }
static inline uint16_t op_or(uint16_t a, uint16_t b, uint16_t c) { return a | b; }
static inline uint16_t op_xor(uint16_t a, uint16_t b, uint16_t c) { return a ^ b; }
static inline uint16_t op_iadd(uint16_t a, uint16_t b, uint16_t c) { return (uint16_t)(a + b); }
static inline uint16_t op_isub(uint16_t a, uint16_t b, uint16_t c) { return (uint16_t)(a - b); }
static inline uint16_t op_irsub(uint16_t a, uint16_t b, uint16_t c) { return (uint16_t)(b - a); }
static inline uint16_t op_shl(uint16_t a, uint16_t b, uint16_t c) { return b < 16 ? (uint16_t)(a << b) : 0; }
static inline uint16_t op_shr(uint16_t a, uint16_t b, uint16_t c) { return b < 16 ? (uint16_t)(a >> b) : 0; }
static inline uint16_t op_sel(uint16_t a, uint16_t b, uint16_t c) { return a ? b : c; }

/* One row of lanes: contiguous (vectorized per CPU) and strided (a broadcast operand row: stride 0). */
#define LANE_LOOPS(OP)                                                                                  \
    CLONES static void OP##_row(uint16_t *restrict out, const uint16_t *restrict a, const uint16_t *restrict b, \
                                const uint16_t *restrict c, Py_ssize_t n) {                              \
        for (Py_ssize_t i = 0; i < n; i++) out[i] = OP(a[i], b[i], c ? c[i] : 0);                        \
    }                                                                                                   \
    static void OP##_strided(char *out, const char *a, const char *b, const char *c, Py_ssize_t n,         \
                             const Py_ssize_t *st) {                                                    \
        for (Py_ssize_t i = 0; i < n; i++)                                                              \
            *(uint16_t *)(out + i * st[0]) = OP(*(const uint16_t *)(a + i * st[1]),                      \
                                                *(const uint16_t *)(b + i * st[2]),                      \
                                                c ? *(const uint16_t *)(c + i * st[3]) : 0);             \
    }
LANE_LOOPS(op_add)
LANE_LOOPS(op_sub)
LANE_LOOPS(op_rsub)
LANE_LOOPS(op_mul)
LANE_LOOPS(op_fma)
LANE_LOOPS(op_max)
LANE_LOOPS(op_min)
LANE_LOOPS(op_lt)
LANE_LOOPS(op_le)
LANE_LOOPS(op_gt)
LANE_LOOPS(op_ge)
LANE_LOOPS(op_eq)
LANE_LOOPS(op_rint)
LANE_LOOPS(op_ftoi)
LANE_LOOPS(op_itof)
LANE_LOOPS(op_and)
LANE_LOOPS(op_or)
LANE_LOOPS(op_xor)
LANE_LOOPS(op_iadd)
LANE_LOOPS(op_isub)
LANE_LOOPS(op_irsub)
LANE_LOOPS(op_shl)
LANE_LOOPS(op_shr)
LANE_LOOPS(op_sel)

typedef void (*RowLoop)(uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *, Py_ssize_t);
typedef void (*StridedLoop)(char *, const char *, const char *, const char *, Py_ssize_t, const Py_ssize_t *);
enum { OP_ADD, OP_SUB, OP_RSUB, OP_MUL, OP_FMA, OP_MAX, OP_MIN, OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_RINT, OP_FTOI,
       OP_ITOF, OP_AND, OP_OR, OP_XOR, OP_IADD, OP_ISUB, OP_IRSUB, OP_SHL, OP_SHR, OP_SEL, OPS };
#define BOTH(OP) {OP##_row, OP##_strided}
static const struct {
    RowLoop row;
    StridedLoop strided;
} lane_loops[OPS] = {BOTH(op_add), BOTH(op_sub), BOTH(op_rsub), BOTH(op_mul), BOTH(op_fma), BOTH(op_max),
                     BOTH(op_min), BOTH(op_lt), BOTH(op_le), BOTH(op_gt), BOTH(op_ge), BOTH(op_eq),
                     BOTH(op_rint), BOTH(op_ftoi), BOTH(op_itof), BOTH(op_and), BOTH(op_or), BOTH(op_xor),
                     BOTH(op_iadd), BOTH(op_isub), BOTH(op_irsub), BOTH(op_shl), BOTH(op_shr), BOTH(op_sel)};
#define THREE(op) ((op) == OP_FMA || (op) == OP_SEL) /* the operations of three operands */

/* A checked lanes operation: op and its operands' lanes (c only for fma). */
typedef struct {
    int op;
    Lanes o, a, b, c;
} LanesCall;

/* Hold the views of out, a, b (and c for fma) in ``h`` and check them into ``k``. */
static int lanes_operands(int op, PyObject *oo, PyObject *ao, PyObject *bo, PyObject *co, Held *h, LanesCall *k) {
    if (op < 0 || op >= OPS || THREE(op) != (co != NULL && co != Py_None)) {
        PyErr_SetString(PyExc_ValueError, "lanes: op 0-23, three operands for fma (4) and sel (23), else two");
        return -1;
    }
    memset(k, 0, sizeof *k);
    k->op = op;
    if (get_view(oo, &h[0], 1, 2, "out") < 0 || lanes_of(&h[0], &k->o, "out") < 0) return -1;
    if (get_view(ao, &h[1], 0, 2, "a") < 0 || lanes_of(&h[1], &k->a, "a") < 0 || conform(&k->a, &k->o, "a") < 0)
        return -1;
    if (get_view(bo, &h[2], 0, 2, "b") < 0 || lanes_of(&h[2], &k->b, "b") < 0 || conform(&k->b, &k->o, "b") < 0)
        return -1;
    if (THREE(op) &&
        (get_view(co, &h[3], 0, 2, "c") < 0 || lanes_of(&h[3], &k->c, "c") < 0 || conform(&k->c, &k->o, "c") < 0))
        return -1;
    return 0;
}

static void run_lanes(const LanesCall *k) {
    const int op = k->op, three = THREE(op);
    const int contiguous = k->o.stride == 2 && k->a.stride == 2 && k->b.stride == 2 && (!three || k->c.stride == 2);
    const Py_ssize_t strides[4] = {k->o.stride, k->a.stride, k->b.stride, k->c.stride};
    for (Py_ssize_t r = 0; r < k->o.rows; r++) {
        char *out = (char *)k->o.base + r * k->o.row_stride;
        const char *pa = k->a.base + r * k->a.row_stride, *pb = k->b.base + r * k->b.row_stride;
        const char *pc = three ? k->c.base + r * k->c.row_stride : NULL;
        if (contiguous)
            lane_loops[op].row((uint16_t *)out, (const uint16_t *)pa, (const uint16_t *)pb, (const uint16_t *)pc,
                               k->o.length);
        else
            lane_loops[op].strided(out, pa, pb, pc, k->o.length, strides);
    }
}

/* lanes(op, out, a, b[, c]): out = a op b on bf16 patterns, op (the OP_ enum): add, sub, rsub, mul
 * (rounded once), fma (three operands: round(round(a * b) + c)), max, min, lt, le, gt, ge, eq, the
 * unary rint, ftoi, itof (b ignored), the integer and, or, xor, iadd, isub, irsub, shl and shr (a
 * shifted by b), and sel (three operands: b where a is nonzero, else c).
 * Every operand is (rows, length) uint16 patterns, or one row read by every row. */
static PyObject *lanes(PyObject *self, PyObject *args) {
    int op;
    PyObject *oo, *ao, *bo, *co = Py_None;
    if (!PyArg_ParseTuple(args, "iOOO|O", &op, &oo, &ao, &bo, &co)) return NULL;
    Held h[4];
    memset(h, 0, sizeof h);
    LanesCall k;
    PyObject *result = NULL;
    if (lanes_operands(op, oo, ao, bo, co, h, &k) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    run_lanes(&k);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < 4; i++) release(&h[i]);
    return result;
}

/* One level of vred's pairwise tree: next[i] = round(level[2i] + level[2i + 1]), widened back. */
CLONES static void pair_sums(float *restrict next, const float *restrict level, Py_ssize_t pairs) {
    for (Py_ssize_t i = 0; i < pairs; i++) next[i] = widen(round_bf16(level[2 * i] + level[2 * i + 1]));
}

/* The row's sum by vred's pairwise tree: per level, element i of the next is round(e[2i] + e[2i+1])
 * and an odd width's last element is carried after them (``level``, ``spare``: scratch of the row's
 * width, the levels alternating between them). */
static uint16_t tree_sum_row(const Lanes *lx, Py_ssize_t r, float *level, float *spare) {
    Py_ssize_t width = lx->length;
    if (width == 1) return LANE(*lx, r, 0);
    for (Py_ssize_t i = 0; i < width; i++) level[i] = widen(LANE(*lx, r, i));
    while (width > 1) {
        Py_ssize_t pairs = width / 2;
        pair_sums(spare, level, pairs);
        if (width % 2) spare[pairs] = level[2 * pairs];
        float *t = level;
        level = spare, spare = t;
        width -= pairs;
    }
    uint32_t u;
    memcpy(&u, &level[0], 4);
    return (uint16_t)(u >> 16);
}

/* The row's max as vred max's tree gives it, in any order (max is associative and commutative: a
 * NaN anywhere gives the canonical NaN, +0 wins over -0); a one-lane row's NaN made canonical too. */
static uint16_t max_row(const Lanes *lx, Py_ssize_t r) {
    uint16_t m = LANE(*lx, r, 0);
    for (Py_ssize_t i = 1; i < lx->length; i++) m = op_max(m, LANE(*lx, r, i), 0);
    return is_nan(m) ? 0x7FC0 : m;
}

/* reduce_rows(op, out, x): out (rows,) = each row of x's (rows, width) patterns reduced by vred's
 * op: 0 sum (tree_sum_row), 1 max (max_row). */
static PyObject *reduce_rows(PyObject *self, PyObject *args) {
    int op;
    PyObject *oo, *xo;
    if (!PyArg_ParseTuple(args, "iOO", &op, &oo, &xo)) return NULL;
    Held o = {0}, x = {0};
    Lanes lx;
    float *level = NULL;
    PyObject *result = NULL;
    if (get_view(oo, &o, 1, 2, "out") < 0 || get_view(xo, &x, 0, 2, "x") < 0 || lanes_of(&x, &lx, "x") < 0) goto done;
    if (o.view.ndim != 1 || o.view.shape[0] != lx.rows || x.view.ndim != 2 || lx.length < 1 || (op != 0 && op != 1)) {
        PyErr_SetString(PyExc_ValueError, "reduce_rows: op 0 (sum) or 1 (max), x (rows, width >= 1), out (rows,)");
        goto done;
    }
    level = PyMem_Malloc(2 * lx.length * sizeof(float));
    if (!level) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t r = 0; r < lx.rows; r++)
        *(uint16_t *)((char *)o.view.buf + r * o.view.strides[0]) = op ? max_row(&lx, r) : tree_sum_row(&lx, r, level, level + lx.length);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(level);
    release(&o);
    release(&x);
    return result;
}

/* The bf16 pattern nearest (ties to even) the double x, rounded once (bf16._f64_to_bits; NaN the
 * canonical one): x rounded to float32 with round-to-odd (float32's 24 bits are more than bf16's 8
 * plus 2, so rounding that to bf16 is rounding x once; float32 overflows only where bf16 does). */
static inline uint16_t round_bf16_from_double(double x) {
    float f = (float)x; /* RNE */
    double back = (double)f;
    uint32_t u;
    memcpy(&u, &f, 4);
    /* inexact, finite and even: the odd neighbour toward x (without branches: the loop vectorizes) */
    uint32_t odd = (back != x) & ((u & 0x7F800000u) != 0x7F800000u) & !(u & 1u);
    u += odd ? (fabs(x) > fabs(back) ? 1u : 0xFFFFFFFFu) : 0u;
    memcpy(&f, &u, 4);
    return round_bf16(f);
}

/* One row of cvt i32_bf16; nonzero where some |q - zp| reaches 2**29 (the row's results are then garbage). */
CLONES static int cvt_i32_row(uint16_t *restrict out, const int32_t *restrict q, Py_ssize_t n, double s, double zp) {
    int bad = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        double d = (double)q[i] - zp; /* exact: integers below 2**33 */
        bad |= fabs(d) >= 0x1p29;
        out[i] = round_bf16_from_double(d * s);
    }
    return bad;
}

/* cvt_i32(out, q, scale, zp) -> bool: vbuf's bf16 patterns of (q - zp) * scale (``cvt i32_bf16``:
 * bf16.int8_to_bf16, the product exact in double, rounded once) for int32 q (rows, length) and a
 * float32 scale; False (results garbage) where |q - zp| reaches 2**29 (the spec refuses). */
static PyObject *cvt_i32(PyObject *self, PyObject *args) {
    PyObject *oo, *qo;
    float scale;
    long long zp;
    if (!PyArg_ParseTuple(args, "OOfL", &oo, &qo, &scale, &zp)) return NULL;
    Held o = {0}, q = {0};
    PyObject *result = NULL;
    if (get_view(oo, &o, 1, 2, "out") < 0 || get_view(qo, &q, 0, 4, "q") < 0 || same_shape(&o.view, &q.view, "cvt") < 0)
        goto done;
    int ok = 1;
    const double s = scale;
    Py_ssize_t rows = leading_count(&q.view), n = q.view.shape[q.view.ndim - 1];
    Py_ssize_t index[MAX_DIMS] = {0};
    const Py_ssize_t qs = q.view.strides[q.view.ndim - 1], os = o.view.strides[o.view.ndim - 1];
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t row = 0; ok && row < rows; row++) {
        const char *qr = (const char *)q.view.buf + offset_of(&q.view, index);
        char *or_ = (char *)o.view.buf + offset_of(&o.view, index);
        if (qs == 4 && os == 2) {
            ok = !cvt_i32_row((uint16_t *)or_, (const int32_t *)qr, n, s, (double)zp);
        } else {
            for (Py_ssize_t i = 0; ok && i < n; i++) {
                int64_t d = (int64_t) * (const int32_t *)(qr + i * qs) - zp;
                ok = d < (INT64_C(1) << 29) && d > -(INT64_C(1) << 29);
                *(uint16_t *)(or_ + i * os) = round_bf16_from_double((double)d * s);
            }
        }
        advance(&q.view, index);
    }
    Py_END_ALLOW_THREADS
    result = PyBool_FromLong(ok);
done:
    release(&o);
    release(&q);
    return result;
}

/* --- rule tables ----------------------------------------------------------------------------- */

CLONES static void pair_row(int8_t *restrict out, const uint8_t *restrict a, const uint8_t *restrict b,
                            const int8_t *restrict table, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) out[i] = table[(Py_ssize_t)a[i] << 8 | b[i]];
}

/* A checked pair lookup: out, a, b held in h[0..2], the table in h[3]. */
static int pair_operands(PyObject *oo, PyObject *ao, PyObject *bo, PyObject *to, Held *h) {
    if (get_view(oo, &h[0], 1, 1, "out") < 0 || get_view(ao, &h[1], 0, 1, "a") < 0 || get_view(bo, &h[2], 0, 1, "b") < 0 ||
        get_view(to, &h[3], 0, 1, "table") < 0)
        return -1;
    const Py_buffer *o = &h[0].view, *a = &h[1].view, *b = &h[2].view, *t = &h[3].view;
    Py_ssize_t rows = o->ndim == 2 ? o->shape[0] : 1, n = o->shape[o->ndim - 1];
    Py_ssize_t b_rows = b->ndim == 2 ? b->shape[0] : 1;
    if (o->ndim > 2 || same_shape(o, a, "pair_lookup a") < 0 || b->ndim > 2 || b->shape[b->ndim - 1] != n ||
        (b_rows != rows && b_rows != 1) || t->len != 65536 || !PyBuffer_IsContiguous(t, 'C') ||
        o->strides[o->ndim - 1] != 1 || a->strides[a->ndim - 1] != 1 || b->strides[b->ndim - 1] != 1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "pair_lookup: int8 (rows, length) out, a, b (or one row), 65536 table");
        return -1;
    }
    return 0;
}

static void run_pair(const Held *h) {
    const Py_buffer *o = &h[0].view, *a = &h[1].view, *b = &h[2].view;
    Py_ssize_t rows = o->ndim == 2 ? o->shape[0] : 1, n = o->shape[o->ndim - 1];
    Py_ssize_t b_rows = b->ndim == 2 ? b->shape[0] : 1;
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_ssize_t ro = o->ndim == 2 ? r * o->strides[0] : 0, ra = a->ndim == 2 ? r * a->strides[0] : 0;
        Py_ssize_t rb = b_rows > 1 ? r * b->strides[0] : 0;
        pair_row((int8_t *)o->buf + ro, (const uint8_t *)a->buf + ra, (const uint8_t *)b->buf + rb, h[3].view.buf, n);
    }
}

/* pair_lookup(out, a, b, table): out = table[byte(a) * 256 + byte(b)] for int8 (rows, length) a
 * and b (b: or one row read by every row) with contiguous lanes: a two-operand rule read from its
 * table of every pair (rule_tables.py), in one pass. */
static PyObject *pair_lookup(PyObject *self, PyObject *args) {
    PyObject *oo, *ao, *bo, *to;
    if (!PyArg_ParseTuple(args, "OOOO", &oo, &ao, &bo, &to)) return NULL;
    Held h[4];
    memset(h, 0, sizeof h);
    PyObject *result = NULL;
    if (pair_operands(oo, ao, bo, to, h) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    run_pair(h);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    for (int i = 0; i < 4; i++) release(&h[i]);
    return result;
}

/* --- the matrix unit's grouped and depthwise convolutions ---------------------------------- */

/* One output pixel's row of N sums in int64: for each tap t whose slab pixel index[t] is inside
 * the slab (``pad`` marks a padding position: its value is the zero point, adding nothing), output
 * channel n adds sum_ci (slab[pixel, g * cg + ci] - zp) * w[n, t * cg + ci], g = n // ng. */
CLONES static void conv_pixel(int64_t *restrict sums, const int8_t *restrict slab, Py_ssize_t pixel_stride,
                              const int64_t *restrict index, Py_ssize_t taps, Py_ssize_t pad,
                              const int16_t *restrict w, Py_ssize_t n_out, Py_ssize_t k, Py_ssize_t cg, Py_ssize_t ng,
                              int32_t zp) {
    for (Py_ssize_t n = 0; n < n_out; n++) sums[n] = 0;
    for (Py_ssize_t t = 0; t < taps; t++) {
        if (index[t] == pad) continue;
        const int8_t *px = slab + index[t] * pixel_stride;
        if (cg == 1 && ng == 1) { /* depthwise: channel n reads slab channel n; w is (taps, N) here */
            const int16_t *wt = w + t * n_out;
            for (Py_ssize_t n = 0; n < n_out; n++) sums[n] += (int32_t)(px[n] - zp) * wt[n];
        } else {
            for (Py_ssize_t n = 0; n < n_out; n++) {
                const int8_t *x = px + (n / ng) * cg;
                const int16_t *wn = w + n * k + t * cg;
                int32_t sum = 0; /* |sum| <= cg * 383 * 2**15 < 2**31 for cg <= 171 (the caller's bound) */
                for (Py_ssize_t ci = 0; ci < cg; ci++) sum += (int32_t)(x[ci] - zp) * wn[ci];
                sums[n] += sum;
            }
        }
    }
}

/* conv(out, slab, index, w, zp, cg, ng, pad) -> bool: a dwconv or gconv tile's products.
 * slab (samples, pixels, channels) int8 with contiguous channels; index (M, taps) int64 the slab
 * pixel each output pixel's tap reads (``pad`` where it reads padding); w int16 (N, taps * cg)
 * contiguous, or (taps, N) for a depthwise tile (cg = ng = 1); out (samples * M, N) int32 or int64
 * (row m of sample b at b * M + m).  Sums are exact in int64; False (out partly written) where an
 * int32 out cannot hold one. */
static PyObject *conv(PyObject *self, PyObject *args) {
    PyObject *oo, *so, *io, *wo;
    int zp;
    Py_ssize_t cg, ng, pad;
    if (!PyArg_ParseTuple(args, "OOOOinnn", &oo, &so, &io, &wo, &zp, &cg, &ng, &pad)) return NULL;
    Held o = {0}, sl = {0}, ix = {0}, w = {0};
    PyObject *result = NULL;
    int64_t *sums = NULL;
    if (get_view(oo, &o, 1, -1, "out") < 0 || get_view(so, &sl, 0, 1, "slab") < 0 || get_view(io, &ix, 0, 8, "index") < 0 ||
        get_view(wo, &w, 0, 2, "weights") < 0)
        goto done;
    Py_ssize_t samples = sl.view.ndim == 3 ? sl.view.shape[0] : -1, M = ix.view.ndim == 2 ? ix.view.shape[0] : -1;
    Py_ssize_t taps = M >= 0 ? ix.view.shape[1] : 0, n_out = o.view.ndim == 2 ? o.view.shape[1] : -1;
    int depthwise = cg == 1 && ng == 1;
    Py_ssize_t k = taps * cg;
    if (samples < 0 || M < 0 || n_out < 0 || o.view.shape[0] != samples * M || sl.view.strides[2] != 1 ||
        !PyBuffer_IsContiguous(&ix.view, 'C') || !PyBuffer_IsContiguous(&w.view, 'C') || w.view.ndim != 2 ||
        w.view.shape[0] != (depthwise ? taps : n_out) || w.view.shape[1] != (depthwise ? n_out : k) || cg < 1 ||
        ng < 1 || cg > 171 || (depthwise ? n_out : ((n_out - 1) / ng + 1) * cg) > sl.view.shape[2] ||
        (o.view.itemsize != 4 && o.view.itemsize != 8)) {
        PyErr_SetString(PyExc_ValueError, "conv: out (samples * M, N) int32/int64, slab (samples, pixels, channels) "
                                          "int8, index (M, taps) int64, w int16 (N, taps * cg) or (taps, N)");
        goto done;
    }
    const int64_t *index = ix.view.buf;
    for (Py_ssize_t i = 0; i < M * taps; i++)
        if (index[i] < 0 || index[i] > pad || (index[i] < pad && index[i] >= sl.view.shape[1])) {
            PyErr_SetString(PyExc_ValueError, "conv: an index outside the slab");
            goto done;
        }
    sums = PyMem_Malloc((n_out + 1) * sizeof(int64_t));
    if (!sums) {
        PyErr_NoMemory();
        goto done;
    }
    int ok = 1;
    const int wide = o.view.itemsize == 8;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; ok && b < samples; b++) {
        const int8_t *slab = (const int8_t *)((const char *)sl.view.buf + b * sl.view.strides[0]);
        for (Py_ssize_t m = 0; ok && m < M; m++) {
            conv_pixel(sums, slab, sl.view.strides[1], index + m * taps, taps, pad, w.view.buf, n_out, k, cg, ng, zp);
            char *row = (char *)o.view.buf + (b * M + m) * o.view.strides[0];
            for (Py_ssize_t n = 0; n < n_out; n++) {
                if (wide) {
                    *(int64_t *)(row + n * o.view.strides[1]) = sums[n];
                } else {
                    if (sums[n] > INT32_MAX || sums[n] < INT32_MIN) ok = 0;
                    *(int32_t *)(row + n * o.view.strides[1]) = (int32_t)sums[n];
                }
            }
        }
    }
    Py_END_ALLOW_THREADS
    result = PyBool_FromLong(ok);
done:
    PyMem_Free(sums);
    release(&o);
    release(&sl);
    release(&ix);
    release(&w);
    return result;
}

/* === matrix-side kernels ====================================================================== */

/* The matrix unit's small products (below the int8 kernel's size, where a BLAS product's numpy
 * calls cost more than its multiplications): gemm, conv and gconv tiles straight from the slab's
 * int8 codes and wbuf's int8 weights, no window or float matrix made.
 *
 * The sums: every term (x - zp) * w has |x - zp| <= 255 (x and zp in int8) and |w| <= 128, so it
 * and the sum of a pair of them are int16 * int16 products whose int32 pair sum is exact, and a sum
 * of K terms is at most K * 255 * 128 < 2**31 for K <= MM_MAX_K: exact in int32 in any order. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MM_AVX2 1
#endif

#define MM_PIXELS 8    /* output pixels computed together: each weight vector loaded once for them */
#define MM_LANES 8     /* output channels per vector (int32 lanes) */
#define MM_MAX_K 65793 /* the largest K with K * 255 * 128 < 2**31 */

/* The weights of ``count`` output channels (rows of ``w``, K int8 codes each, ``stride`` bytes apart)
 * relaid for the kernels: pairs of int16 weights (k = 2q, 2q + 1) of MM_LANES channels side by side,
 * to[(q * nv + v) * 2 * MM_LANES + 2 * lane + k % 2] = w[v * MM_LANES + lane][k], zeros past K and count. */
static void mm_relayout(int16_t *to, const char *w, Py_ssize_t stride, Py_ssize_t count, Py_ssize_t K, Py_ssize_t kp,
                        Py_ssize_t nv) {
    memset(to, 0, kp * nv * MM_LANES * sizeof(int16_t));
    for (Py_ssize_t n = 0; n < count; n++) {
        const int8_t *row = (const int8_t *)(w + n * stride);
        int16_t *lane = to + (n / MM_LANES) * 2 * MM_LANES + 2 * (n % MM_LANES);
        for (Py_ssize_t k = 0; k < K; k++) lane[(k / 2) * nv * 2 * MM_LANES + k % 2] = row[k];
    }
}

static inline int32_t mm_pair(const int16_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline int32_t mm_quad(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* The weights of ``count`` channels in quads of k for vpdpbusd, to[(q * nv + v) * 4 * MM_LANES + 4 * lane
 * + k % 4] = w[v * MM_LANES + lane][k], q = k / 4, zeros past K and count; and each channel's sum of
 * weights (the bias's correction). */
static void mm_relayout_quads(int8_t *to, int32_t *row_sums, const char *w, Py_ssize_t stride, Py_ssize_t count,
                              Py_ssize_t K, Py_ssize_t kq, Py_ssize_t nv) {
    memset(to, 0, kq * nv * MM_LANES);
    for (Py_ssize_t n = 0; n < count; n++) {
        const int8_t *row = (const int8_t *)(w + n * stride);
        int8_t *lane = to + (n / MM_LANES) * 4 * MM_LANES + 4 * (n % MM_LANES);
        int32_t sum = 0;
        for (Py_ssize_t k = 0; k < K; k++) {
            lane[(k / 4) * nv * 4 * MM_LANES + k % 4] = row[k];
            sum += row[k];
        }
        row_sums[n] = sum;
    }
}

/* sums[p * nv * MM_LANES + n] = sum_k a[p * kp + k] * channel n's weight k, for P pixels (1, 4 or 8 rows of a,
 * kp int16 each, even kp) and the relaid weights w2 of nv vectors: the portable loop. */
static void mm_sums_plain(int32_t *restrict sums, const int16_t *restrict a, const int16_t *restrict w2, Py_ssize_t kp,
                          Py_ssize_t nv, int P) {
    const Py_ssize_t width = nv * MM_LANES;
    for (int p = 0; p < P; p++)
        for (Py_ssize_t n = 0; n < width; n++) {
            const int16_t *w = w2 + (n / MM_LANES) * 2 * MM_LANES + 2 * (n % MM_LANES);
            int32_t s = 0;
            for (Py_ssize_t q = 0; q < kp / 2; q++)
                s += (int32_t)a[p * kp + 2 * q] * w[q * nv * 2 * MM_LANES] +
                     (int32_t)a[p * kp + 2 * q + 1] * w[q * nv * 2 * MM_LANES + 1];
            sums[p * width + n] = s;
        }
}

#ifdef MM_AVX2
/* mm_sums_plain on AVX2: per pair of k, each pixel's pair broadcast and multiplied by two vectors of
 * weight pairs (vpmaddwd: a pair's two products summed in int32, exact). */
#define MM_AVX2_SUMS(NAME, P)                                                                              \
    __attribute__((target("avx2"))) static void NAME(int32_t *restrict sums, const int16_t *restrict a,     \
                                                      const int16_t *restrict w2, Py_ssize_t kp, Py_ssize_t nv) { \
        const Py_ssize_t width = nv * MM_LANES, pairs = kp / 2;                                             \
        Py_ssize_t v = 0;                                                                                   \
        for (; v + 2 <= nv; v += 2) {                                                                       \
            __m256i c0[P], c1[P];                                                                           \
            for (int p = 0; p < P; p++) c0[p] = c1[p] = _mm256_setzero_si256();                             \
            for (Py_ssize_t q = 0; q < pairs; q++) {                                                        \
                const __m256i *wq = (const __m256i *)(w2 + (q * nv + v) * 2 * MM_LANES);                    \
                __m256i w0 = _mm256_loadu_si256(wq), w1 = _mm256_loadu_si256(wq + 1);                       \
                for (int p = 0; p < P; p++) {                                                               \
                    __m256i x = _mm256_set1_epi32(mm_pair(a + p * kp + 2 * q));                             \
                    c0[p] = _mm256_add_epi32(c0[p], _mm256_madd_epi16(x, w0));                              \
                    c1[p] = _mm256_add_epi32(c1[p], _mm256_madd_epi16(x, w1));                              \
                }                                                                                           \
            }                                                                                               \
            for (int p = 0; p < P; p++) {                                                                   \
                _mm256_storeu_si256((__m256i *)(sums + p * width + v * MM_LANES), c0[p]);                   \
                _mm256_storeu_si256((__m256i *)(sums + p * width + (v + 1) * MM_LANES), c1[p]);             \
            }                                                                                               \
        }                                                                                                   \
        for (; v < nv; v++) {                                                                               \
            __m256i c0[P];                                                                                  \
            for (int p = 0; p < P; p++) c0[p] = _mm256_setzero_si256();                                     \
            for (Py_ssize_t q = 0; q < pairs; q++) {                                                        \
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(w2 + (q * nv + v) * 2 * MM_LANES));       \
                for (int p = 0; p < P; p++)                                                                 \
                    c0[p] = _mm256_add_epi32(c0[p],                                                         \
                                             _mm256_madd_epi16(_mm256_set1_epi32(mm_pair(a + p * kp + 2 * q)), w0)); \
            }                                                                                               \
            for (int p = 0; p < P; p++) _mm256_storeu_si256((__m256i *)(sums + p * width + v * MM_LANES), c0[p]); \
        }                                                                                                   \
    }
MM_AVX2_SUMS(mm_sums_avx2_1, 1)
MM_AVX2_SUMS(mm_sums_avx2_4, 4)

/* On AVX-512 VNNI the windows are biased bytes (x + 128, uint8) and the weights int8 in quads of k
 * (mm_relayout_quads): vpdpbusd adds four products (each at most 255 * 128) to an int32 lane without
 * saturating, twice the pairs' work per instruction; the bias comes off per channel afterwards. */
#define MM_QUAD_SUMS(NAME, P)                                                                              \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void NAME(                       \
        int32_t *restrict sums, const uint8_t *restrict a, const int8_t *restrict w4, Py_ssize_t kq, Py_ssize_t nv) { \
        const Py_ssize_t width = nv * MM_LANES, quads = kq / 4, step = nv * 4 * MM_LANES;                   \
        Py_ssize_t v = 0;                                                                                   \
        for (; v + 4 <= nv; v += 4) {                                                                       \
            __m512i c0[P], c1[P];                                                                           \
            for (int p = 0; p < P; p++) c0[p] = c1[p] = _mm512_setzero_si512();                             \
            for (Py_ssize_t q = 0; q < quads; q++) {                                                        \
                const int8_t *wq = w4 + q * step + v * 4 * MM_LANES;                                        \
                __m512i w0 = _mm512_loadu_si512(wq), w1 = _mm512_loadu_si512(wq + 64);                      \
                for (int p = 0; p < P; p++) {                                                               \
                    __m512i x = _mm512_set1_epi32(mm_quad(a + p * kq + 4 * q));                             \
                    c0[p] = _mm512_dpbusd_epi32(c0[p], x, w0);                                              \
                    c1[p] = _mm512_dpbusd_epi32(c1[p], x, w1);                                              \
                }                                                                                           \
            }                                                                                               \
            for (int p = 0; p < P; p++) {                                                                   \
                _mm512_storeu_si512(sums + p * width + v * MM_LANES, c0[p]);                                \
                _mm512_storeu_si512(sums + p * width + v * MM_LANES + 16, c1[p]);                           \
            }                                                                                               \
        }                                                                                                   \
        for (; v + 2 <= nv; v += 2) {                                                                       \
            __m512i c0[P];                                                                                  \
            for (int p = 0; p < P; p++) c0[p] = _mm512_setzero_si512();                                     \
            for (Py_ssize_t q = 0; q < quads; q++) {                                                        \
                __m512i w0 = _mm512_loadu_si512(w4 + q * step + v * 4 * MM_LANES);                          \
                for (int p = 0; p < P; p++)                                                                 \
                    c0[p] = _mm512_dpbusd_epi32(c0[p], _mm512_set1_epi32(mm_quad(a + p * kq + 4 * q)), w0);  \
            }                                                                                               \
            for (int p = 0; p < P; p++) _mm512_storeu_si512(sums + p * width + v * MM_LANES, c0[p]);        \
        }                                                                                                   \
        for (; v < nv; v++) {                                                                               \
            __m256i c0[P];                                                                                  \
            for (int p = 0; p < P; p++) c0[p] = _mm256_setzero_si256();                                     \
            for (Py_ssize_t q = 0; q < quads; q++) {                                                        \
                __m256i w0 = _mm256_loadu_si256((const __m256i *)(w4 + q * step + v * 4 * MM_LANES));       \
                for (int p = 0; p < P; p++)                                                                 \
                    c0[p] = _mm256_dpbusd_epi32(c0[p], _mm256_set1_epi32(mm_quad(a + p * kq + 4 * q)), w0);  \
            }                                                                                               \
            for (int p = 0; p < P; p++) _mm256_storeu_si256((__m256i *)(sums + p * width + v * MM_LANES), c0[p]); \
        }                                                                                                   \
    }
MM_QUAD_SUMS(mm_quads_1, 1)
MM_QUAD_SUMS(mm_quads_4, 4)
MM_QUAD_SUMS(mm_quads_8, MM_PIXELS)
static int mm_isa = -1, mm_cpu = -1; /* the level used and the CPU's: 2 AVX-512 VNNI, 1 AVX2, 0 neither */
#else
static int mm_isa = 0, mm_cpu = 0;
#endif

/* The CPU's vector instructions for mm (asked once). */
static void mm_detect(void) {
#ifdef MM_AVX2
    if (mm_cpu < 0) {
        __builtin_cpu_init();
        mm_cpu = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") &&
                         __builtin_cpu_supports("avx512vl")
                     ? 2
                     : __builtin_cpu_supports("avx2") != 0;
        mm_isa = mm_cpu;
    }
#endif
}

/* mm_level([level]) -> int: the vector instructions mm uses (2 AVX-512 VNNI, 1 AVX2, 0 portable C);
 * given a level, at most that one from now on (for tests of each path the CPU has: a cache is made
 * for the level of its mm_cache_size). */
static PyObject *mm_level(PyObject *self, PyObject *args) {
    int level = -1;
    if (!PyArg_ParseTuple(args, "|i", &level)) return NULL;
    mm_detect();
    if (level >= 0) mm_isa = level < mm_cpu ? level : mm_cpu;
    return PyLong_FromLong(mm_isa);
}

static void mm_sums(int32_t *sums, const int16_t *a, const int16_t *w2, Py_ssize_t kp, Py_ssize_t nv, int P) {
#ifdef MM_AVX2
    if (mm_isa >= 1) { /* (AVX2: on AVX-512 VNNI mm_grouped takes quads, not pairs) */
        if (P == 1) {
            mm_sums_avx2_1(sums, a, w2, kp, nv);
            return;
        }
        for (int p = 0; p < P; p += 4) mm_sums_avx2_4(sums + p * nv * MM_LANES, a + p * kp, w2, kp, nv);
        return;
    }
#endif
    mm_sums_plain(sums, a, w2, kp, nv, P);
}

/* The layout of mm's cache for (N, K, cg, ng): a header (byte 0: 1 once made), the weights' bytes
 * it was made from and their relaid copy: per group (mm_relayout), or for a depthwise tile (cg =
 * ng = 1: channel n reads slab channel n) the (taps, width) int16 transpose. */
typedef struct {
    Py_ssize_t K, kp, kq, groups, nv, width, copy, relaid, row_sums, size; /* copy, relaid, row_sums: byte offsets */
    int depthwise, quads; /* quads: biased bytes against int8 quads (AVX-512 VNNI), else int16 pairs */
    int wide;             /* int16 weights (a depthwise tile's only): 2-byte rows in the copy, int32 products */
} MmLayout;

static MmLayout mm_layout(Py_ssize_t N, Py_ssize_t taps, Py_ssize_t cg, Py_ssize_t ng, int wide) {
    MmLayout l;
    mm_detect();
    l.wide = wide;
    l.depthwise = cg == 1 && ng == 1;
    l.quads = !l.depthwise && mm_isa == 2;
    l.K = taps * cg;
    l.kp = (l.K + 1) / 2 * 2;
    l.kq = (l.K + 3) / 4 * 4;
    l.groups = (N + ng - 1) / ng;
    l.nv = ((ng < N ? ng : N) + MM_LANES - 1) / MM_LANES;
    l.width = l.depthwise ? (N + 15) / 16 * 16 : l.nv * MM_LANES;
    l.copy = 64;
    l.relaid = l.copy + (N * l.K * (wide ? 2 : 1) + 63) / 64 * 64;
    l.row_sums = l.relaid + (l.depthwise ? taps * l.width * (Py_ssize_t)sizeof(int16_t)
                             : l.quads ? l.groups * l.kq * l.width
                                       : l.groups * l.kp * l.width * (Py_ssize_t)sizeof(int16_t));
    l.row_sums = (l.row_sums + 63) / 64 * 64;
    l.size = l.row_sums + (l.quads ? N * (Py_ssize_t)sizeof(int32_t) : 0);
    return l;
}

/* mm_cache_size(N, taps, cg, ng[, wide]) -> bytes: the size of mm's ``cache`` for such a tile (wide:
 * of int16 weights). */
static PyObject *mm_cache_size(PyObject *self, PyObject *args) {
    Py_ssize_t N, taps, cg, ng;
    int wide = 0;
    if (!PyArg_ParseTuple(args, "nnnn|p", &N, &taps, &cg, &ng, &wide)) return NULL;
    if (N < 1 || taps < 1 || cg < 1 || ng < 1 || taps * cg > MM_MAX_K) {
        PyErr_SetString(PyExc_ValueError, "mm_cache_size: N, taps, cg, ng >= 1, taps * cg <= MM_MAX_K");
        return NULL;
    }
    return PyLong_FromSsize_t(mm_layout(N, taps, cg, ng, wide).size);
}

/* One mm call: its operands (byte strides), the cache, scratch and what went wrong. */
typedef struct {
    char *out;
    Py_ssize_t os0, os1, os2;
    const char *x;
    Py_ssize_t xs0, xs1, pixels;
    const int64_t *index;     /* int64 or (index32) int32 */
    const int32_t *index32;
    Py_ssize_t M, taps, pad;
    const char *w;
    Py_ssize_t ws0, ws1;
    Py_ssize_t samples, N, cg, ng;
    Py_ssize_t b; /* the sample being computed */
    int32_t zp;
    int accumulate;
    char *cache;
    MmLayout l;
    const int8_t **tap_px;    /* a depthwise pixel's taps: their slab pixels (NULL: padding) */
    int16_t *a;               /* MM_PIXELS windows of kp int16 */
    int32_t *sums, *results; /* MM_PIXELS * width sums; samples * M * N staged results (accumulate) */
    Py_ssize_t first_bad;     /* the first result outside int32 (row-major), or -1 */
    int64_t bad_value;
    int bad_index;            /* an index outside the slab */
} MmCall;

/* Sample b's weights: the cache's if its bytes are those the cache was made from, else relaid anew. */
static void mm_weights(MmCall *c, Py_ssize_t b) {
    const MmLayout *l = &c->l;
    const char *wb = c->w + b * c->ws0;
    int same = c->cache[0] == 1;
    const Py_ssize_t bytes = l->K * (l->wide ? 2 : 1); /* a row's */
    for (Py_ssize_t n = 0; same && n < c->N; n++) same = !memcmp(c->cache + l->copy + n * bytes, wb + n * c->ws1, bytes);
    if (same) return;
    for (Py_ssize_t n = 0; n < c->N; n++) memcpy(c->cache + l->copy + n * bytes, wb + n * c->ws1, bytes);
    int16_t *relaid = (int16_t *)(c->cache + l->relaid);
    if (l->depthwise) {
        memset(relaid, 0, c->taps * l->width * sizeof(int16_t));
        for (Py_ssize_t n = 0; n < c->N; n++)
            for (Py_ssize_t t = 0; t < c->taps; t++) {
                const char *at = wb + n * c->ws1;
                int16_t v;
                if (l->wide)
                    memcpy(&v, at + 2 * t, 2);
                else
                    v = ((const int8_t *)at)[t];
                relaid[t * l->width + n] = v;
            }
    } else {
        for (Py_ssize_t g = 0; g < l->groups; g++) {
            Py_ssize_t count = (g + 1) * c->ng < c->N ? c->ng : c->N - g * c->ng;
            if (l->quads)
                mm_relayout_quads((int8_t *)(c->cache + l->relaid) + g * l->kq * l->width,
                                  (int32_t *)(c->cache + l->row_sums) + g * c->ng, wb + g * c->ng * c->ws1, c->ws1,
                                  count, l->K, l->kq, l->nv);
            else
                mm_relayout(relaid + g * l->kp * l->width, wb + g * c->ng * c->ws1, c->ws1, count, l->K, l->kp, l->nv);
        }
    }
    c->cache[0] = 1;
}

/* ``count`` sums of pixel m of sample b from channel n0 into out (accumulating: added, checked and
 * staged in results). */
static inline void mm_store(MmCall *c, Py_ssize_t b, Py_ssize_t m, Py_ssize_t n0, const int32_t *sums,
                            Py_ssize_t count) {
    char *row = c->out + b * c->os0 + m * c->os1 + n0 * c->os2;
    if (!c->accumulate) {
        if (c->os2 == 4)
            memcpy(row, sums, count * sizeof(int32_t));
        else
            for (Py_ssize_t j = 0; j < count; j++) *(int32_t *)(row + j * c->os2) = sums[j];
        return;
    }
    const Py_ssize_t flat = (b * c->M + m) * c->N + n0;
    for (Py_ssize_t j = 0; j < count; j++) {
        int64_t v = (int64_t)sums[j] + *(const int32_t *)(row + j * c->os2);
        if ((v > INT32_MAX || v < INT32_MIN) && (c->first_bad < 0 || flat + j < c->first_bad))
            c->first_bad = flat + j, c->bad_value = v;
        c->results[flat + j] = (int32_t)v;
    }
}

/* Pixel m's tap t: its slab pixel's bytes, NULL for padding; sets bad_index outside the slab. */
static inline const int8_t *mm_tap(MmCall *c, const char *xb, Py_ssize_t m, Py_ssize_t t) {
    int64_t i = c->index32 ? c->index32[m * c->taps + t] : c->index[m * c->taps + t];
    if (i == c->pad) return NULL;
    if (i < 0 || i >= c->pixels) {
        c->bad_index = 1;
        return NULL;
    }
    return (const int8_t *)(xb + i * c->xs1);
}

/* ``count`` (at most CHUNK) channels from n0 of one output pixel of a depthwise tile: each tap's
 * products PRODUCT(x - zp, w) summed in int32 lanes (a fixed CHUNK: registers).  The lanes' loop is
 * kept a loop ("unroll 1"): gcc unrolls one of 16 or fewer before it vectorizes, and left the
 * unrolled 8 lanes scalar. */
#define MM_DEPTHWISE_LANES(NAME, CHUNK, PRODUCT)                                                            \
    static inline void NAME(int32_t *restrict sums, const int8_t *const *px, Py_ssize_t taps,                \
                            const int16_t *restrict relaid, Py_ssize_t width, Py_ssize_t n0, int32_t zp) {  \
        int32_t acc[CHUNK] = {0};                                                                            \
        for (Py_ssize_t t = 0; t < taps; t++) {                                                              \
            if (!px[t]) continue;                                                                            \
            const int8_t *restrict x = px[t] + n0;                                                           \
            const int16_t *restrict wt = relaid + t * width + n0;                                            \
            _Pragma("GCC unroll 1")                                                                          \
            for (int j = 0; j < CHUNK; j++) acc[j] += PRODUCT(x[j] - zp, wt[j]);                             \
        }                                                                                                    \
        memcpy(sums + n0, acc, sizeof acc);                                                                  \
    }

/* int8 weights: each product in int16 (it fits: |x - zp| * |w| <= 255 * 128). */
#define MM_PRODUCT_16(d, w) ((int16_t)((d) * (w)))
MM_DEPTHWISE_LANES(mm_depthwise_32, 32, MM_PRODUCT_16)
MM_DEPTHWISE_LANES(mm_depthwise_16, 16, MM_PRODUCT_16)
MM_DEPTHWISE_LANES(mm_depthwise_8, 8, MM_PRODUCT_16)

/* int16 weights: each product in int32 (|x - zp| * |w| <= 255 * 2**15), their sum over at most
 * MM_WIDE_TAPS taps within int32. */
#define MM_WIDE_TAPS 256
#define MM_PRODUCT_32(d, w) ((d) * (int32_t)(w))
MM_DEPTHWISE_LANES(mm_depthwise_wide_32, 32, MM_PRODUCT_32)
MM_DEPTHWISE_LANES(mm_depthwise_wide_16, 16, MM_PRODUCT_32)
MM_DEPTHWISE_LANES(mm_depthwise_wide_8, 8, MM_PRODUCT_32)

/* A depthwise tile, pixel by pixel: its taps' slab pixels, then the channels 32, 16, then 8 at a time
 * and the last few one by one (reading no byte past channel N - 1 of a slab pixel). */
CLONES static void mm_depthwise(MmCall *c) {
    const Py_ssize_t N = c->N, width = c->l.width, taps = c->taps;
    const int16_t *relaid = (const int16_t *)(c->cache + c->l.relaid);
    int32_t *restrict sums = c->sums;
    const int8_t **px = c->tap_px;
    const int32_t zp = c->zp;
    for (Py_ssize_t b = 0; b < c->samples; b++) {
        if (b == 0 || c->ws0 != 0) mm_weights(c, b);
        const char *xb = c->x + b * c->xs0;
        for (Py_ssize_t m = 0; m < c->M; m++) {
            for (Py_ssize_t t = 0; t < taps; t++) {
                px[t] = mm_tap(c, xb, m, t);
                if (c->bad_index) return;
            }
            Py_ssize_t n0 = 0;
            if (c->l.wide) {
                for (; n0 + 32 <= N; n0 += 32) mm_depthwise_wide_32(sums, px, taps, relaid, width, n0, zp);
                for (; n0 + 16 <= N; n0 += 16) mm_depthwise_wide_16(sums, px, taps, relaid, width, n0, zp);
                for (; n0 + 8 <= N; n0 += 8) mm_depthwise_wide_8(sums, px, taps, relaid, width, n0, zp);
            }
            for (; n0 + 32 <= N; n0 += 32) mm_depthwise_32(sums, px, taps, relaid, width, n0, zp);
            for (; n0 + 16 <= N; n0 += 16) mm_depthwise_16(sums, px, taps, relaid, width, n0, zp);
            for (; n0 + 8 <= N; n0 += 8) mm_depthwise_8(sums, px, taps, relaid, width, n0, zp);
            for (; n0 < N; n0++) {
                int32_t acc = 0;
                for (Py_ssize_t t = 0; t < taps; t++)
                    if (px[t]) acc += (px[t][n0] - zp) * relaid[t * width + n0];
                sums[n0] = acc;
            }
            mm_store(c, b, m, 0, sums, N);
        }
    }
}

/* mm_grouped's step on AVX-512 VNNI: group g's windows of P pixels from m0 as biased bytes (x + 128;
 * zp + 128 for padding: (zp + 128) - (zp + 128) adds nothing; zeros past K, where the weights are
 * zero), their sums with the group's weight quads, less (zp + 128) times each channel's weight sum
 * (every term fits int32: at most K * 255 * 128 < 2**31), stored. */
static void mm_quad_windows(MmCall *c, const char *xb, Py_ssize_t m0, Py_ssize_t pixels, int P, Py_ssize_t g) {
#ifdef MM_AVX2
    const MmLayout *l = &c->l;
    const Py_ssize_t kq = l->kq, cg = c->cg, ng = c->ng, N = c->N;
    uint8_t *a = (uint8_t *)c->a;
    const uint8_t bias_pad = (uint8_t)(c->zp + 128);
    for (Py_ssize_t p = 0; p < P; p++) {
        uint8_t *restrict row = a + p * kq;
        if (p >= pixels) {
            memset(row, 0, kq);
            continue;
        }
        for (Py_ssize_t k = l->K; k < kq; k++) row[k] = 0;
        for (Py_ssize_t t = 0; t < c->taps; t++) {
            const int8_t *restrict px = mm_tap(c, xb, m0 + p, t);
            if (c->bad_index) return;
            uint8_t *restrict to = row + t * cg;
            if (!px) {
                memset(to, bias_pad, cg);
                continue;
            }
            px += g * cg;
            if (cg <= 4) {
                for (int ci = 0; ci < 4; ci++)
                    if (ci < cg) to[ci] = (uint8_t)px[ci] ^ 0x80;
            } else {
                for (Py_ssize_t ci = 0; ci < cg; ci++) to[ci] = (uint8_t)px[ci] ^ 0x80;
            }
        }
    }
    const int8_t *quads = (const int8_t *)(c->cache + l->relaid) + g * kq * l->width;
    if (P == 1)
        mm_quads_1(c->sums, a, quads, kq, l->nv);
    else if (P == 4)
        mm_quads_4(c->sums, a, quads, kq, l->nv);
    else
        mm_quads_8(c->sums, a, quads, kq, l->nv);
    const Py_ssize_t n0 = g * ng, count = (g + 1) * ng < N ? ng : N - n0;
    const int32_t *row_sums = (const int32_t *)(c->cache + l->row_sums) + n0;
    const int64_t bias = c->zp + 128;
    for (Py_ssize_t p = 0; p < pixels; p++) {
        int32_t *sums = c->sums + p * l->width;
        for (Py_ssize_t j = 0; j < count; j++) sums[j] = (int32_t)((int64_t)sums[j] - bias * row_sums[j]);
        mm_store(c, c->b, m0 + p, n0, sums, count);
    }
#else
    (void)c, (void)xb, (void)m0, (void)pixels, (void)P, (void)g;
#endif
}

/* A gemm, conv or gconv tile: MM_PIXELS pixels' windows of a group gathered as int16 (x - zp, zeros
 * for padding and past K), then their sums with the group's relaid weights. */
CLONES static void mm_grouped(MmCall *c) {
    const MmLayout *l = &c->l;
    const Py_ssize_t kp = l->kp, cg = c->cg, ng = c->ng, N = c->N;
    const int16_t *relaid = (const int16_t *)(c->cache + l->relaid);
    const int32_t zp = c->zp;
    for (Py_ssize_t b = 0; b < c->samples; b++) {
        c->b = b;
        if (b == 0 || c->ws0 != 0) mm_weights(c, b);
        const char *xb = c->x + b * c->xs0;
        for (Py_ssize_t m0 = 0; m0 < c->M; m0 += MM_PIXELS) {
            const Py_ssize_t pixels = c->M - m0 < MM_PIXELS ? c->M - m0 : MM_PIXELS;
            const int P = pixels == 1 ? 1 : pixels <= 4 ? 4 : MM_PIXELS;
            for (Py_ssize_t g = 0; g < l->groups; g++) {
                if (l->quads) {
                    mm_quad_windows(c, xb, m0, pixels, P, g);
                    if (c->bad_index) return;
                    continue;
                }
                for (Py_ssize_t p = 0; p < P; p++) {
                    int16_t *restrict row = c->a + p * kp;
                    row[kp - 1] = 0;
                    if (p >= pixels) {
                        memset(row, 0, kp * sizeof(int16_t));
                        continue;
                    }
                    for (Py_ssize_t t = 0; t < c->taps; t++) {
                        const int8_t *restrict px = mm_tap(c, xb, m0 + p, t);
                        if (c->bad_index) return;
                        int16_t *restrict to = row + t * cg;
                        if (!px) {
                            memset(to, 0, cg * sizeof(int16_t));
                            continue;
                        }
                        px += g * cg;
                        if (cg <= 4) { /* a stem's few channels: a fixed loop, no vector prologue */
                            for (int ci = 0; ci < 4; ci++)
                                if (ci < cg) to[ci] = (int16_t)(px[ci] - zp);
                        } else {
                            for (Py_ssize_t ci = 0; ci < cg; ci++) to[ci] = (int16_t)(px[ci] - zp);
                        }
                    }
                }
                mm_sums(c->sums, c->a, relaid + g * kp * l->width, kp, l->nv, P);
                const Py_ssize_t n0 = g * ng, count = (g + 1) * ng < N ? ng : N - n0;
                for (Py_ssize_t p = 0; p < pixels; p++) mm_store(c, b, m0 + p, n0, c->sums + p * l->width, count);
            }
        }
    }
}

/* mm's operands, checked and held (mm_setup), with its scratch: what a call and an MM step share. */
typedef struct {
    Held o, x, ix, w, ca;
    MmCall c;
    char *scratch;
} MmHeld;

static void mm_release(MmHeld *h) {
    PyMem_Free(h->scratch);
    h->scratch = NULL;
    release(&h->o);
    release(&h->x);
    release(&h->ix);
    release(&h->w);
    release(&h->ca);
}

/* mm's operand checks (see mm below) and its scratch: 0, or -1 with an exception set (mm_release
 * releases what it held either way). */
static int mm_setup(MmHeld *h, PyObject *oo, PyObject *xo, PyObject *io, PyObject *wo, long long zp, Py_ssize_t cg,
                    Py_ssize_t ng, Py_ssize_t pad, int accumulate, PyObject *co) {
    memset(h, 0, sizeof *h);
    if (get_view(oo, &h->o, 1, 4, "out") < 0 || get_view(xo, &h->x, 0, 1, "x") < 0 ||
        get_view(io, &h->ix, 0, -1, "index") < 0 || get_view(wo, &h->w, 0, -3, "weights") < 0 ||
        get_view(co, &h->ca, 1, 1, "cache") < 0)
        return -1;
    const Py_buffer *o = &h->o.view, *x = &h->x.view, *ix = &h->ix.view, *w = &h->w.view, *ca = &h->ca.view;
    MmCall *c = &h->c;
    if (o->ndim != 3 || x->ndim != 3 || ix->ndim != 2 || w->ndim != 3 || ca->ndim != 1) goto bad;
    c->samples = o->shape[0], c->M = o->shape[1], c->N = o->shape[2], c->taps = ix->shape[1];
    if (cg < 1 || ng < 1 || c->N < 1 || c->taps < 1 || zp < -128 || zp > 127 || c->taps * cg > MM_MAX_K) goto bad;
    const int wide = w->itemsize == 2; /* int16 weights: a depthwise tile of at most MM_WIDE_TAPS taps */
    if (wide && (cg != 1 || ng != 1 || c->taps > MM_WIDE_TAPS)) goto bad;
    c->l = mm_layout(c->N, c->taps, cg, ng, wide);
    if (ix->shape[0] != c->M || x->shape[0] != c->samples || w->shape[0] != c->samples || w->shape[1] != c->N ||
        w->shape[2] != c->l.K || x->strides[2] != 1 || (w->shape[2] > 1 && w->strides[2] != w->itemsize) || c->l.groups * cg > x->shape[2] ||
        !PyBuffer_IsContiguous(ix, 'C') || !PyBuffer_IsContiguous(ca, 'C') || ca->len != c->l.size)
        goto bad;
    /* scratch: a pixel's taps, MM_PIXELS windows' sums, the staged results when accumulating, the windows */
    const Py_ssize_t staged = accumulate ? c->samples * c->M * c->N : 0;
    h->scratch = PyMem_Malloc(c->taps * sizeof(int8_t *) + (MM_PIXELS * c->l.width + staged) * sizeof(int32_t) +
                              MM_PIXELS * c->l.kp * sizeof(int16_t));
    if (!h->scratch) {
        PyErr_NoMemory();
        return -1;
    }
    c->out = o->buf, c->os0 = o->strides[0], c->os1 = o->strides[1], c->os2 = o->strides[2];
    c->x = x->buf, c->xs0 = x->strides[0], c->xs1 = x->strides[1], c->pixels = x->shape[1];
    c->index = ix->itemsize == 8 ? ix->buf : NULL, c->index32 = ix->itemsize == 4 ? ix->buf : NULL, c->pad = pad;
    c->w = w->buf, c->ws0 = w->strides[0], c->ws1 = w->strides[1];
    c->cg = cg, c->ng = ng, c->zp = (int32_t)zp, c->accumulate = accumulate, c->cache = ca->buf;
    c->tap_px = (const int8_t **)h->scratch;
    c->sums = (int32_t *)(h->scratch + c->taps * sizeof(int8_t *)), c->results = c->sums + MM_PIXELS * c->l.width;
    c->a = (int16_t *)(c->results + staged);
    return 0;
bad:
    PyErr_SetString(PyExc_ValueError, "mm: out int32 (samples, M, N), x int8 (samples, pixels, channels), index int32 or int64 "
                                      "(M, taps), w int8 (samples, N, taps * cg <= MM_MAX_K; int16 for a depthwise tile of "
                                      "at most 256 taps), zp in int8, cache of mm_cache_size bytes");
    return -1;
}

/* The product of a set-up call (the weights relaid first where their bytes changed): out written
 * where every result fits int32, else first_bad set and out untouched; bad_index where an index
 * lies outside the slab. */
static void mm_run(MmCall *c) {
    c->first_bad = -1, c->bad_value = 0, c->bad_index = 0;
    if (c->l.depthwise)
        mm_depthwise(c);
    else
        mm_grouped(c);
    if (c->accumulate && c->first_bad < 0 && !c->bad_index)
        for (Py_ssize_t b = 0; b < c->samples; b++)
            for (Py_ssize_t m = 0; m < c->M; m++) {
                char *row = c->out + b * c->os0 + m * c->os1;
                const int32_t *from = c->results + (b * c->M + m) * c->N;
                if (c->os2 == 4)
                    memcpy(row, from, c->N * sizeof(int32_t));
                else
                    for (Py_ssize_t n = 0; n < c->N; n++) *(int32_t *)(row + n * c->os2) = from[n];
            }
}

/* mm(out, x, index, w, zp, cg, ng, pad, accumulate, cache) -> None or (sample, row, column, value)
 *
 * ``matmul``'s sums in gemm, conv, gconv and dwconv form (impl_matrix.py), exact:
 *   out[b, m, n] (+)= sum_t sum_ci (x[b, index[m, t], g * cg + ci] - zp) * w[b, n, t * cg + ci],  g = n // ng
 * x int8 (samples, pixels, channels) with contiguous channels (a gemm: the rows of A, one tap);
 * index (M, taps) int64 or int32 (half the bytes a run reads) contiguous, ``pad`` where a tap
 * reads padding (adding nothing: the zero point's place); w int8 (samples, N, taps * cg) with
 * contiguous rows (sample stride 0: every sample's weights alike), or int16 for a depthwise tile
 * (cg = ng = 1) of at most 256 taps (its products in int32); out int32 (samples, M, N).  With ``accumulate`` the sums are added to
 * out in int64 and nothing is written unless every result fits int32: else the first that does not
 * (row-major) is returned, the accumulator's trap.  Needs taps * cg <= MM_MAX_K and zp in int8.
 * ``cache``: a writable uint8 buffer of mm_cache_size bytes, zeros at first, kept by the caller
 * for this tile: the weights relaid, remade whenever a sample's weight bytes differ from those
 * it was made from (compared every call). */
static PyObject *mm(PyObject *self, PyObject *args) {
    PyObject *oo, *xo, *io, *wo, *co;
    int zp, accumulate;
    Py_ssize_t cg, ng, pad;
    if (!PyArg_ParseTuple(args, "OOOOinnnpO", &oo, &xo, &io, &wo, &zp, &cg, &ng, &pad, &accumulate, &co)) return NULL;
    MmHeld h;
    PyObject *result = NULL;
    if (mm_setup(&h, oo, xo, io, wo, zp, cg, ng, pad, accumulate, co) == 0) {
        MmCall *c = &h.c;
        Py_BEGIN_ALLOW_THREADS
        mm_run(c);
        Py_END_ALLOW_THREADS
        if (c->bad_index)
            PyErr_SetString(PyExc_ValueError, "mm: an index outside the slab");
        else if (c->first_bad < 0)
            result = Py_NewRef(Py_None);
        else
            result = Py_BuildValue("nnnL", c->first_bad / (c->M * c->N), c->first_bad / c->N % c->M,
                                   c->first_bad % c->N, (long long)c->bad_value);
    }
    mm_release(&h);
    return result;
}

/* pool_taps(out, x, index, pad, avg, zp, table, offsets): a ``pool`` tile's windows reduced over
 * their taps, channel by channel (impl_pool.py), out[b, o, ch] =
 *   max (avg 0): the largest x[b, index[o, t], ch] over the taps t with index[o, t] != pad (a window
 *     has one at least: the caller checks; padding, -128, never exceeds an in-slab value);
 *   avg (1): table[offsets[o] + sum over those taps of (x[b, index[o, t], ch] - zp)], the sum exact
 *     in int32 (taps * 255 < 2**31), the table the rounded mean of every sum (rule_tables.py).
 * x int8 (samples, pixels, channels) and out int8 (samples, outputs, channels) with contiguous
 * channels; index (outputs, taps) int64 contiguous; table int8 contiguous, offsets int32 (outputs,)
 * (None for max).  ValueError where an index or a table position lies outside (nothing read there). */
/* One output's channels from ch on, W at a time (a fixed W: the lanes stay in registers), over its
 * taps' slab pixels px (NULL: padding). */
#define POOL_CHUNKS(NAME, W)                                                                                \
    static inline Py_ssize_t NAME(int8_t *out, int32_t *sums, const int8_t *const *px, Py_ssize_t taps,     \
                                  Py_ssize_t ch, Py_ssize_t C, int avg, int32_t zp) {                        \
        for (; ch + W <= C; ch += W) {                                                                       \
            if (!avg) {                                                                                      \
                int8_t best[W];                                                                              \
                for (int j = 0; j < W; j++) best[j] = INT8_MIN;                                              \
                for (Py_ssize_t t = 0; t < taps; t++)                                                        \
                    if (px[t])                                                                               \
                        for (int j = 0; j < W; j++) best[j] = px[t][ch + j] > best[j] ? px[t][ch + j] : best[j]; \
                memcpy(out + ch, best, W);                                                                   \
            } else {                                                                                         \
                int32_t sum[W] = {0};                                                                        \
                for (Py_ssize_t t = 0; t < taps; t++)                                                        \
                    if (px[t])                                                                               \
                        for (int j = 0; j < W; j++) sum[j] += px[t][ch + j] - zp;                            \
                memcpy(sums + ch, sum, sizeof sum);                                                          \
            }                                                                                                \
        }                                                                                                    \
        return ch;                                                                                           \
    }
POOL_CHUNKS(pool_chunks_32, 32)
POOL_CHUNKS(pool_chunks_16, 16)
POOL_CHUNKS(pool_chunks_8, 8)
POOL_CHUNKS(pool_chunks_1, 1)

/* One output of a pool tile (pool_taps): its taps' pixels, the channels reduced, an average's sums
 * looked up in the table; -1 for an index outside the slab, -2 for a sum outside the table. */
CLONES static int pool_rows(int8_t *out, const char *xb, Py_ssize_t ps, Py_ssize_t pixels, const int64_t *index,
                            Py_ssize_t taps, int64_t pad, Py_ssize_t C, int avg, int32_t zp, const int8_t *table,
                            Py_ssize_t table_len, int32_t offset, int32_t *sums, const int8_t **px) {
    for (Py_ssize_t t = 0; t < taps; t++) {
        px[t] = NULL;
        if (index[t] == pad) continue;
        if (index[t] < 0 || index[t] >= pixels) return -1;
        px[t] = (const int8_t *)(xb + index[t] * ps);
    }
    Py_ssize_t ch = pool_chunks_32(out, sums, px, taps, 0, C, avg, zp);
    ch = pool_chunks_16(out, sums, px, taps, ch, C, avg, zp);
    ch = pool_chunks_8(out, sums, px, taps, ch, C, avg, zp);
    pool_chunks_1(out, sums, px, taps, ch, C, avg, zp);
    if (!avg) return 0;
    int bad = 0;
    for (ch = 0; ch < C; ch++) {
        int64_t at = (int64_t)sums[ch] + offset;
        bad |= at < 0 || at >= table_len;
        out[ch] = table[at < 0 || at >= table_len ? 0 : at];
    }
    return bad ? -2 : 0;
}

static PyObject *pool_taps(PyObject *self, PyObject *args) {
    PyObject *oo, *xo, *io, *to, *fo;
    Py_ssize_t pad;
    int avg, zp;
    if (!PyArg_ParseTuple(args, "OOOnpiOO", &oo, &xo, &io, &pad, &avg, &zp, &to, &fo)) return NULL;
    Held o = {0}, x = {0}, ix = {0}, t = {0}, f = {0};
    PyObject *result = NULL;
    char *scratch = NULL;
    if (get_view(oo, &o, 1, 1, "out") < 0 || get_view(xo, &x, 0, 1, "x") < 0 || get_view(io, &ix, 0, 8, "index") < 0)
        goto done;
    if (avg && (get_view(to, &t, 0, 1, "table") < 0 || get_view(fo, &f, 0, 4, "offsets") < 0)) goto done;
    if (o.view.ndim != 3 || x.view.ndim != 3 || ix.view.ndim != 2 || o.view.shape[0] != x.view.shape[0] ||
        o.view.shape[1] != ix.view.shape[0] || o.view.shape[2] != x.view.shape[2] || o.view.strides[2] != 1 ||
        x.view.strides[2] != 1 || !PyBuffer_IsContiguous(&ix.view, 'C') || ix.view.shape[1] >= (1 << 23) ||
        (avg && (t.view.ndim != 1 || !PyBuffer_IsContiguous(&t.view, 'C') || f.view.ndim != 1 ||
                 f.view.shape[0] != ix.view.shape[0] || !PyBuffer_IsContiguous(&f.view, 'C')))) {
        PyErr_SetString(PyExc_ValueError, "pool_taps: out int8 (samples, outputs, channels), x int8 (samples, "
                                          "pixels, channels), index int64 (outputs, taps < 2**23), table int8, "
                                          "offsets int32 (outputs,)");
        goto done;
    }
    const Py_ssize_t samples = o.view.shape[0], outputs = o.view.shape[1], C = o.view.shape[2], taps = ix.view.shape[1];
    scratch = PyMem_Malloc(taps * sizeof(int8_t *) + (C + 1) * sizeof(int32_t)); /* the taps' pixels, the sums */
    if (!scratch) {
        PyErr_NoMemory();
        goto done;
    }
    int bad = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t b = 0; !bad && b < samples; b++)
        for (Py_ssize_t r = 0; !bad && r < outputs; r++)
            bad = pool_rows((int8_t *)o.view.buf + b * o.view.strides[0] + r * o.view.strides[1],
                            (const char *)x.view.buf + b * x.view.strides[0], x.view.strides[1], x.view.shape[1],
                            (const int64_t *)ix.view.buf + r * taps, taps, pad, C, avg, zp,
                            avg ? t.view.buf : NULL, avg ? t.view.shape[0] : 0,
                            avg ? ((const int32_t *)f.view.buf)[r] : 0,
                            (int32_t *)(scratch + taps * sizeof(int8_t *)), (const int8_t **)scratch);
    Py_END_ALLOW_THREADS
    if (bad)
        PyErr_SetString(PyExc_ValueError, bad == -1 ? "pool_taps: an index outside the slab"
                                                    : "pool_taps: a window sum outside the table");
    else
        result = Py_NewRef(Py_None);
done:
    PyMem_Free(scratch);
    release(&o);
    release(&x);
    release(&ix);
    release(&t);
    release(&f);
    return result;
}

/* requant_wide(x, out, table, src_zp, pre_shift, zp, qmin, qmax, mode) -> bool: ``requant``'s stage
 * (same arguments, no row shifts) on int32 x where no lane can be refused, checked once per call:
 * every int32 x gives |(x - src_zp) << pre_shift| <= (2**31 + |src_zp|) << pre_shift, which plus the
 * largest |bias| must be within every channel's bound (|v * multiplier| < 2**62), multipliers and
 * shifts non-negative.  Then the lanes skip requant's per-lane checks (a third of their work) and
 * compute exactly what requant computes; False (nothing written) where that is not proven: the
 * caller runs requant, which checks each lane. */
#define REQUANT_WIDE_LANES(NAME, OUT, ROUND, AT)                                                        \
    CLONES static void NAME(const int32_t *restrict x, OUT *restrict out, Py_ssize_t n, const Stage *st) { \
        const int64_t *restrict bias = st->bias, *restrict mult = st->mult;                               \
        const int64_t *restrict shift = st->shift, *restrict halves = st->half;                           \
        const int64_t src_zp = st->src_zp, pre_shift = st->pre_shift, zp = st->zp;                        \
        const int64_t qmin = st->qmin, qmax = st->qmax;                                                   \
        for (Py_ssize_t c = 0; c < n; c++) {                                                              \
            int64_t p = ((int64_t)((uint64_t)((int64_t)x[c] - src_zp) << pre_shift) + bias[AT]) * mult[AT]; \
            int64_t s = shift[AT], half = halves[AT], one = s > 0;                                        \
            (void)one, (void)half;                                                                        \
            int64_t q = ROUND(p, s, half, one) + zp;                                                      \
            q = q < qmin ? qmin : q;                                                                      \
            q = q > qmax ? qmax : q;                                                                      \
            out[c] = (OUT)q;                                                                              \
        }                                                                                                 \
    }
#define REQUANT_WIDE_MODES(OUT, SUFFIX, AT)                                        \
    REQUANT_WIDE_LANES(requant_wide_even_##SUFFIX, OUT, ROUND_HALF_EVEN, AT)       \
    REQUANT_WIDE_LANES(requant_wide_up_##SUFFIX, OUT, ROUND_HALF_UP, AT)           \
    REQUANT_WIDE_LANES(requant_wide_away_##SUFFIX, OUT, ROUND_HALF_AWAY, AT)       \
    REQUANT_WIDE_LANES(requant_wide_floor_##SUFFIX, OUT, ROUND_FLOOR, AT)
REQUANT_WIDE_MODES(int8_t, 8, c)
REQUANT_WIDE_MODES(int32_t, 32, c)
REQUANT_WIDE_MODES(int8_t, 8_uniform, 0)
REQUANT_WIDE_MODES(int32_t, 32_uniform, 0)

#define WIDE_KERNELS(SUFFIX)                                                                               \
    {(WideKernel)requant_wide_even_##SUFFIX, (WideKernel)requant_wide_up_##SUFFIX,                          \
     (WideKernel)requant_wide_away_##SUFFIX, (WideKernel)requant_wide_floor_##SUFFIX}
static const WideKernel requant_wide_kernels[2][2][4] = {/* [uniform][int32 out][mode] */
                                                         {WIDE_KERNELS(8), WIDE_KERNELS(32)},
                                                         {WIDE_KERNELS(8_uniform), WIDE_KERNELS(32_uniform)}};

/* Whether no int32 lane can be refused with these parameters (``table``: native.requant_parameters'). */
static int wide_proven(const int64_t *table, Py_ssize_t channels, long long src_zp, int pre_shift, long long qmin,
                       long long qmax) {
    int proven = pre_shift >= 0 && pre_shift <= 29 && src_zp > -(INT64_C(1) << 31) && src_zp < (INT64_C(1) << 31) &&
                 qmin <= qmax;
    /* |x - src_zp| < 2**32, shifted by at most 29: below 2**61, and every |bias| < 2**61 below: v < 2**62 */
    const int64_t largest_d = proven ? ((INT64_C(1) << 31) + (src_zp < 0 ? -src_zp : src_zp)) << pre_shift : 0;
    for (Py_ssize_t c = 0; proven && c < channels; c++) {
        int64_t b = table[BIAS * channels + c] < 0 ? -table[BIAS * channels + c] : table[BIAS * channels + c];
        proven = table[MULT * channels + c] >= 0 && table[SHIFT * channels + c] >= 0 &&
                 table[SHIFT * channels + c] <= INT32_MAX && b < (INT64_C(1) << 61) &&
                 largest_d + b <= table[BOUND * channels + c];
    }
    return proven;
}

/* A set-up call's lanes without per-lane checks where no int32 lane can be refused (wide_proven). */
static void requant_allow_wide(RequantCall *k, long long src_zp, int pre_shift, long long qmin, long long qmax,
                               int mode) {
    if (k->x.view.itemsize == 4 && k->ok && wide_proven(k->t.view.buf, k->channels, src_zp, pre_shift, qmin, qmax))
        k->wide = requant_wide_kernels[k->channels < k->cols][k->o.view.itemsize == 4][mode];
}

static PyObject *requant_wide(PyObject *self, PyObject *args) {
    PyObject *xo, *oo, *to;
    long long src_zp, zp, qmin, qmax;
    int pre_shift, mode;
    if (!PyArg_ParseTuple(args, "OOOLiLLLi", &xo, &oo, &to, &src_zp, &pre_shift, &zp, &qmin, &qmax, &mode)) return NULL;
    RequantCall k;
    PyObject *result = NULL;
    if (requant_setup(&k, xo, oo, to, src_zp, pre_shift, zp, qmin, qmax, mode, NULL, 0) == 0) {
        if (k.x.view.itemsize != 4) {
            PyErr_SetString(PyExc_ValueError, "requant_wide: x of 4-byte items expected");
        } else {
            requant_allow_wide(&k, src_zp, pre_shift, qmin, qmax, mode);
            if (k.wide) {
                Py_BEGIN_ALLOW_THREADS
                requant_run(&k); /* (no lane can be refused) */
                Py_END_ALLOW_THREADS
            }
            result = PyBool_FromLong(k.wide != NULL);
        }
    }
    requant_release(&k);
    return result;
}

/* === end of the matrix-side kernels ============================================================ */

/* --- the input's quantization ------------------------------------------------------------- */

/* ONNX QuantizeLinear of float32 by one float32 scale (numerics.quantize_affine): the quotient in
 * float32, rounded half to even (rintf in the default rounding mode), NaN giving the zero point,
 * clamped to [qmin, qmax] (+-inf saturating).  lo = qmin - zp and hi = qmax - zp are integers below
 * 2**24, exact in float32: the clamp before the add is the clamp after it. */
CLONES static void quantize_row(int8_t *restrict out, const float *restrict x, Py_ssize_t n, float scale, float lo,
                                float hi, int32_t zp) {
    for (Py_ssize_t i = 0; i < n; i++) {
        float t = rintf(x[i] / scale);
        t = t < lo ? lo : t > hi ? hi : t;
        out[i] = (int8_t)((t == t ? (int32_t)t : 0) + zp);
    }
}

/* quantize(out, x, scale, zp, qmin, qmax): out (int8, contiguous) = quantize_row of x (float32,
 * contiguous, out's size); scale a finite positive float32 (given as a double that holds it),
 * qmin <= zp <= qmax and qmin, qmax in int8: the caller checks (numerics.quantize_affine refuses
 * the rest). */
static PyObject *quantize(PyObject *self, PyObject *args) {
    PyObject *oo, *xo;
    double scale;
    int zp, qmin, qmax;
    if (!PyArg_ParseTuple(args, "OOdiii", &oo, &xo, &scale, &zp, &qmin, &qmax)) return NULL;
    Held o = {0}, x = {0};
    PyObject *result = NULL;
    if (get_view(oo, &o, 1, 1, "out") < 0 || get_view(xo, &x, 0, 4, "x") < 0) goto done;
    float s = (float)scale;
    if (!PyBuffer_IsContiguous(&o.view, 'C') || !PyBuffer_IsContiguous(&x.view, 'C') || o.view.len != x.view.len / 4 ||
        (double)s != scale || !(s > 0) || isinf(s) || qmin < -128 || qmax > 127 || qmin > zp || zp > qmax) {
        PyErr_SetString(PyExc_ValueError, "quantize: contiguous int8 out and float32 x of one size, a finite positive "
                                          "float32 scale, -128 <= qmin <= zp <= qmax <= 127");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    quantize_row(o.view.buf, x.view.buf, o.view.len, s, (float)(qmin - zp), (float)(qmax - zp), zp);
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    release(&o);
    release(&x);
    return result;
}

/* --- prepared steps ------------------------------------------------------------------------- */

/* A step: one instruction's action on views of the memories that stay the same run after run, its
 * operands checked and their buffers held once (when a program is prepared), so that running it is
 * a call with no arguments to parse and no buffers to acquire (a fraction of a microsecond less per
 * action than a kernel call: most actions of a small model move a few hundred bytes).
 *   step(STEP_LANES, op, out, a, b[, c])   lanes(op, out, a, b[, c])
 *   step(STEP_PAIR, 0, out, a, b, table)   pair_lookup(out, a, b, table)
 *   step(STEP_GATHER, 0, out, index, table)  out = table[index]: index uint8 (a 256-entry table) or
 *                                          uint16 (65,536 entries), out and table of 1- or 2-byte items
 *   step(STEP_GATHER, 0, out, index, blocks, segments)  a compacted 65,536-entry table (rule_tables.
 *                                          compacted): out = blocks[segments[index >> s] + (index & (2**s - 1))],
 *                                          index uint16, segments int64 (2**(16 - s),), each offset
 *                                          with 2**s entries of blocks after it
 *   step(STEP_COPY, 0, out, source)        out = source (same shape and item size, no overlap)
 *   step(STEP_LUT, 0, out, x, tables)      per sample s: out[s] = tables[s][(byte(x[s]) + 128) % 256]
 *                                          (int8 (samples, length) out, x; (samples, 256) tables)
 *   step(STEP_REQUANT, 0, x, out, table, params, made_from, scalars)  requant's stage (no row shifts;
 *                                          scalars int64: src_zp, pre_shift, zp, qmin, qmax, mode) with
 *                                          ``table`` (native.requant_parameters) while every sample's
 *                                          pbuf ``params`` (samples, channels, 3) int32 hold the bytes
 *                                          ``made_from`` it was made of: True; False, having done
 *                                          nothing, where they differ, or having written garbage,
 *                                          where the spec refuses a lane (the caller's path runs then)
 *   step(STEP_MM, 0, out, x, index, w, cache, scalars)  mm(out, x, index, w, zp, cg, ng, pad, accumulate,
 *                                          cache) (scalars int64: zp, cg, ng, pad, accumulate): True;
 *                                          False, having written nothing, where a result does not fit
 *                                          int32 (the accumulator's trap) or an index lies outside the slab
 *                                          (the caller's path runs mm then, and raises)
 *   step(STEP_EADD, 0, out, a, b, sums, terms, table, scalars)  eadd's stage from its operands' terms:
 *                                          sums = terms[0][byte(a)] + sign * terms[1][byte(b)] (int32 terms
 *                                          (2, 256): each operand's centring and requantization, evaluated by
 *                                          the caller on every int8 value; |terms| summing within int32),
 *                                          then requant's stage of sums into out with ``table`` (scalars
 *                                          int64: sign, zp, qmin, qmax, mode; src_zp and pre_shift 0): True;
 *                                          False, having written garbage, where the spec refuses a lane
 *   step(STEP_REDUCE, op, out, x)          vred: per sample s, out[s, r] = row r of x[s] (its length / out's
 *                                          rows, contiguous uint16 patterns) reduced by op 0 (sum: the
 *                                          pairwise tree, tree_sum_row) or 1 (max, max_row); x read whole
 *                                          before out is written (they may overlap)
 *   step(STEP_VLUT, 0, out, x, tables)     vlut: per sample s, out[s, i] = tables[s][x[s, i] & 0xFF] (uint16
 *                                          (samples, length) out and x, (samples, 256) tables, contiguous
 *                                          rows; the caller keeps out clear of the tables and of x but
 *                                          where it is x itself)
 *   step(STEP_SEQ, 0, first, second, ...)  the steps given (of the kinds above but REDUCE: none that can
 *                                          decline) run in order: an operand tiled into its scratch by a
 *                                          COPY, then the LANES or PAIR step reading the scratch
 * REQUANT, MM and EADD take a last operand more, ``fallback``: a callable (or None) that a run saying
 * False calls (with no arguments) and returns what it returns, so that a plan's action can be the
 * step itself (no Python frame: the caller's path only where the step declines).
 * The other steps cannot fail when they run: everything they could refuse is refused when they
 * are made; they return None. */
enum { STEP_LANES, STEP_PAIR, STEP_GATHER, STEP_COPY, STEP_LUT, STEP_REQUANT, STEP_MM, STEP_EADD, STEP_REDUCE, STEP_VLUT,
       STEP_SEQ, STEP_KINDS };
#define STEP_VIEWS 4

/* Two views of one shape (out and its source) as few axes as they allow: axes of extent 1 dropped
 * and an axis merged into the next where both views step over it as one (numpy's coalescing), so
 * a box of many short rows is one loop where it can be. */
typedef struct {
    int ndim;
    Py_ssize_t shape[MAX_DIMS], out[MAX_DIMS], in[MAX_DIMS];
} Geometry;

static void coalesce(Geometry *g, const Py_buffer *o, const Py_buffer *x) {
    for (int i = 0; i < o->ndim; i++)
        if (o->shape[i] == 0) { /* nothing to move: one axis of extent 0, which the runs check */
            g->ndim = 1, g->shape[0] = 0, g->out[0] = g->in[0] = 0;
            return;
        }
    g->ndim = 0;
    for (int i = 0; i < o->ndim; i++) {
        if (o->shape[i] == 1) continue;
        int d = g->ndim;
        if (d && g->out[d - 1] == o->shape[i] * o->strides[i] && g->in[d - 1] == o->shape[i] * x->strides[i]) {
            g->shape[d - 1] *= o->shape[i]; /* the previous axis steps over this one whole: one axis */
            g->out[d - 1] = o->strides[i];
            g->in[d - 1] = x->strides[i];
            continue;
        }
        g->shape[d] = o->shape[i], g->out[d] = o->strides[i], g->in[d] = x->strides[i];
        g->ndim++;
    }
    if (!g->ndim) { /* one element */
        g->shape[0] = 1, g->out[0] = o->itemsize, g->in[0] = x->itemsize;
        g->ndim = 1;
    }
    int last = g->ndim - 1, longest = last;
    if (g->out[last] != o->itemsize || g->in[last] != x->itemsize) {
        /* not one run on both sides: the longest axis innermost (a transposing copy's few long
         * loops, not many short ones; the order of an element-wise step's elements is free) */
        for (int i = 0; i < last; i++)
            if (g->shape[i] > g->shape[longest]) longest = i;
        Py_ssize_t t;
        t = g->shape[last], g->shape[last] = g->shape[longest], g->shape[longest] = t;
        t = g->out[last], g->out[last] = g->out[longest], g->out[longest] = t;
        t = g->in[last], g->in[last] = g->in[longest], g->in[longest] = t;
    }
}

/* The byte offsets of the next row (all axes but the last) of both views; false after the last. */
static int next_row(const Geometry *g, Py_ssize_t *index, Py_ssize_t *out, Py_ssize_t *in) {
    for (int i = g->ndim - 2; i >= 0; i--) {
        *out += g->out[i], *in += g->in[i];
        if (++index[i] < g->shape[i]) return 1;
        *out -= index[i] * g->out[i], *in -= index[i] * g->in[i];
        index[i] = 0;
    }
    return 0;
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    Held held[STEP_VIEWS];
    LanesCall lanes;
    Geometry geometry; /* gather's and copy's out and source */
    int block_bits;    /* a compacted table's gather: the bits of an index within its block */
    int sign;          /* eadd's: +1 add, -1 sub */
    RequantCall *requant;
    MmHeld *mm;
    PyObject *fallback; /* REQUANT's and MM's: called where the run says False (NULL: none) */
    int op;             /* REDUCE's: 0 sum, 1 max */
    float *scratch;     /* REDUCE's: two levels of a sample's tree (2 * length floats) */
    PyObject *steps;    /* SEQ's: the tuple of steps it runs */
} Step;

/* A requant step's run: its stage where every sample's parameters are the bytes its table was made
 * of (held[0]: params, held[1]: those bytes). */
static int run_requant_step(const Step *st) {
    const Py_buffer *p = &st->held[0].view, *made = &st->held[1].view;
    for (Py_ssize_t b = 0; b < p->shape[0]; b++)
        if (memcmp((const char *)p->buf + b * p->strides[0], made->buf, made->len)) return 0;
    return requant_run(st->requant);
}

/* An EADD step's run (held: a, b, terms, sums): the sums of the operands' terms, then the stage. */
static int run_eadd_step(const Step *st) {
    const Py_buffer *a = &st->held[0].view, *b = &st->held[1].view, *sv = &st->held[3].view;
    const int32_t *ta = st->held[2].view.buf, *tb = ta + 256;
    const Py_ssize_t n = a->shape[1];
    for (Py_ssize_t s = 0; s < a->shape[0]; s++) {
        const uint8_t *pa = (const uint8_t *)a->buf + s * a->strides[0], *pb = (const uint8_t *)b->buf + s * b->strides[0];
        int32_t *sums = (int32_t *)((char *)sv->buf + s * sv->strides[0]);
        if (st->sign > 0)
            for (Py_ssize_t i = 0; i < n; i++) sums[i] = ta[pa[i]] + tb[pb[i]];
        else
            for (Py_ssize_t i = 0; i < n; i++) sums[i] = ta[pa[i]] - tb[pb[i]];
    }
    return requant_run(st->requant);
}

/* An MM step's run: its product, true where out was written (every result fits int32). */
static int run_mm_step(const Step *st) {
    MmCall *c = &st->mm->c;
    mm_run(c);
    return c->first_bad < 0 && !c->bad_index;
}

/* Every leading index of ``v`` (all axes but the last) in turn: ``offset`` its byte offset. */
static int same_geometry(const Py_buffer *a, const Py_buffer *b, const char *what) {
    if (same_shape(a, b, what) < 0) return -1;
    if (a->itemsize != b->itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: item sizes differ", what);
        return -1;
    }
    return 0;
}

/* A compacted table's gather (held[3]: the segments): out's items of 1 or 2 bytes. */
static void run_compact_gather(const Step *st) {
    const Geometry *g = &st->geometry;
    const char *blocks = st->held[2].view.buf;
    const int64_t *segments = st->held[3].view.buf;
    const int shift = st->block_bits;
    const uint32_t mask = (1u << shift) - 1;
    char *out_base = st->held[0].view.buf;
    const char *in_base = st->held[1].view.buf;
    const int last = g->ndim - 1;
    const Py_ssize_t n = g->shape[last], os = g->out[last], xs = g->in[last];
    const int wide_out = st->held[0].view.itemsize == 2;
    Py_ssize_t index[MAX_DIMS] = {0}, out_at = 0, in_at = 0;
    if (n == 0) return;
    do {
        char *out = out_base + out_at;
        const char *in = in_base + in_at;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint32_t at = *(const uint16_t *)(in + i * xs);
            Py_ssize_t entry = segments[at >> shift] + (at & mask);
            if (wide_out)
                *(uint16_t *)(out + i * os) = ((const uint16_t *)blocks)[entry];
            else
                *(uint8_t *)(out + i * os) = ((const uint8_t *)blocks)[entry];
        }
    } while (next_row(g, index, &out_at, &in_at));
}

static void run_gather(const Step *st) {
    if (st->held[3].held) {
        run_compact_gather(st);
        return;
    }
    const Geometry *g = &st->geometry;
    const char *table = st->held[2].view.buf;
    char *out_base = st->held[0].view.buf;
    const char *in_base = st->held[1].view.buf;
    const int last = g->ndim - 1;
    const Py_ssize_t n = g->shape[last], os = g->out[last], xs = g->in[last];
    const int wide_out = st->held[0].view.itemsize == 2, wide_index = st->held[1].view.itemsize == 2;
    Py_ssize_t index[MAX_DIMS] = {0}, out_at = 0, in_at = 0;
    if (n == 0) return;
    do {
        char *out = out_base + out_at;
        const char *in = in_base + in_at;
        if (wide_out && !wide_index && os == 2 && xs == 1) { /* cvt i8_bf16: the common case */
            const uint16_t *t = (const uint16_t *)table;
            for (Py_ssize_t i = 0; i < n; i++) ((uint16_t *)out)[i] = t[((const uint8_t *)in)[i]];
            continue;
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_ssize_t at = wide_index ? *(const uint16_t *)(in + i * xs) : *(const uint8_t *)(in + i * xs);
            if (wide_out)
                *(uint16_t *)(out + i * os) = ((const uint16_t *)table)[at];
            else
                *(uint8_t *)(out + i * os) = ((const uint8_t *)table)[at];
        }
    } while (next_row(g, index, &out_at, &in_at));
}

static void run_copy(const Step *st) {
    const Geometry *g = &st->geometry;
    char *out_base = st->held[0].view.buf;
    const char *in_base = st->held[1].view.buf;
    const int last = g->ndim - 1;
    const Py_ssize_t n = g->shape[last], size = st->held[0].view.itemsize, os = g->out[last], xs = g->in[last];
    Py_ssize_t index[MAX_DIMS] = {0}, out_at = 0, in_at = 0;
    if (n == 0) return;
    do {
        char *out = out_base + out_at;
        const char *in = in_base + in_at;
        if (os == size && xs == size) {
            memmove(out, in, n * size);
            continue;
        }
        switch (size) { /* one fixed-size move per element (the copy's whole elements: bytes, bf16 lanes, words) */
        case 1: for (Py_ssize_t i = 0; i < n; i++) out[i * os] = in[i * xs]; break;
        case 2: for (Py_ssize_t i = 0; i < n; i++) memcpy(out + i * os, in + i * xs, 2); break;
        case 4: for (Py_ssize_t i = 0; i < n; i++) memcpy(out + i * os, in + i * xs, 4); break;
        default: for (Py_ssize_t i = 0; i < n; i++) memcpy(out + i * os, in + i * xs, 8); break;
        }
    } while (next_row(g, index, &out_at, &in_at));
}

static void run_lut(const Held *h) {
    const Py_buffer *o = &h[0].view, *x = &h[1].view, *t = &h[2].view;
    const Py_ssize_t n = o->shape[1];
    for (Py_ssize_t s = 0; s < o->shape[0]; s++) {
        uint8_t *out = (uint8_t *)o->buf + s * o->strides[0];
        const uint8_t *in = (const uint8_t *)x->buf + s * x->strides[0];
        const uint8_t *table = (const uint8_t *)t->buf + s * t->strides[0];
        for (Py_ssize_t i = 0; i < n; i++) out[i] = table[(uint8_t)(in[i] + 128u)];
    }
}

/* A REDUCE step's run (held: out, x): per sample, a sum's tree one level at a time over all its
 * rows at once (a level of even width pairs neighbours across the whole sample: one vectorized
 * pass), each row's max in turn; the results kept in the scratch until the sample's x is read. */
static void run_reduce(const Step *st) {
    const Py_buffer *o = &st->held[0].view, *x = &st->held[1].view;
    const Py_ssize_t length = x->shape[1], rows = o->shape[1], row = length / rows;
    float *level = st->scratch, *spare = st->scratch + length;
    for (Py_ssize_t s = 0; s < x->shape[0]; s++) {
        const uint16_t *in = (const uint16_t *)((const char *)x->buf + s * x->strides[0]);
        uint16_t *out = (uint16_t *)((char *)o->buf + s * o->strides[0]);
        if (st->op == 1) {
            uint16_t *tops = (uint16_t *)spare; /* (rows <= length: fits) */
            const Lanes lx = {(const char *)in, rows, row, row * 2, 2};
            for (Py_ssize_t r = 0; r < rows; r++) tops[r] = max_row(&lx, r);
            memcpy(out, tops, rows * 2);
            continue;
        }
        if (row == 1) { /* a one-lane row is its own sum (tree_sum_row) */
            memmove(out, in, rows * 2);
            continue;
        }
        float *a = level, *b = spare;
        for (Py_ssize_t i = 0; i < length; i++) a[i] = widen(in[i]);
        Py_ssize_t width = row;
        while (width > 1) {
            Py_ssize_t pairs = width / 2, next = width - pairs;
            if (width % 2 == 0)
                pair_sums(b, a, rows * pairs);
            else
                for (Py_ssize_t r = 0; r < rows; r++) {
                    pair_sums(b + r * next, a + r * width, pairs);
                    b[r * next + pairs] = a[r * width + 2 * pairs];
                }
            float *t = a;
            a = b, b = t;
            width = next;
        }
        for (Py_ssize_t r = 0; r < rows; r++) {
            uint32_t u;
            memcpy(&u, &a[r], 4);
            out[r] = (uint16_t)(u >> 16);
        }
    }
}

static void run_vlut(const Held *h) {
    const Py_buffer *o = &h[0].view, *x = &h[1].view, *t = &h[2].view;
    const Py_ssize_t n = o->shape[1];
    for (Py_ssize_t s = 0; s < o->shape[0]; s++) {
        uint16_t *out = (uint16_t *)((char *)o->buf + s * o->strides[0]);
        const uint16_t *in = (const uint16_t *)((const char *)x->buf + s * x->strides[0]);
        const uint16_t *table = (const uint16_t *)((const char *)t->buf + s * t->strides[0]);
        for (Py_ssize_t i = 0; i < n; i++) out[i] = table[in[i] & 0xFF];
    }
}

static void run_infallible(const Step *st);

static PyObject *run_step(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Step *st = (Step *)callable;
    if (PyVectorcall_NARGS(nargsf) || kwnames) {
        PyErr_SetString(PyExc_TypeError, "a step takes no arguments");
        return NULL;
    }
    switch (st->kind) {
    case STEP_LANES: run_lanes(&st->lanes); break;
    case STEP_PAIR: run_pair(st->held); break;
    case STEP_GATHER: run_gather(st); break;
    case STEP_COPY: run_copy(st); break;
    case STEP_REDUCE: run_reduce(st); break;
    case STEP_VLUT: run_vlut(st->held); break;
    case STEP_SEQ: run_infallible(st); break;
    case STEP_REQUANT:
    case STEP_MM:
    case STEP_EADD:
        if (st->kind == STEP_REQUANT ? run_requant_step(st) : st->kind == STEP_MM ? run_mm_step(st) : run_eadd_step(st))
            Py_RETURN_TRUE;
        if (st->fallback) return PyObject_CallNoArgs(st->fallback);
        Py_RETURN_FALSE;
    default: run_lut(st->held); break;
    }
    Py_RETURN_NONE;
}

/* A SEQ step's run: each of its steps (none of which can decline) in order. */
static void run_infallible(const Step *st) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(st->steps); i++) {
        const Step *inner = (const Step *)PyTuple_GET_ITEM(st->steps, i);
        switch (inner->kind) {
        case STEP_LANES: run_lanes(&inner->lanes); break;
        case STEP_PAIR: run_pair(inner->held); break;
        case STEP_GATHER: run_gather(inner); break;
        case STEP_COPY: run_copy(inner); break;
        case STEP_VLUT: run_vlut(inner->held); break;
        default: run_lut(inner->held); break; /* (step_operands admits no other kind) */
        }
    }
}

static int step_traverse(Step *st, visitproc visit, void *arg) {
    Py_VISIT(st->steps);
    Py_VISIT(st->fallback);
    return 0;
}

static int step_clear(Step *st) {
    Py_CLEAR(st->steps);
    Py_CLEAR(st->fallback);
    return 0;
}

static void step_dealloc(Step *st) {
    PyObject_GC_UnTrack(st);
    step_clear(st);
    for (int i = 0; i < STEP_VIEWS; i++) release(&st->held[i]);
    PyMem_Free(st->scratch);
    if (st->requant) {
        requant_release(st->requant);
        PyMem_Free(st->requant);
    }
    if (st->mm) {
        mm_release(st->mm);
        PyMem_Free(st->mm);
    }
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static PyTypeObject StepType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "tcc.isa.simulator._native.Step",
    .tp_basicsize = sizeof(Step),
    .tp_dealloc = (destructor)step_dealloc,
    .tp_traverse = (traverseproc)step_traverse,
    .tp_clear = (inquiry)step_clear,
    .tp_free = PyObject_GC_Del,
    .tp_vectorcall_offset = offsetof(Step, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "One instruction's action, prepared (native.c: step).",
};

/* A step's int64 scalars: ``count`` of them in a contiguous 1-D buffer, copied into ``v``.  1 where
 * they are, 0 (v untouched) where the buffer has another shape, -1 with an error set where it is
 * not an int64 buffer at all. */
static int step_scalars(PyObject *obj, Py_ssize_t count, int64_t *v) {
    Held scalars;
    if (get_view(obj, &scalars, 0, 8, "scalars") < 0) return -1;
    int fits = scalars.view.ndim == 1 && scalars.view.shape[0] == count && PyBuffer_IsContiguous(&scalars.view, 'C');
    if (fits) memcpy(v, scalars.view.buf, (size_t)count * sizeof *v);
    release(&scalars);
    return fits;
}

/* A LUT or VLUT step's operands (out, x, tables), of ``itemsize``-byte ``items``: (samples, length)
 * out and x, a (samples, 256) table per sample, every row contiguous. */
static int table_rows_setup(Held *h, PyObject *const *objs, Py_ssize_t itemsize, const char *what,
                            const char *items) {
    if (get_view(objs[0], &h[0], 1, itemsize, "out") < 0 || get_view(objs[1], &h[1], 0, itemsize, "x") < 0 ||
        get_view(objs[2], &h[2], 0, itemsize, "tables") < 0)
        return -1;
    const Py_buffer *o = &h[0].view, *x = &h[1].view, *t = &h[2].view;
    if (o->ndim != 2 || same_shape(o, x, what) < 0 || t->ndim != 2 || t->shape[0] != o->shape[0] ||
        t->shape[1] != 256 || o->strides[1] != itemsize || x->strides[1] != itemsize || t->strides[1] != itemsize) {
        if (!PyErr_Occurred())
            PyErr_Format(PyExc_ValueError, "%s: %s (samples, length) out and x, (samples, 256) tables, contiguous rows",
                         what, items);
        return -1;
    }
    return 0;
}

/* The operand checks of every step kind but lanes and pair (their kernels check theirs). */
static int step_operands(Step *st, int kind, PyObject *const *objs, Py_ssize_t n) {
    Held *h = st->held;
    if (kind == STEP_GATHER && n == 4) { /* a compacted table: blocks and segments */
        if (get_view(objs[0], &h[0], 1, -3, "out") < 0 || get_view(objs[1], &h[1], 0, 2, "index") < 0 ||
            get_view(objs[2], &h[2], 0, -3, "blocks") < 0 || get_view(objs[3], &h[3], 0, 8, "segments") < 0)
            return -1;
        const Py_buffer *o = &h[0].view, *x = &h[1].view, *b = &h[2].view, *sg = &h[3].view;
        if (same_shape(o, x, "gather") < 0) return -1;
        Py_ssize_t count = sg->ndim == 1 ? sg->shape[0] : 0;
        int shift = 0;
        while (shift < 16 && (count << shift) < 65536) shift++;
        int fits = b->itemsize == o->itemsize && b->ndim == 1 && PyBuffer_IsContiguous(b, 'C') &&
                   PyBuffer_IsContiguous(sg, 'C') && count > 0 && (count << shift) == 65536;
        for (Py_ssize_t j = 0; fits && j < count; j++) {
            int64_t at = ((const int64_t *)sg->buf)[j];
            fits = at >= 0 && at + (INT64_C(1) << shift) <= b->shape[0];
        }
        if (!fits) {
            PyErr_SetString(PyExc_ValueError, "gather: a compacted table's blocks (out's items, contiguous) and "
                                              "int64 segments (a power of two of them) inside the blocks");
            return -1;
        }
        st->block_bits = shift;
        coalesce(&st->geometry, o, x);
        return 0;
    }
    if (kind == STEP_GATHER && n == 3) {
        if (get_view(objs[0], &h[0], 1, -3, "out") < 0 || get_view(objs[1], &h[1], 0, -3, "index") < 0 ||
            get_view(objs[2], &h[2], 0, -3, "table") < 0)
            return -1;
        const Py_buffer *o = &h[0].view, *x = &h[1].view, *t = &h[2].view;
        if (same_shape(o, x, "gather") < 0) return -1;
        if ((o->itemsize != 1 && o->itemsize != 2) || (x->itemsize != 1 && x->itemsize != 2) ||
            t->itemsize != o->itemsize || t->ndim != 1 || !PyBuffer_IsContiguous(t, 'C') ||
            t->shape[0] != (x->itemsize == 1 ? 256 : 65536)) {
            PyErr_SetString(PyExc_ValueError, "gather: out of 1- or 2-byte items, uint8 or uint16 index, a "
                                              "contiguous table of out's items and 256 or 65536 entries");
            return -1;
        }
        coalesce(&st->geometry, o, x);
        return 0;
    }
    if (kind == STEP_COPY && n == 2) {
        if (get_view(objs[0], &h[0], 1, -2, "out") < 0 || get_view(objs[1], &h[1], 0, -2, "source") < 0) return -1;
        if (same_geometry(&h[0].view, &h[1].view, "copy") < 0) return -1;
        coalesce(&st->geometry, &h[0].view, &h[1].view);
        return 0;
    }
    if (kind == STEP_LUT && n == 3) return table_rows_setup(h, objs, 1, "lut", "int8");
    if (kind == STEP_REDUCE && n == 2) {
        if (get_view(objs[0], &h[0], 1, 2, "out") < 0 || get_view(objs[1], &h[1], 0, 2, "x") < 0) return -1;
        const Py_buffer *o = &h[0].view, *x = &h[1].view;
        if ((st->op != 0 && st->op != 1) || o->ndim != 2 || x->ndim != 2 || o->shape[0] != x->shape[0] ||
            o->shape[1] < 1 || x->shape[1] % o->shape[1] || o->strides[1] != 2 || x->strides[1] != 2) {
            PyErr_SetString(PyExc_ValueError, "reduce step: op 0 (sum) or 1 (max), uint16 (samples, rows) out and "
                                              "(samples, rows * width) x, contiguous lanes");
            return -1;
        }
        st->scratch = PyMem_Malloc(2 * (size_t)x->shape[1] * sizeof(float) + 4);
        if (!st->scratch) {
            PyErr_NoMemory();
            return -1;
        }
        return 0;
    }
    if (kind == STEP_VLUT && n == 3) return table_rows_setup(h, objs, 2, "vlut", "uint16");
    if (kind == STEP_SEQ && n >= 1) {
        for (Py_ssize_t i = 0; i < n; i++) {
            const Step *inner = (const Step *)objs[i];
            if (Py_TYPE(objs[i]) != &StepType || inner->kind == STEP_REQUANT || inner->kind == STEP_MM ||
                inner->kind == STEP_EADD || inner->kind == STEP_REDUCE || inner->kind == STEP_SEQ) {
                PyErr_SetString(PyExc_ValueError, "seq step: steps of the kinds that cannot decline (not REQUANT, "
                                                  "MM, EADD, REDUCE or SEQ)");
                return -1;
            }
        }
        st->steps = PyTuple_New(n);
        if (!st->steps) return -1;
        for (Py_ssize_t i = 0; i < n; i++) PyTuple_SET_ITEM(st->steps, i, Py_NewRef(objs[i]));
        return 0;
    }
    if ((((kind == STEP_REQUANT || kind == STEP_MM) && n == 7)) || (kind == STEP_EADD && n == 8)) {
        PyObject *last = objs[n - 1]; /* a fallback */
        if (last != Py_None) {
            if (!PyCallable_Check(last)) {
                PyErr_SetString(PyExc_ValueError, "step: the fallback must be callable or None");
                return -1;
            }
            st->fallback = Py_NewRef(last);
        }
        n--;
    }
    if (kind == STEP_EADD && n == 7) {
        int64_t v[5] = {0};
        int fits = step_scalars(objs[6], 5, v);
        if (fits < 0) return -1;
        if (!fits || (v[0] != 1 && v[0] != -1) || v[4] < INT_MIN || v[4] > INT_MAX) {
            PyErr_SetString(PyExc_ValueError, "eadd step: scalars int64 (5,): sign (1 or -1), zp, qmin, qmax, mode");
            return -1;
        }
        if (get_view(objs[1], &h[0], 0, 1, "a") < 0 || get_view(objs[2], &h[1], 0, 1, "b") < 0 ||
            get_view(objs[4], &h[2], 0, 4, "terms") < 0 || get_view(objs[3], &h[3], 1, 4, "sums") < 0)
            return -1;
        const Py_buffer *a = &h[0].view, *b = &h[1].view, *t = &h[2].view, *sv = &h[3].view;
        int64_t largest[2] = {0, 0};
        int ok = a->ndim == 2 && same_shape(a, b, "eadd b") == 0 && same_shape(a, sv, "eadd sums") == 0 &&
                 a->strides[1] == 1 && b->strides[1] == 1 && sv->strides[1] == 4 && t->ndim == 2 &&
                 t->shape[0] == 2 && t->shape[1] == 256 && PyBuffer_IsContiguous(t, 'C');
        for (int j = 0; ok && j < 2; j++)
            for (int i = 0; i < 256; i++) {
                int64_t m = ((const int32_t *)t->buf)[j * 256 + i];
                m = m < 0 ? -m : m;
                largest[j] = m > largest[j] ? m : largest[j];
            }
        if (!ok || largest[0] + largest[1] > INT32_MAX) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError, "eadd step: int8 (samples, length) a and b with contiguous lanes, "
                                                  "int32 sums of their shape, int32 (2, 256) terms summing within int32");
            return -1;
        }
        st->sign = (int)v[0];
        st->requant = PyMem_Malloc(sizeof(RequantCall));
        if (!st->requant) {
            PyErr_NoMemory();
            return -1;
        }
        if (requant_setup(st->requant, objs[3], objs[0], objs[5], 0, 0, v[1], v[2], v[3], (int)v[4], NULL, 0) < 0)
            return -1; /* (dealloc releases what it held) */
        return 0;
    }
    if (kind == STEP_MM && n == 6) {
        int64_t v[5] = {0};
        int fits = step_scalars(objs[5], 5, v);
        if (fits < 0) return -1;
        if (!fits || v[4] < 0 || v[4] > 1) {
            PyErr_SetString(PyExc_ValueError, "mm step: scalars int64 (5,): zp, cg, ng, pad, accumulate (0 or 1)");
            return -1;
        }
        st->mm = PyMem_Malloc(sizeof(MmHeld));
        if (!st->mm) {
            PyErr_NoMemory();
            return -1;
        }
        if (mm_setup(st->mm, objs[0], objs[1], objs[2], objs[3], v[0], v[1], v[2], v[3], (int)v[4], objs[4]) < 0)
            return -1; /* (dealloc releases what it held) */
        return 0;
    }
    if (kind == STEP_REQUANT && n == 6) {
        int64_t v[6] = {0};
        int fits = step_scalars(objs[5], 6, v);
        if (fits < 0) return -1;
        if (!fits) {
            PyErr_SetString(PyExc_ValueError, "requant step: scalars int64 (6,)");
            return -1;
        }
        if (get_view(objs[3], &h[0], 0, 4, "params") < 0 || get_view(objs[4], &h[1], 0, 1, "made_from") < 0)
            return -1;
        const Py_buffer *p = &h[0].view, *made = &h[1].view;
        if (p->ndim != 3 || p->shape[2] != 3 || p->strides[2] != 4 || p->strides[1] != 12 ||
            !PyBuffer_IsContiguous(made, 'C') || made->len != p->shape[1] * 12) {
            PyErr_SetString(PyExc_ValueError, "requant step: params (samples, channels, 3) int32 rows, made_from "
                                              "their bytes");
            return -1;
        }
        if (v[1] < INT_MIN || v[1] > INT_MAX || v[5] < INT_MIN || v[5] > INT_MAX) {
            PyErr_SetString(PyExc_ValueError, "requant step: pre_shift and mode must be ints");
            return -1;
        }
        st->requant = PyMem_Malloc(sizeof(RequantCall));
        if (!st->requant) {
            PyErr_NoMemory();
            return -1;
        }
        RequantCall *k = st->requant;
        if (requant_setup(k, objs[0], objs[1], objs[2], v[0], (int)v[1], v[2], v[3], v[4], (int)v[5], NULL, 0) < 0)
            return -1; /* (dealloc releases what it held) */
        requant_allow_wide(k, v[0], (int)v[1], v[3], v[4], (int)v[5]);
        return 0;
    }
    PyErr_Format(PyExc_ValueError, "step: kind %d does not take %zd operands", kind, n);
    return -1;
}

/* step(kind, op, *operands) -> a Step (see above). */
static PyObject *step(PyObject *self, PyObject *args) {
    Py_ssize_t n = PyTuple_GET_SIZE(args) - 2;
    if (n < 0) {
        PyErr_SetString(PyExc_TypeError, "step(kind, op, *operands)");
        return NULL;
    }
    int kind = PyLong_AsLong(PyTuple_GET_ITEM(args, 0)), op = PyLong_AsLong(PyTuple_GET_ITEM(args, 1));
    if (PyErr_Occurred()) return NULL;
    PyObject *const *objs = &PyTuple_GET_ITEM(args, 2);
    Step *st = PyObject_GC_New(Step, &StepType);
    if (!st) return NULL;
    st->vectorcall = run_step;
    st->kind = kind;
    st->requant = NULL;
    st->mm = NULL;
    st->fallback = NULL;
    st->op = op;
    st->scratch = NULL;
    st->steps = NULL;
    memset(st->held, 0, sizeof st->held);
    int bad;
    if (kind == STEP_LANES)
        bad = n < 3 || n > 4 || lanes_operands(op, objs[0], objs[1], objs[2], n == 4 ? objs[3] : NULL, st->held,
                                               &st->lanes) < 0;
    else if (kind == STEP_PAIR)
        bad = n != 4 || pair_operands(objs[0], objs[1], objs[2], objs[3], st->held) < 0;
    else
        bad = step_operands(st, kind, objs, n) < 0;
    if (bad) {
        if (!PyErr_Occurred()) PyErr_Format(PyExc_ValueError, "step: kind %d does not take %zd operands", kind, n);
        Py_DECREF(st);
        return NULL;
    }
    if (st->fallback || st->steps) PyObject_GC_Track(st); /* (only these can make a cycle: the others stay untracked) */
    return (PyObject *)st;
}

/* --- the replay loop --------------------------------------------------------------------------- */

/* replay(actions, count, at): call actions[0..count-1] in order with no arguments (the prepared
 * plan's actions: steps, kernels' partials, closures); where one raises, at[0] = its index and the
 * exception propagates. */
static PyObject *replay(PyObject *self, PyObject *args) {
    PyObject *actions, *at;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "O!nO!", &PyList_Type, &actions, &count, &PyList_Type, &at)) return NULL;
    if (count < 0 || count > PyList_GET_SIZE(actions) || PyList_GET_SIZE(at) < 1) {
        PyErr_SetString(PyExc_ValueError, "replay: count outside the actions, or an empty at");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *result = PyObject_CallNoArgs(PyList_GET_ITEM(actions, i));
        if (!result) {
            PyObject *index = PyLong_FromSsize_t(i);
            if (index) PyList_SetItem(at, 0, index); /* (steals the reference) */
            return NULL;
        }
        Py_DECREF(result);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"requant", requant, METH_VARARGS, "The requantization stage in one pass (see native.c)."},
    {"lanes", lanes, METH_VARARGS, "bf16 lane arithmetic rounded to bf16 (see native.c)."},
    {"reduce_rows", reduce_rows, METH_VARARGS, "vred sum (its pairwise tree) or max per row (see native.c)."},
    {"conv", conv, METH_VARARGS, "A dwconv or gconv tile's products (see native.c)."},
    {"pair_lookup", pair_lookup, METH_VARARGS, "A two-int8-operand rule read from its table (see native.c)."},
    {"cvt_i32", cvt_i32, METH_VARARGS, "cvt i32_bf16: (q - zp) * scale rounded once to bf16 (see native.c)."},
    {"replay", replay, METH_VARARGS, "Call a plan's actions in order (see native.c)."},
    {"quantize", quantize, METH_VARARGS, "QuantizeLinear of float32 to int8 by one scale (see native.c)."},
    {"step", step, METH_VARARGS, "One instruction's action, its operands checked and held once (see native.c)."},
    /* matrix-side kernels */
    {"mm", mm, METH_VARARGS, "A gemm, conv or gconv tile's exact sums from int8 codes (see native.c)."},
    {"mm_cache_size", mm_cache_size, METH_VARARGS, "The size of mm's weight cache for a tile (see native.c)."},
    {"mm_level", mm_level, METH_VARARGS, "The vector instructions mm uses; at most a given level (see native.c)."},
    {"pool_taps", pool_taps, METH_VARARGS, "A pool tile's windows reduced over their taps (see native.c)."},
    {"requant_wide", requant_wide, METH_VARARGS, "requant's stage on int32 where no lane can be refused (see native.c)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "The simulator's fused C kernels.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&StepType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "STEP_LANES", STEP_LANES) < 0 || PyModule_AddIntConstant(m, "STEP_PAIR", STEP_PAIR) < 0 ||
        PyModule_AddIntConstant(m, "STEP_GATHER", STEP_GATHER) < 0 || PyModule_AddIntConstant(m, "STEP_COPY", STEP_COPY) < 0 ||
        PyModule_AddIntConstant(m, "STEP_LUT", STEP_LUT) < 0 ||
        PyModule_AddIntConstant(m, "STEP_REQUANT", STEP_REQUANT) < 0 || PyModule_AddIntConstant(m, "STEP_MM", STEP_MM) < 0 ||
        PyModule_AddIntConstant(m, "STEP_EADD", STEP_EADD) < 0 || PyModule_AddIntConstant(m, "STEP_REDUCE", STEP_REDUCE) < 0 ||
        PyModule_AddIntConstant(m, "STEP_VLUT", STEP_VLUT) < 0 || PyModule_AddIntConstant(m, "STEP_SEQ", STEP_SEQ) < 0 ||
        PyModule_AddIntConstant(m, "MM_MAX_K", MM_MAX_K) < 0) { /* (matrix side: mm's longest K) */
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
