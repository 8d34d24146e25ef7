// The int8 layers of docs/int8.md for `_camlytics`: drop-in replacements for the kernels of
// camlytics.edge.ops (the "c" backend, camlytics/edge/ops_c.py), bit for bit.
//
// Calling convention (the one of ops.py):
// - x, y: buffers of unsigned bytes (bytes/bytearray/memoryview/array('B')); an int8 tensor is stored
//   offset by 128. x is the layer's input already padded with its zero point; y is written at
//   y[YBASE + oy * YROW + ox * OC + oc] (the interior of the next layer's padded input).
// - p: array('i'), the geometry (indices P_* below) then one [acc0, m, rnd, s] row per output
//   channel (one row for gap) with acc0 = bias - xz * sum(w), so acc = acc0 + sum(x * w).
// - w: array('h') of the int8 weights widened to int16 in the layout of ops_c.prepare_weights:
//     depthwise      [KH * KW][C]  (vectorized over channels)
//     conv2d/dense   [OC][KP]      rows of K = KH * KW * C taps zero-padded to KP = K rounded up to 8
//   (int16 so that one load feeds a 16 x 16 -> 32 bit multiply: pmaddwd on x86, vmlal on NEON).
// - Requantization: v = ((acc * m + rnd) >> s) + yz, clamped to [LO, HI], as the reference.
//
// Arithmetic: products x * w (|x * w| <= 255 * 128) are summed in 32-bit words, wrapping (unsigned)
// where a long sum could exceed them; acc = acc0 + sum is then exact whenever it fits in int32, which
// docs/int8.md section 3 guarantees for every valid model (the same bits as the Python reference's
// unbounded ints and the viper kernels' machine words). acc * m + rnd is computed in int64 (no
// overflow for any int32 acc, m and rnd), or in int32 when a check once per call (narrow_rows: the
// range of every channel's acc from its weights) proves that no value can leave int32, which again
// holds for every valid model: the same bits either way. A shift s > 63 acts as 63 (what Python's >>
// gives on these values); s < 0 is refused, as Python refuses a negative shift count.
//
// Safety: every call checks, once and before touching any element, that p holds the geometry and
// all its rows, that the geometry is sane and that x, w and y are large enough for every index the
// loops will form; otherwise ValueError and nothing is written.
//
// Plain portable C (no intrinsics): the inner loops are written so that gcc -O2/-O3 vectorizes them
// on x86-64, armv7hf (NEON when enabled: -mfpu=neon) and aarch64. Compiled -Os (the unix port's
// default) the door model's inference takes 4-5 times as long.

#include <stdint.h>
#include <string.h>

#include "camlytics.h"
#include "py/runtime.h"
#include "py/binary.h"

// Indices into the parameter block (camlytics/edge/ops.py).
enum {
    P_OH, P_OW, P_OC, P_KH, P_KW, P_C, P_ROW, P_SY, P_SX, P_YBASE, P_YROW, P_SH, P_LO, P_HI, P_YZ,
    P_HB, P_SW, P_PH, P_PW,
};
#define P_TABLE 20       // first per-channel row [acc0, m, rnd, s]

#define DOT_ALIGN 8      // [OC][KP] rows are padded with zeros to a multiple of this (ops_c.py)
#define PATCH_MAX 4096   // window values gathered at once (int16, on the stack: 8 KiB)
#define CH_BLOCK 64      // output channels accumulated at once (a multiple of 8)
#define WINDOW_MAX (1u << 30)  // largest window (taps per output): every size below fits 32 bits

typedef struct {
    size_t oh, ow, oc, kh, kw, c, row, sy, sx, ybase, yrow;
    int32_t lo, hi, yz;
    int big_shift;  // some row has s > 63
    int narrow;     // every acc * m + rnd of this call provably fits int32 (see narrow_rows)
    const int32_t *table;
} geom_t;

MP_NORETURN static void bad(const char *kernel, const char *what) {
    mp_raise_msg_varg(&mp_type_ValueError, MP_ERROR_TEXT("%s: %s"), kernel, what);
}

// The parameter block's geometry, with the checks every kernel needs; `rows_index` names the field
// holding the number of [acc0, m, rnd, s] rows (-1: one row).
static const int32_t *get_params(const char *kernel, mp_obj_t p_obj, int rows_index, int *big_shift) {
    mp_buffer_info_t bp;
    mp_get_buffer_raise(p_obj, &bp, MP_BUFFER_READ);
    if (bp.typecode != 'i') {
        bad(kernel, "p must be an array('i')");
    }
    size_t n = bp.len / sizeof(int32_t);
    if (n < P_TABLE) {
        bad(kernel, "p is too short for the geometry");
    }
    const int32_t *p = bp.buf;
    uint64_t rows = rows_index < 0 ? 1 : (uint64_t)(p[rows_index] < 0 ? 0 : p[rows_index]);
    if ((uint64_t)n < P_TABLE + 4 * rows) {
        bad(kernel, "p is too short for its channel rows");
    }
    if (p[P_LO] < 0 || p[P_LO] > p[P_HI] || p[P_HI] > 255) {
        bad(kernel, "need 0 <= LO <= HI <= 255");
    }
    *big_shift = 0;
    for (uint64_t r = 0; r < rows; r++) {
        int32_t s = p[P_TABLE + 4 * r + 3];
        if (s < 0) {
            bad(kernel, "negative shift count");
        }
        *big_shift |= s > 63;
    }
    return p;
}

static void positive(const char *kernel, const int32_t *p, const int *fields, size_t n_fields) {
    for (size_t i = 0; i < n_fields; i++) {
        if (p[fields[i]] < 1) {
            bad(kernel, "OH, OW, OC, KH, KW and C must be >= 1");
        }
    }
}

static void non_negative(const char *kernel, const int32_t *p, const int *fields, size_t n_fields) {
    for (size_t i = 0; i < n_fields; i++) {
        if (p[fields[i]] < 0) {
            bad(kernel, "ROW, SY, SX, YBASE and YROW must be >= 0");
        }
    }
}

// Geometry of a windowed kernel (conv2d, depthwise) with its buffer checks; `ch` is the field that
// counts output channels (OC for conv2d, C for depthwise).
static void window_geometry(const char *kernel, const int32_t *p, int ch, geom_t *g,
    const mp_buffer_info_t *bx, const mp_buffer_info_t *by) {
    static const int pos[] = {P_OH, P_OW, P_KH, P_KW, P_C, P_OC};  // depthwise ignores OC, as ops.py
    static const int nonneg[] = {P_ROW, P_SY, P_SX, P_YBASE, P_YROW};
    positive(kernel, p, pos, ch == P_OC ? 6 : 5);
    non_negative(kernel, p, nonneg, 5);
    g->oh = p[P_OH];
    g->ow = p[P_OW];
    g->oc = p[ch];
    g->kh = p[P_KH];
    g->kw = p[P_KW];
    g->c = p[P_C];
    g->row = p[P_ROW];
    g->sy = p[P_SY];
    g->sx = p[P_SX];
    g->ybase = p[P_YBASE];
    g->yrow = p[P_YROW];
    g->lo = p[P_LO];
    g->hi = p[P_HI];
    g->yz = p[P_YZ];
    g->table = p + P_TABLE;
    // Every factor is < 2**31, so each product is < 2**62 and these sums of four fit 64 bits.
    uint64_t x_need = (uint64_t)(g->oh - 1) * g->sy + (uint64_t)(g->ow - 1) * g->sx
        + (uint64_t)(g->kh - 1) * g->row + (uint64_t)g->kw * g->c;
    if (x_need > bx->len) {
        bad(kernel, "x is too small for the geometry in p");
    }
    uint64_t y_need = (uint64_t)g->ybase + (uint64_t)(g->oh - 1) * g->yrow + (uint64_t)g->ow * g->oc;
    if (y_need > by->len) {
        bad(kernel, "y is too small for the geometry in p");
    }
}

static void get_bytes(const char *kernel, mp_obj_t obj, mp_buffer_info_t *b, mp_uint_t flags, const char *what) {
    mp_get_buffer_raise(obj, b, flags);
    if (b->typecode != BYTEARRAY_TYPECODE && b->typecode != 'B') {
        bad(kernel, what);
    }
}

static const int16_t *get_weights(const char *kernel, mp_obj_t obj, uint64_t count) {
    mp_buffer_info_t bw;
    mp_get_buffer_raise(obj, &bw, MP_BUFFER_READ);
    if (bw.typecode != 'h' || (uint64_t)bw.len != count * sizeof(int16_t)) {
        bad(kernel, "w must be ops_c.prepare_weights(layer) of this layer");
    }
    return bw.buf;
}

// y[i] = clamp(((acc * m + rnd) >> s) + yz, lo, hi) for n channels with rows `rstride` ints apart
// (4; 0 for gap's single row); `acc` holds sum(x * w) only: acc0 is added here, wrapping to int32.
static inline MP_ALWAYSINLINE void requant_store(uint8_t *restrict y, const uint32_t *restrict acc,
    const int32_t *restrict row, size_t rstride, size_t n, const geom_t *g) {
    if (g->narrow) {  // the common case (every valid model): the same bits in 32-bit arithmetic
        const int32_t lo = g->lo, hi = g->hi, yz = g->yz;
        for (size_t i = 0; i < n; i++, row += rstride) {
            int32_t a = (int32_t)((uint32_t)row[0] + acc[i]);
            int32_t v = ((a * row[1] + row[2]) >> row[3]) + yz;
            v = v < lo ? lo : v;
            y[i] = (uint8_t)(v > hi ? hi : v);
        }
        return;
    }
    const int64_t lo = g->lo, hi = g->hi, yz = g->yz;
    if (g->big_shift) {  // rare: a shift past 63 acts as 63 (the same 0 or -1 as Python's >>)
        for (size_t i = 0; i < n; i++, row += rstride) {
            int32_t a = (int32_t)((uint32_t)row[0] + acc[i]);
            int32_t s = row[3] > 63 ? 63 : row[3];
            int64_t v = (((int64_t)a * row[1] + row[2]) >> s) + yz;
            v = v < lo ? lo : v;
            y[i] = (uint8_t)(v > hi ? hi : v);
        }
        return;
    }
    for (size_t i = 0; i < n; i++, row += rstride) {
        int32_t a = (int32_t)((uint32_t)row[0] + acc[i]);
        int64_t v = (((int64_t)a * row[1] + row[2]) >> row[3]) + yz;
        v = v < lo ? lo : v;
        y[i] = (uint8_t)(v > hi ? hi : v);
    }
}

// Whether the row [acc0, m, rnd, s] of a channel whose sum(x * w) lies in [255 * wneg, 255 * wpos]
// (x in 0..255) computes ((acc * m + rnd) >> s) + yz exactly in int32: acc, acc * m and acc * m + rnd
// fit at both ends of acc's range, 1 <= s <= 31, and |yz| <= 2**30 (so the shifted value plus yz
// fits too). docs/int8.md's bound makes this hold for every channel of every valid model.
static int narrow_row(const int32_t *row, int64_t wneg, int64_t wpos, int32_t yz) {
    const int64_t big = (int64_t)1 << 32;
    int64_t amin = row[0] + 255 * wneg, amax = row[0] + 255 * wpos;
    if (amin < INT32_MIN || amax > INT32_MAX || row[3] < 1 || row[3] > 31 || yz < -(1 << 30) || yz > (1 << 30)
        || wneg < -big || wpos > big) {
        return 0;
    }
    int64_t p0 = amin * row[1], p1 = amax * row[1];  // |acc|, |m| <= 2**31: no overflow
    int64_t e0 = p0 + row[2], e1 = p1 + row[2];  // acc * m + rnd is linear in acc: the ends bound it
    return p0 >= INT32_MIN && p0 <= INT32_MAX && p1 >= INT32_MIN && p1 <= INT32_MAX
           && e0 >= INT32_MIN && e0 <= INT32_MAX && e1 >= INT32_MIN && e1 <= INT32_MAX;
}

// narrow_row for every channel of a conv2d ([OC][KP] weights) or a depthwise ([taps][C]) layer: one
// pass over the weights, worth it when the layer has more than a few outputs per weight.
static int narrow_rows(const geom_t *g, const int16_t *w, size_t n_ch, size_t taps, size_t ch_stride,
    size_t tap_stride) {
    if (g->big_shift || g->oh * g->ow < 4) {
        return 0;
    }
    for (size_t c = 0; c < n_ch; c++) {
        int64_t wneg = 0, wpos = 0;
        const int16_t *wc = w + c * ch_stride;
        for (size_t t = 0; t < taps; t++) {
            int32_t v = wc[t * tap_stride];
            wneg += v < 0 ? v : 0;
            wpos += v > 0 ? v : 0;
        }
        if (!narrow_row(g->table + 4 * c, wneg, wpos, g->yz)) {
            return 0;
        }
    }
    return 1;
}

// patch[0..n) = the window's values [off, off + n) (window: KH rows of `span` bytes, `row` apart),
// widened to int16 once per window so that the dot products below load them ready to multiply
// (for windows longer than PATCH_MAX, gathered piece by piece).
static void gather(int16_t *restrict patch, const uint8_t *restrict xw, size_t row, size_t span,
    size_t off, size_t n) {
    size_t ky = off / span, i = off % span, d = 0;
    while (d < n) {
        size_t take = span - i;
        if (take > n - d) {
            take = n - d;
        }
        const uint8_t *restrict src = xw + ky * row + i;
        for (size_t t = 0; t < take; t++) {
            patch[d + t] = src[t];
        }
        d += take;
        ky++;
        i = 0;
    }
}

// patch[0..k) = the whole window (KH rows of `span` bytes, `row` apart) widened to int16, each row
// copied 8 values at a time where x holds the bytes: a row's excess is overwritten by the next row,
// the last row's lands in patch[k, k + 8), where the weight rows are zero (or past them). The tail
// beyond the window must already hold defined values (the caller zeroes it once).
static inline MP_ALWAYSINLINE void gather_window(int16_t *restrict patch, const uint8_t *restrict xw,
    const uint8_t *x_end, size_t row, size_t span, size_t kh) {
    size_t span8 = (span + 7) / 8 * 8;
    for (size_t ky = 0; ky < kh; ky++, xw += row, patch += span) {
        if ((size_t)(x_end - xw) >= span8) {
            for (size_t t = 0; t < span8; t += 8) {
                for (size_t j = 0; j < 8; j++) {
                    patch[t + j] = xw[t + j];
                }
            }
        } else {
            for (size_t t = 0; t < span; t++) {
                patch[t] = xw[t];
            }
        }
    }
}

// acc[o] (+)= dot(patch, w + o * stride) over n values (n a multiple of DOT_ALIGN, n <= PATCH_MAX,
// so each 32-bit sum stays below 4096 * 32640 < 2**31), for o < nb; four channels share each
// patch load. int16 times int16 summed in int32: pmaddwd on x86, vmlal.s16 / smlal on ARM.
static inline MP_ALWAYSINLINE void dots(uint32_t *restrict acc, const int16_t *restrict patch, size_t n,
    const int16_t *restrict w, size_t stride, size_t nb, int first) {
    size_t o = 0;
    for (; o + 4 <= nb; o += 4) {
        const int16_t *restrict w0 = w + o * stride;
        const int16_t *restrict w1 = w0 + stride;
        const int16_t *restrict w2 = w1 + stride;
        const int16_t *restrict w3 = w2 + stride;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (size_t i = 0; i < n; i++) {
            int16_t v = patch[i];
            a0 += v * w0[i];
            a1 += v * w1[i];
            a2 += v * w2[i];
            a3 += v * w3[i];
        }
        acc[o] = (first ? 0 : acc[o]) + (uint32_t)a0;
        acc[o + 1] = (first ? 0 : acc[o + 1]) + (uint32_t)a1;
        acc[o + 2] = (first ? 0 : acc[o + 2]) + (uint32_t)a2;
        acc[o + 3] = (first ? 0 : acc[o + 3]) + (uint32_t)a3;
    }
    for (; o < nb; o++) {
        const int16_t *restrict w0 = w + o * stride;
        int32_t a0 = 0;
        for (size_t i = 0; i < n; i++) {
            int16_t v = patch[i];
            a0 += v * w0[i];
        }
        acc[o] = (first ? 0 : acc[o]) + (uint32_t)a0;
    }
}

// conv2d(x, w, y, p): full convolution (groups == 1); dense is the 1x1 case.
static mp_obj_t cml_conv2d(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    static const char name[] = "conv2d";
    mp_buffer_info_t bx, by;
    get_bytes(name, args[0], &bx, MP_BUFFER_READ, "x must be a buffer of bytes");
    get_bytes(name, args[2], &by, MP_BUFFER_WRITE, "y must be a writable buffer of bytes");
    int big_shift;
    const int32_t *p = get_params(name, args[3], P_OC, &big_shift);
    geom_t g;
    window_geometry(name, p, P_OC, &g, &bx, &by);
    g.big_shift = big_shift;
    size_t span = g.kw * g.c;  // <= len(x), checked
    if (span > WINDOW_MAX || g.kh > WINDOW_MAX / span) {
        bad(name, "window too large");
    }
    size_t k = g.kh * span;
    size_t kp = (k + DOT_ALIGN - 1) / DOT_ALIGN * DOT_ALIGN;
    const int16_t *w = get_weights(name, args[1], (uint64_t)kp * g.oc);
    g.narrow = narrow_rows(&g, w, g.oc, kp, kp, 1);
    const uint8_t *x = bx.buf;
    uint8_t *y = by.buf;

    int16_t patch[PATCH_MAX + 8];
    uint32_t acc[CH_BLOCK];
    int one_chunk = kp <= PATCH_MAX;
    if (one_chunk) {
        for (size_t i = k; i < kp + 8; i++) {
            patch[i] = 0;  // the zero-padded tail of the weight rows meets defined values
        }
    }
    for (size_t oy = 0; oy < g.oh; oy++) {
        for (size_t ox = 0; ox < g.ow; ox++) {
            const uint8_t *xw = x + oy * g.sy + ox * g.sx;
            uint8_t *yp = y + g.ybase + oy * g.yrow + ox * g.oc;
            if (one_chunk) {
                gather_window(patch, xw, x + bx.len, g.row, span, g.kh);
            }
            for (size_t ob = 0; ob < g.oc; ob += CH_BLOCK) {
                size_t nb = g.oc - ob < CH_BLOCK ? g.oc - ob : CH_BLOCK;
                if (one_chunk) {
                    dots(acc, patch, kp, w + ob * kp, kp, nb, 1);
                } else {  // a window longer than PATCH_MAX: gathered piece by piece
                    for (size_t off = 0; off < kp; off += PATCH_MAX) {
                        size_t len = kp - off < PATCH_MAX ? kp - off : PATCH_MAX;
                        size_t real = off >= k ? 0 : (k - off < len ? k - off : len);
                        gather(patch, xw, g.row, span, off, real);
                        for (size_t i = real; i < len; i++) {
                            patch[i] = 0;
                        }
                        dots(acc, patch, len, w + ob * kp + off, kp, nb, off == 0);
                    }
                }
                requant_store(yp + ob, acc, g.table + 4 * ob, 4, nb, &g);
            }
        }
    }
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(cml_conv2d_obj, 4, 4, cml_conv2d);

// depthwise(x, w, y, p): groups == C == OC, channel c sees only input channel c.
static mp_obj_t cml_depthwise(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    static const char name[] = "depthwise";
    mp_buffer_info_t bx, by;
    get_bytes(name, args[0], &bx, MP_BUFFER_READ, "x must be a buffer of bytes");
    get_bytes(name, args[2], &by, MP_BUFFER_WRITE, "y must be a writable buffer of bytes");
    int big_shift;
    const int32_t *p = get_params(name, args[3], P_C, &big_shift);
    geom_t g;
    window_geometry(name, p, P_C, &g, &bx, &by);
    g.big_shift = big_shift;
    uint64_t taps = (uint64_t)g.kh * g.kw;
    if (taps > WINDOW_MAX) {
        bad(name, "window too large");
    }
    const int16_t *w = get_weights(name, args[1], taps * g.c);
    g.narrow = narrow_rows(&g, w, g.c, taps, 1, g.c);
    const uint8_t *x = bx.buf;
    uint8_t *y = by.buf;
    size_t c_n = g.c;
    uint32_t acc[CH_BLOCK];
    for (size_t oy = 0; oy < g.oh; oy++) {
        for (size_t ox = 0; ox < g.ow; ox++) {
            const uint8_t *xw = x + oy * g.sy + ox * g.sx;
            uint8_t *yp = y + g.ybase + oy * g.yrow + ox * c_n;
            for (size_t cb = 0; cb < c_n; cb += CH_BLOCK) {
                size_t nb = c_n - cb < CH_BLOCK ? c_n - cb : CH_BLOCK;
                if (g.kh == 3 && g.kw == 3) {  // the common case: nine taps, one expression
                    const uint8_t *restrict x0 = xw + cb, *restrict x1 = x0 + c_n, *restrict x2 = x1 + c_n;
                    const uint8_t *restrict x3 = x0 + g.row, *restrict x4 = x3 + c_n, *restrict x5 = x4 + c_n;
                    const uint8_t *restrict x6 = x3 + g.row, *restrict x7 = x6 + c_n, *restrict x8 = x7 + c_n;
                    const int16_t *restrict w0 = w + cb, *restrict w1 = w0 + c_n, *restrict w2 = w1 + c_n;
                    const int16_t *restrict w3 = w2 + c_n, *restrict w4 = w3 + c_n, *restrict w5 = w4 + c_n;
                    const int16_t *restrict w6 = w5 + c_n, *restrict w7 = w6 + c_n, *restrict w8 = w7 + c_n;
                    for (size_t i = 0; i < nb; i++) {
                        int32_t a = x0[i] * w0[i] + x1[i] * w1[i] + x2[i] * w2[i] + x3[i] * w3[i] + x4[i] * w4[i]
                            + x5[i] * w5[i] + x6[i] * w6[i] + x7[i] * w7[i] + x8[i] * w8[i];
                        acc[i] = (uint32_t)a;
                    }
                } else {
                    for (size_t i = 0; i < nb; i++) {
                        acc[i] = 0;
                    }
                    for (size_t ky = 0; ky < g.kh; ky++) {
                        for (size_t kx = 0; kx < g.kw; kx++) {
                            const uint8_t *restrict xr = xw + ky * g.row + kx * c_n + cb;
                            const int16_t *restrict wr = w + (ky * g.kw + kx) * c_n + cb;
                            for (size_t i = 0; i < nb; i++) {
                                acc[i] += (uint32_t)(xr[i] * wr[i]);
                            }
                        }
                    }
                }
                requant_store(yp + cb, acc, g.table + 4 * cb, 4, nb, &g);
            }
        }
    }
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(cml_depthwise_obj, 4, 4, cml_depthwise);

// gap(x, y, p): global average pool over an unpadded [KH][KW][C] input, one row for all channels.
static mp_obj_t cml_gap(mp_obj_t x_obj, mp_obj_t y_obj, mp_obj_t p_obj) {
    static const char name[] = "gap";
    mp_buffer_info_t bx, by;
    get_bytes(name, x_obj, &bx, MP_BUFFER_READ, "x must be a buffer of bytes");
    get_bytes(name, y_obj, &by, MP_BUFFER_WRITE, "y must be a writable buffer of bytes");
    int big_shift;
    const int32_t *p = get_params(name, p_obj, -1, &big_shift);
    static const int pos[] = {P_KH, P_KW, P_C};
    static const int nonneg[] = {P_YBASE};
    positive(name, p, pos, 3);
    non_negative(name, p, nonneg, 1);
    geom_t g;
    memset(&g, 0, sizeof(g));
    g.c = p[P_C];
    g.lo = p[P_LO];
    g.hi = p[P_HI];
    g.yz = p[P_YZ];
    g.big_shift = big_shift;
    g.table = p + P_TABLE;
    uint64_t n = (uint64_t)p[P_KH] * (uint64_t)p[P_KW];
    if (n > UINT32_MAX || n * g.c > bx.len) {
        bad(name, "x is too small for the geometry in p");
    }
    g.narrow = !big_shift && narrow_row(g.table, 0, (int64_t)n, g.yz);  // sum(x) in [0, 255 * n]
    if ((uint64_t)p[P_YBASE] + g.c > by.len) {
        bad(name, "y is too small for the geometry in p");
    }
    const uint8_t *x = bx.buf;
    uint8_t *y = (uint8_t *)by.buf + p[P_YBASE];
    uint32_t acc[CH_BLOCK];
    for (size_t cb = 0; cb < g.c; cb += CH_BLOCK) {
        size_t nb = g.c - cb < CH_BLOCK ? g.c - cb : CH_BLOCK;
        for (size_t i = 0; i < nb; i++) {
            acc[i] = 0;
        }
        const uint8_t *xp = x + cb;
        for (size_t j = 0; j < (size_t)n; j++, xp += g.c) {
            for (size_t i = 0; i < nb; i++) {
                acc[i] += xp[i];
            }
        }
        requant_store(y + cb, acc, g.table, 0, nb, &g);
    }
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_3(cml_gap_obj, cml_gap);
