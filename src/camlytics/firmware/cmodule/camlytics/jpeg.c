// The JPEG decoder's inner loops in C: drop-in twins of the viper kernels `_scan`, `_upsample`,
// `_ycc_to_rgb` (camlytics/edge/jpeg.py) and `_area_resize` (camlytics/edge/preprocess.py), with
// the same arguments, buffer layouts and status codes; jpeg_scan runs the IDCTs itself.
//
// Arithmetic is done in machine words that wrap (mp_uint_t, with arithmetic right shifts), the
// 32-bit workspace and DC predictor slots are truncated and zero-extended exactly as viper's ptr32
// stores and loads are, and coefficients are kept as 16-bit values: so the output equals the viper
// kernel's of the same word size on any input, corrupt ones included, and libjpeg's (Pillow's) on
// valid ones.
//
// Safety: the Python side builds plans that are consistent with its buffers, but these functions
// are callable with anything. Every buffer is sized, every plan entry and Huffman table entry that
// an index is derived from is checked once per call against those sizes (ValueError otherwise),
// and the buffers written may not overlap the tables read, so no input reads or writes out of
// bounds. Corrupt entropy-coded data gives the viper kernel's status code, never a crash.
#include <stdint.h>
#include <string.h>

#include "camlytics.h"
#include "py/runtime.h"

typedef mp_uint_t uword;  // a viper machine word: unsigned here so that overflow wraps, as there
typedef mp_int_t word;
#define ASR(x, n) ((uword)((word)(x) >> (n)))  // viper's `>>`: an arithmetic shift

// Small helpers of the inner loops, inlined even where the port compiles with -Os (the bit reader
// keeps its state in registers only then).
#if defined(__GNUC__)
#define INLINE static inline __attribute__((always_inline))
#else
#define INLINE static inline
#endif

// Layout constants of camlytics/edge/jpeg.py (_TSZ, _MAXC, _MINC, _VALP, _VALS, _PB, _PBLOCK, _PZZ).
#define LOOK 9
#define MAXC 512
#define MINC (MAXC + 17)
#define VALP (MINC + 17)
#define VALS (VALP + 17)
#define PB 16
#define PBLOCK 20
#define MAX_BLOCKS 10
#define PZZ (PB + PBLOCK * MAX_BLOCKS)
#define DC_BIAS 0x20000000u  // DC predictors are stored biased in st[6..9], as _scan does
#define WS_BIAS 0x10000000u  // the IDCT workspace bias of _idct8/4/2

// Status codes of _scan (camlytics/edge/jpeg.py _ERRORS).
#define BAD_CODE 1
#define BAD_COEF 2
#define TRUNCATED 3
#define BAD_RESTART 4

// ---------------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------------

// `obj`'s buffer seen as items of `size` bytes: their count (the buffer must be aligned for them).
static size_t get_items(mp_obj_t obj, mp_buffer_info_t *info, mp_uint_t flags, size_t size) {
    mp_get_buffer_raise(obj, info, flags);
    if (((uintptr_t)info->buf & (size - 1)) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("buffer not aligned for its item size"));
    }
    return info->len / size;
}

static void check_disjoint(const mp_buffer_info_t *written, const mp_buffer_info_t *read) {
    uintptr_t w = (uintptr_t)written->buf, r = (uintptr_t)read->buf;
    if (written->len && read->len && w < r + read->len && r < w + written->len) {
        mp_raise_ValueError(MP_ERROR_TEXT("output buffer overlaps a table"));
    }
}

// a * b <= limit, without overflow (a, b < 2**63).
static bool product_fits(uint64_t a, uint64_t b, uint64_t limit) {
    return a == 0 || b <= limit / a;
}

// True when a w x h plane at `off` with `stride` (rows may overlap) lies inside `len` bytes.
static bool plane_fits(uint64_t off, uint64_t w, uint64_t h, uint64_t stride, uint64_t len) {
    return w == 0 || h == 0 || off + (h - 1) * stride + w <= len;
}

// ---------------------------------------------------------------------------------------------
// IDCTs: libjpeg's jpeg_idct_islow / 4x4 / 2x2, as _idct8/_idct4/_idct2 compute them
// ---------------------------------------------------------------------------------------------

// libjpeg's range limiting of a descaled sample x: x & 1023, then 0..127 -> +128, up to 511 -> 255,
// up to 895 -> 0, else -896 (its sample_range_limit table, offset by CENTERJSAMPLE).
#define LIMIT1(i) ((i) < 128 ? (i) + 128 : (i) < 512 ? 255 : (i) < 896 ? 0 : (i) - 896)
#define LIMIT4(i) LIMIT1(i), LIMIT1(i + 1), LIMIT1(i + 2), LIMIT1(i + 3)
#define LIMIT16(i) LIMIT4(i), LIMIT4(i + 4), LIMIT4(i + 8), LIMIT4(i + 12)
#define LIMIT64(i) LIMIT16(i), LIMIT16(i + 16), LIMIT16(i + 32), LIMIT16(i + 48)
#define LIMIT256(i) LIMIT64(i), LIMIT64(i + 64), LIMIT64(i + 128), LIMIT64(i + 192)
static const uint8_t range_table[1024] = {LIMIT256(0), LIMIT256(256), LIMIT256(512), LIMIT256(768)};

INLINE uint8_t range_limit(uword x) {
    return range_table[x & 1023];
}

INLINE uword dequant(const int16_t *c, const uint16_t *q, int i) {
    return (uword)(word)c[i] * q[i];
}

// Columns 0..w-1 (w < n) of one output row whose outputs before descaling are px[0..w-1].
static void put_partial_row(uint8_t *out, const uword *px, int w, int shift, uword round) {
    for (int x = 0; x < w; x++) {
        out[x] = range_limit(ASR(px[x] + round, shift));
    }
}

static void idct8(const int16_t *c, const uint16_t *q, uint8_t *out, size_t stride, int w, int h) {
    uint32_t ws[64];
    for (int col = 0; col < 8; col++) {
        uword c0 = dequant(c, q, col);
        if ((c[8 + col] | c[16 + col] | c[24 + col] | c[32 + col] | c[40 + col] | c[48 + col] | c[56 + col]) == 0) {
            uint32_t dc = (uint32_t)((c0 << 2) + WS_BIAS);
            for (int i = col; i < 64; i += 8) {
                ws[i] = dc;
            }
            continue;
        }
        uword z2 = dequant(c, q, 16 + col);
        uword z3 = dequant(c, q, 48 + col);
        uword z1 = (z2 + z3) * 4433;
        uword t2 = z1 - z3 * 15137;
        uword t3 = z1 + z2 * 6270;
        z3 = dequant(c, q, 32 + col);
        uword t0 = (c0 + z3) << 13;
        uword t1 = (c0 - z3) << 13;
        uword t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
        t0 = dequant(c, q, 56 + col);
        t1 = dequant(c, q, 40 + col);
        t2 = dequant(c, q, 24 + col);
        t3 = dequant(c, q, 8 + col);
        z1 = t0 + t3;
        z2 = t1 + t2;
        z3 = t0 + t2;
        uword z4 = t1 + t3;
        uword z5 = (z3 + z4) * 9633;
        t0 *= 2446;
        t1 *= 16819;
        t2 *= 25172;
        t3 *= 12299;
        z1 *= (uword)-7373;
        z2 *= (uword)-20995;
        z3 = z3 * (uword)-16069 + z5;
        z4 = z4 * (uword)-3196 + z5;
        t0 += z1 + z3;
        t1 += z2 + z4;
        t2 += z2 + z3;
        t3 += z1 + z4;
        ws[col] = (uint32_t)(ASR(t10 + t3 + 1024, 11) + WS_BIAS);
        ws[col + 56] = (uint32_t)(ASR(t10 - t3 + 1024, 11) + WS_BIAS);
        ws[col + 8] = (uint32_t)(ASR(t11 + t2 + 1024, 11) + WS_BIAS);
        ws[col + 48] = (uint32_t)(ASR(t11 - t2 + 1024, 11) + WS_BIAS);
        ws[col + 16] = (uint32_t)(ASR(t12 + t1 + 1024, 11) + WS_BIAS);
        ws[col + 40] = (uint32_t)(ASR(t12 - t1 + 1024, 11) + WS_BIAS);
        ws[col + 24] = (uint32_t)(ASR(t13 + t0 + 1024, 11) + WS_BIAS);
        ws[col + 32] = (uint32_t)(ASR(t13 - t0 + 1024, 11) + WS_BIAS);
    }
    for (int row = 0; row < h; row++, out += stride) {
        const uint32_t *r = ws + row * 8;
        uword w0 = (uword)r[0] - WS_BIAS, w1 = (uword)r[1] - WS_BIAS;
        uword w2 = (uword)r[2] - WS_BIAS, w3 = (uword)r[3] - WS_BIAS;
        uword w4 = (uword)r[4] - WS_BIAS, w5 = (uword)r[5] - WS_BIAS;
        uword w6 = (uword)r[6] - WS_BIAS, w7 = (uword)r[7] - WS_BIAS;
        uword z1 = (w2 + w6) * 4433;
        uword t2 = z1 - w6 * 15137;
        uword t3 = z1 + w2 * 6270;
        uword t0 = (w0 + w4) << 13;
        uword t1 = (w0 - w4) << 13;
        uword t10 = t0 + t3, t13 = t0 - t3, t11 = t1 + t2, t12 = t1 - t2;
        z1 = w7 + w1;
        uword z2 = w5 + w3;
        uword z3 = w7 + w3;
        uword z4 = w5 + w1;
        uword z5 = (z3 + z4) * 9633;
        t0 = w7 * 2446;
        t1 = w5 * 16819;
        t2 = w3 * 25172;
        t3 = w1 * 12299;
        z1 *= (uword)-7373;
        z2 *= (uword)-20995;
        z3 = z3 * (uword)-16069 + z5;
        z4 = z4 * (uword)-3196 + z5;
        t0 += z1 + z3;
        t1 += z2 + z4;
        t2 += z2 + z3;
        t3 += z1 + z4;
#define PIXEL(v) range_limit(ASR((v) + 131072, 18))
        if (w == 8) {
            out[0] = PIXEL(t10 + t3);
            out[1] = PIXEL(t11 + t2);
            out[2] = PIXEL(t12 + t1);
            out[3] = PIXEL(t13 + t0);
            out[4] = PIXEL(t13 - t0);
            out[5] = PIXEL(t12 - t1);
            out[6] = PIXEL(t11 - t2);
            out[7] = PIXEL(t10 - t3);
        } else {
            uword px[8] = {t10 + t3, t11 + t2, t12 + t1, t13 + t0, t13 - t0, t12 - t1, t11 - t2, t10 - t3};
            put_partial_row(out, px, w, 18, 131072);
        }
#undef PIXEL
    }
}

static void idct4(const int16_t *c, const uint16_t *q, uint8_t *out, size_t stride, int w, int h) {
    uint32_t ws[32];
    for (int col = 0; col < 8; col++) {
        if (col == 4) {  // column 4 does not contribute to a 4x4 output
            continue;
        }
        uword t0 = dequant(c, q, col) << 14;
        uword t2 = dequant(c, q, 16 + col) * 15137 - dequant(c, q, 48 + col) * 6270;
        uword t10 = t0 + t2, t12 = t0 - t2;
        uword z1 = dequant(c, q, 56 + col), z2 = dequant(c, q, 40 + col);
        uword z3 = dequant(c, q, 24 + col), z4 = dequant(c, q, 8 + col);
        t0 = z1 * (uword)-1730 + z2 * 11893 - z3 * 17799 + z4 * 8697;
        t2 = z1 * (uword)-4176 - z2 * 4926 + z3 * 7373 + z4 * 20995;
        ws[col] = (uint32_t)(ASR(t10 + t2 + 2048, 12) + WS_BIAS);
        ws[col + 24] = (uint32_t)(ASR(t10 - t2 + 2048, 12) + WS_BIAS);
        ws[col + 8] = (uint32_t)(ASR(t12 + t0 + 2048, 12) + WS_BIAS);
        ws[col + 16] = (uint32_t)(ASR(t12 - t0 + 2048, 12) + WS_BIAS);
    }
    for (int row = 0; row < h; row++, out += stride) {
        const uint32_t *r = ws + row * 8;
        uword t0 = ((uword)r[0] - WS_BIAS) << 14;
        uword t2 = ((uword)r[2] - WS_BIAS) * 15137 - ((uword)r[6] - WS_BIAS) * 6270;
        uword t10 = t0 + t2, t12 = t0 - t2;
        uword z1 = (uword)r[7] - WS_BIAS, z2 = (uword)r[5] - WS_BIAS;
        uword z3 = (uword)r[3] - WS_BIAS, z4 = (uword)r[1] - WS_BIAS;
        t0 = z1 * (uword)-1730 + z2 * 11893 - z3 * 17799 + z4 * 8697;
        t2 = z1 * (uword)-4176 - z2 * 4926 + z3 * 7373 + z4 * 20995;
#define PIXEL(v) range_limit(ASR((v) + 262144, 19))
        if (w == 4) {
            out[0] = PIXEL(t10 + t2);
            out[1] = PIXEL(t12 + t0);
            out[2] = PIXEL(t12 - t0);
            out[3] = PIXEL(t10 - t2);
        } else {
            uword px[4] = {t10 + t2, t12 + t0, t12 - t0, t10 - t2};
            put_partial_row(out, px, w, 19, 262144);
        }
#undef PIXEL
    }
}

static void idct2(const int16_t *c, const uint16_t *q, uint8_t *out, size_t stride, int w, int h) {
    uint32_t ws[16];
    for (int col = 0; col < 8; col += col == 0 ? 1 : 2) {  // columns 0, 1, 3, 5, 7 only
        uword t10 = dequant(c, q, col) << 15;
        uword t0 = dequant(c, q, 56 + col) * (uword)-5906 + dequant(c, q, 40 + col) * 6967
            + dequant(c, q, 24 + col) * (uword)-10426 + dequant(c, q, 8 + col) * 29692;
        ws[col] = (uint32_t)(ASR(t10 + t0 + 4096, 13) + WS_BIAS);
        ws[col + 8] = (uint32_t)(ASR(t10 - t0 + 4096, 13) + WS_BIAS);
    }
    for (int row = 0; row < h; row++, out += stride) {
        const uint32_t *r = ws + row * 8;
        uword t10 = ((uword)r[0] - WS_BIAS) << 15;
        uword t0 = ((uword)r[7] - WS_BIAS) * (uword)-5906 + ((uword)r[5] - WS_BIAS) * 6967
            + ((uword)r[3] - WS_BIAS) * (uword)-10426 + ((uword)r[1] - WS_BIAS) * 29692;
        out[0] = range_limit(ASR(t10 + t0 + 524288, 20));
        if (w == 2) {
            out[1] = range_limit(ASR(t10 - t0 + 524288, 20));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// jpeg_scan(data, lut, plan, st, coef, qt, out, a) -> status: one scan, as _scan
// ---------------------------------------------------------------------------------------------

// The entropy-coded segment data[pos:end] as a bit stream (libjpeg's rules for markers: a marker
// or the end of the segment feeds zero bits, counted in `fake`).
typedef struct {
    const uint8_t *data;
    size_t pos, end;
    uint32_t acc;  // the last `nbits` bits of the stream are its low bits
    int nbits;
    int fake;      // zero bits fed past the data (saturated: only `fake > nbits` is ever asked)
} bits_t;

INLINE void fill(bits_t *b) {
    while (b->nbits <= 24) {
        uint32_t c = 0;
        if (b->pos < b->end) {
            c = b->data[b->pos];
            if (c != 0xFF) {
                b->pos += 1;
            } else if (b->pos + 1 < b->end && b->data[b->pos + 1] == 0) {
                b->pos += 2;
            } else {
                c = 0;
                b->fake += b->fake < 0x10000 ? 8 : 0;
            }
        } else {
            b->fake += b->fake < 0x10000 ? 8 : 0;
        }
        b->acc = ((b->acc & 0xFFFFFF) << 8) | c;
        b->nbits += 8;
    }
}

// The next Huffman symbol with table slot `t` (see jpeg.py _LOOK.._VALS), or -1 for a bad code.
INLINE int huffman(bits_t *b, const uint16_t *t) {
    if (b->nbits < 16) {
        fill(b);
    }
    unsigned e = t[(b->acc >> (b->nbits - LOOK)) & 511];
    if (e != 0) {
        b->nbits -= e >> 8;
        return e & 255;
    }
    int len = 10;
    uint32_t code = (b->acc >> (b->nbits - 10)) & 1023;
    while (code >= t[MAXC + len]) {
        if (++len > 16) {
            return -1;
        }
        code = (b->acc >> (b->nbits - len)) & ((1u << len) - 1);
    }
    uint32_t i = t[VALP + len] + code - t[MINC + len];  // < 256 for any table _huffman_table built
    if (i >= 256) {
        return -1;
    }
    b->nbits -= len;
    return t[VALS + i];
}

// The next `s` (1..15) bits as a signed coefficient value (JPEG's EXTEND).
INLINE uword receive_extend(bits_t *b, int s) {
    if (b->nbits < s) {
        fill(b);
    }
    b->nbits -= s;
    uword v = (b->acc >> b->nbits) & ((1u << s) - 1);
    if (v < (1u << (s - 1))) {
        v -= (1u << s) - 1;
    }
    return v;
}

// One block of the MCU, from its plan entry.
typedef struct {
    const uint16_t *dc, *ac;  // Huffman table slots
    const uint32_t *fast;     // the AC table's codes with their value bits (see fast_ac), or NULL
    const uint16_t *q;        // quantization table, natural order
    int pred;                 // DC predictor slot in st (6..9)
    bool emit;                // has an output plane
    int bxo, byo, h, v;       // position inside the MCU, blocks per MCU of its component
    int bs;                   // output block size: 1 (DC only), 2, 4, 8
    int ox, oy;               // plane origin, in blocks
    int64_t w, hgt;           // plane size in pixels
    size_t off, stride;
} block_t;

// For AC table slot `t`: per 9-bit lookahead, a code whose value bits are inside those 9 bits too,
// decoded in one step: (value & 0xFFFF) << 16 | run << 8 | bits used; 0 for anything else (longer
// codes, end of block, ZRL), which takes the general path. Same bits, values and checks as that path.
static void fast_ac(const uint16_t *t, uint32_t *fast) {
    for (unsigned i = 0; i < 1 << LOOK; i++) {
        unsigned e = t[i], len = e >> 8, s = e & 15;
        fast[i] = 0;
        if (e != 0 && s != 0 && len + s <= LOOK) {
            unsigned v = (i >> (LOOK - len - s)) & ((1u << s) - 1);
            if (v < (1u << (s - 1))) {
                v -= (1u << s) - 1;
            }
            fast[i] = (v & 0xFFFFu) << 16 | (e & 0xF0) << 4 | (len + s);
        }
    }
}

static void check_table(const uint16_t *lut, size_t nlut, size_t t) {
    if (t + VALS + 256 > nlut) {
        mp_raise_ValueError(MP_ERROR_TEXT("plan: Huffman table outside lut"));
    }
    for (int i = 0; i < 1 << LOOK; i++) {
        if ((lut[t + i] >> 8) > LOOK) {
            mp_raise_ValueError(MP_ERROR_TEXT("lut: invalid code length"));
        }
    }
}

static mp_obj_t jpeg_scan(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t data_b, lut_b, plan_b, st_b, coef_b, qt_b, out_b, a_b;
    size_t ndata = get_items(args[0], &data_b, MP_BUFFER_READ, 1);
    size_t nlut = get_items(args[1], &lut_b, MP_BUFFER_READ, 2);
    size_t nplan = get_items(args[2], &plan_b, MP_BUFFER_READ, 2);
    size_t nst = get_items(args[3], &st_b, MP_BUFFER_RW, 4);
    // coef and a are the viper kernel's scratch buffers; this one has its own on the stack.
    size_t ncoef = get_items(args[4], &coef_b, MP_BUFFER_RW, 2);
    size_t nqt = get_items(args[5], &qt_b, MP_BUFFER_READ, 2);
    size_t nout = get_items(args[6], &out_b, MP_BUFFER_RW, 1);
    size_t na = get_items(args[7], &a_b, MP_BUFFER_RW, 4);
    if (nplan < PZZ + 64 || nst < 10 || ncoef < 64 || na < 72) {
        mp_raise_ValueError(MP_ERROR_TEXT("jpeg_scan: plan, st, coef or a too small"));
    }
    check_disjoint(&out_b, &lut_b);
    check_disjoint(&out_b, &plan_b);
    check_disjoint(&st_b, &lut_b);
    check_disjoint(&st_b, &plan_b);
    const uint16_t *lut = lut_b.buf, *plan = plan_b.buf, *qt = qt_b.buf;
    int32_t *st = st_b.buf;
    uint8_t *out = out_b.buf;

    int nb = plan[0], mx = plan[1], my = plan[2], ri = plan[3];
    if (nb > MAX_BLOCKS) {
        mp_raise_ValueError(MP_ERROR_TEXT("plan: more than 10 blocks per MCU"));
    }
    uint8_t zigzag[64];
    for (int k = 0; k < 64; k++) {
        if (plan[PZZ + k] > 63) {
            mp_raise_ValueError(MP_ERROR_TEXT("plan: zig-zag index out of range"));
        }
        zigzag[k] = (uint8_t)plan[PZZ + k];
    }
    block_t blocks[MAX_BLOCKS];
    uint32_t fast[4][1 << LOOK];  // for the first 4 distinct AC tables (a JPEG has at most 4)
    const uint16_t *fast_of[4] = {NULL, NULL, NULL, NULL};
    for (int i = 0; i < nb; i++) {
        const uint16_t *p = plan + PB + PBLOCK * i;
        block_t *bl = &blocks[i];
        check_table(lut, nlut, p[0]);
        check_table(lut, nlut, p[1]);
        if (p[2] > 3 || (size_t)p[6] + 64 > nqt) {
            mp_raise_ValueError(MP_ERROR_TEXT("plan: component or quantization table out of range"));
        }
        bl->dc = lut + p[0];
        bl->ac = lut + p[1];
        bl->fast = NULL;
        for (int j = 0; j < 4 && bl->fast == NULL; j++) {
            if (fast_of[j] == NULL) {
                fast_of[j] = bl->ac;
                fast_ac(bl->ac, fast[j]);
            }
            if (fast_of[j] == bl->ac) {
                bl->fast = fast[j];
            }
        }
        bl->pred = 6 + p[2];
        bl->q = qt + p[6];
        bl->emit = p[3] != 0;
        bl->bxo = p[4];
        bl->byo = p[5];
        bl->h = p[7];
        bl->v = p[8];
        bl->off = ((size_t)p[9] << 16) + p[10];
        bl->w = p[11];
        bl->hgt = p[12];
        bl->stride = p[13];
        bl->bs = p[14];
        bl->ox = p[15];
        bl->oy = p[16];
        if (bl->emit && ((bl->bs & (bl->bs - 1)) != 0 || bl->bs < 1 || bl->bs > 8
                         || !plane_fits(bl->off, bl->w, bl->hgt, bl->stride, nout))) {
            mp_raise_ValueError(MP_ERROR_TEXT("plan: output plane outside out"));
        }
    }
    if (st[0] < 0 || st[1] < 0 || (size_t)st[1] > ndata) {
        mp_raise_ValueError(MP_ERROR_TEXT("st: scan data outside data"));
    }

    bits_t b = {data_b.buf, (size_t)st[0], (size_t)st[1], 0, 0, 0};
    int16_t coef[64];
    int left = ri, rstn = 0;
    for (int mcuy = 0; mcuy < my; mcuy++) {
        for (int mcux = 0; mcux < mx; mcux++) {
            if (ri != 0) {
                if (left == 0) {
                    if (b.fake > b.nbits) {
                        return MP_OBJ_NEW_SMALL_INT(TRUNCATED);
                    }
                    b.nbits = 0;
                    b.acc = 0;
                    b.fake = 0;
                    if (b.pos + 1 < b.end && b.data[b.pos] == 0xFF && b.data[b.pos + 1] == 0xD0 + rstn) {
                        b.pos += 2;
                    } else {
                        return MP_OBJ_NEW_SMALL_INT(BAD_RESTART);
                    }
                    rstn = (rstn + 1) & 7;
                    left = ri;
                    for (int i = 6; i < 10; i++) {
                        st[i] = (int32_t)DC_BIAS;
                    }
                }
                left -= 1;
            }
            for (int i = 0; i < nb; i++) {
                const block_t *bl = &blocks[i];
                // DC coefficient
                int s = huffman(&b, bl->dc);
                if (s < 0) {
                    return MP_OBJ_NEW_SMALL_INT(BAD_CODE);
                }
                uword diff = 0;
                if (s != 0) {
                    if (s > 11) {
                        return MP_OBJ_NEW_SMALL_INT(BAD_COEF);
                    }
                    diff = receive_extend(&b, s);
                }
                // st holds 32-bit slots, loaded zero-extended as viper's ptr32 does
                uword dc = (uword)(uint32_t)st[bl->pred] - DC_BIAS + diff;
                st[bl->pred] = (int32_t)(uint32_t)(dc + DC_BIAS);
                // Where the pixels go: block (bx, by) of the output plane, wl x hl pixels of it.
                int64_t bx = 0, by = 0, wl = 0, hl = 0;
                if (bl->emit) {
                    bx = (int64_t)mcux * bl->h + bl->bxo - bl->ox;
                    by = (int64_t)mcuy * bl->v + bl->byo - bl->oy;
                    if (bx >= 0 && by >= 0) {
                        wl = bl->w - bx * bl->bs;
                        hl = bl->hgt - by * bl->bs;
                    }
                }
                bool keep = wl > 0 && hl > 0 && bl->bs > 1;
                if (keep) {
                    memset(coef, 0, sizeof(coef));
                    coef[0] = (int16_t)(uint16_t)dc;
                }
                bool anyac = false;
                // AC coefficients, stored only when an IDCT will use them
                int k = 1;
                const uint32_t *fast_ac = bl->fast;
                while (k < 64) {
                    if (fast_ac != NULL) {
                        if (b.nbits < 16) {
                            fill(&b);
                        }
                        uint32_t f = fast_ac[(b.acc >> (b.nbits - LOOK)) & 511];
                        if (f != 0) {
                            b.nbits -= f & 15;
                            k += (f >> 8) & 15;
                            if (k > 63) {
                                return MP_OBJ_NEW_SMALL_INT(BAD_COEF);
                            }
                            if (keep) {
                                coef[zigzag[k]] = (int16_t)(f >> 16);
                                anyac = true;
                            }
                            k += 1;
                            continue;
                        }
                    }
                    int rs = huffman(&b, bl->ac);
                    if (rs < 0) {
                        return MP_OBJ_NEW_SMALL_INT(BAD_CODE);
                    }
                    s = rs & 15;
                    if (s == 0) {
                        if (rs != 0xF0) {
                            break;  // end of block
                        }
                        k += 16;
                        continue;
                    }
                    k += rs >> 4;
                    if (k > 63) {
                        return MP_OBJ_NEW_SMALL_INT(BAD_COEF);
                    }
                    uword v = receive_extend(&b, s);
                    if (keep) {
                        coef[zigzag[k]] = (int16_t)(uint16_t)v;
                        anyac = true;
                    }
                    k += 1;
                }
                if (k > 64) {
                    return MP_OBJ_NEW_SMALL_INT(BAD_COEF);
                }
                // output
                if (wl > 0 && hl > 0) {
                    int bs = bl->bs;
                    int w = wl > bs ? bs : (int)wl, h = hl > bs ? bs : (int)hl;
                    uint8_t *o = out + bl->off + (size_t)by * bs * bl->stride + (size_t)bx * bs;
                    if (!anyac) {
                        // DC only: every IDCT size gives the block mean, as jpeg_idct_1x1 does
                        uint8_t px = range_limit(ASR(dc * bl->q[0] + 4, 3));
                        for (int y = 0; y < h; y++, o += bl->stride) {
                            memset(o, px, w);
                        }
                    } else if (bs == 8) {
                        idct8(coef, bl->q, o, bl->stride, w, h);
                    } else if (bs == 4) {
                        idct4(coef, bl->q, o, bl->stride, w, h);
                    } else {
                        idct2(coef, bl->q, o, bl->stride, w, h);
                    }
                }
            }
        }
    }
    if (b.fake > b.nbits) {
        return MP_OBJ_NEW_SMALL_INT(TRUNCATED);
    }
    st[0] = (int32_t)b.pos;
    return MP_OBJ_NEW_SMALL_INT(0);
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(cml_jpeg_scan_obj, 8, 8, jpeg_scan);

// ---------------------------------------------------------------------------------------------
// jpeg_upsample(src, dst, p): libjpeg's chroma upsampling, as _upsample; p = [sw, sh, hx, vx, fancy]
// ---------------------------------------------------------------------------------------------

static mp_obj_t jpeg_upsample(mp_obj_t src_in, mp_obj_t dst_in, mp_obj_t p_in) {
    mp_buffer_info_t src_b, dst_b, p_b;
    size_t nsrc = get_items(src_in, &src_b, MP_BUFFER_READ, 1);
    size_t ndst = get_items(dst_in, &dst_b, MP_BUFFER_RW, 1);
    size_t np = get_items(p_in, &p_b, MP_BUFFER_READ, 4);
    if (np < 5) {
        mp_raise_ValueError(MP_ERROR_TEXT("jpeg_upsample: p too small"));
    }
    const int32_t *p = p_b.buf;
    int32_t sw = p[0], sh = p[1], hx = p[2], vx = p[3], fancy = p[4];
    if (sw < 0 || sh < 0 || hx < 1 || vx < 1 || (uint64_t)sw * sh > nsrc
        || !product_fits((uint64_t)sw * sh, (uint64_t)hx * vx, ndst)) {
        mp_raise_ValueError(MP_ERROR_TEXT("jpeg_upsample: sizes outside the buffers"));
    }
    const uint8_t *src = src_b.buf;
    uint8_t *dst = dst_b.buf;
    size_t dw = (size_t)sw * hx;
    uint8_t *o = dst;
    for (int32_t y = 0; y < sh; y++) {
        const uint8_t *r0 = src + (size_t)y * sw;
        for (int32_t v = 0; v < vx; v++, o += dw) {
            if (fancy != 0 && vx == 2) {
                // the nearer row is y, the further one above (v == 0) or below (v == 1), clamped
                const uint8_t *r1 = r0;
                if (v == 0 && y > 0) {
                    r1 = r0 - sw;
                } else if (v == 1 && y + 1 < sh) {
                    r1 = r0 + sw;
                }
                if (hx == 2) {
                    if (sw == 1) {
                        int c = r0[0] * 3 + r1[0];
                        o[0] = (uint8_t)((c * 4 + 8) >> 4);
                        o[1] = (uint8_t)((c * 4 + 7) >> 4);
                    } else {
                        int this = r0[0] * 3 + r1[0];
                        int next = r0[1] * 3 + r1[1];
                        o[0] = (uint8_t)((this * 4 + 8) >> 4);
                        o[1] = (uint8_t)((this * 3 + next + 7) >> 4);
                        int last = this;
                        this = next;
                        for (int32_t x = 2; x < sw; x++) {
                            next = r0[x] * 3 + r1[x];
                            o[2 * x - 2] = (uint8_t)((this * 3 + last + 8) >> 4);
                            o[2 * x - 1] = (uint8_t)((this * 3 + next + 7) >> 4);
                            last = this;
                            this = next;
                        }
                        o[2 * sw - 2] = (uint8_t)((this * 3 + last + 8) >> 4);
                        o[2 * sw - 1] = (uint8_t)((this * 4 + 7) >> 4);
                    }
                } else {
                    int bias = v == 0 ? 1 : 2;
                    for (int32_t x = 0; x < sw; x++) {
                        o[x] = (uint8_t)((r0[x] * 3 + r1[x] + bias) >> 2);
                    }
                }
            } else if (fancy != 0 && hx == 2 && vx == 1) {
                if (sw == 1) {
                    o[0] = o[1] = r0[0];
                } else {
                    int val = r0[0];
                    o[0] = (uint8_t)val;
                    o[1] = (uint8_t)((val * 3 + r0[1] + 2) >> 2);
                    for (int32_t x = 1; x < sw - 1; x++) {
                        val = r0[x] * 3;
                        o[2 * x] = (uint8_t)((val + r0[x - 1] + 1) >> 2);
                        o[2 * x + 1] = (uint8_t)((val + r0[x + 1] + 2) >> 2);
                    }
                    val = r0[sw - 1];
                    o[2 * sw - 2] = (uint8_t)((val * 3 + r0[sw - 2] + 1) >> 2);
                    o[2 * sw - 1] = (uint8_t)val;
                }
            } else if (hx == 1) {
                memcpy(o, r0, dw);
            } else {
                for (size_t x = 0; x < dw; x++) {
                    o[x] = r0[x / hx];
                }
            }
        }
    }
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_3(cml_jpeg_upsample_obj, jpeg_upsample);

// ---------------------------------------------------------------------------------------------
// jpeg_ycc_to_rgb(yp, cb, cr, dst, p): libjpeg's YCbCr -> RGB, as _ycc_to_rgb;
// p = [w, h, luma stride, Cb stride, Cr stride]
// ---------------------------------------------------------------------------------------------

INLINE uint8_t clamp255(int v) {
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

static mp_obj_t jpeg_ycc_to_rgb(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t y_b, cb_b, cr_b, dst_b, p_b;
    size_t ny = get_items(args[0], &y_b, MP_BUFFER_READ, 1);
    size_t ncb = get_items(args[1], &cb_b, MP_BUFFER_READ, 1);
    size_t ncr = get_items(args[2], &cr_b, MP_BUFFER_READ, 1);
    size_t ndst = get_items(args[3], &dst_b, MP_BUFFER_RW, 1);
    size_t np = get_items(args[4], &p_b, MP_BUFFER_READ, 4);
    if (np < 5) {
        mp_raise_ValueError(MP_ERROR_TEXT("jpeg_ycc_to_rgb: p too small"));
    }
    const int32_t *p = p_b.buf;
    int32_t w = p[0], h = p[1], ys = p[2], bs = p[3], rs = p[4];
    if (w < 0 || h < 0 || ys < 0 || bs < 0 || rs < 0 || (uint64_t)w * h * 3 > ndst
        || !plane_fits(0, w, h, ys, ny) || !plane_fits(0, w, h, bs, ncb) || !plane_fits(0, w, h, rs, ncr)) {
        mp_raise_ValueError(MP_ERROR_TEXT("jpeg_ycc_to_rgb: sizes outside the buffers"));
    }
    uint8_t *o = dst_b.buf;
    for (int32_t y = 0; y < h; y++) {
        const uint8_t *lum = (const uint8_t *)y_b.buf + (size_t)y * ys;
        const uint8_t *cb = (const uint8_t *)cb_b.buf + (size_t)y * bs;
        const uint8_t *cr = (const uint8_t *)cr_b.buf + (size_t)y * rs;
        for (int32_t x = 0; x < w; x++, o += 3) {
            int l = lum[x], b = cb[x] - 128, r = cr[x] - 128;
            o[0] = clamp255(l + ((91881 * r + 32768) >> 16));
            o[1] = clamp255(l + ((-22554 * b - 46802 * r + 32768) >> 16));
            o[2] = clamp255(l + ((116130 * b + 32768) >> 16));
        }
    }
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(cml_jpeg_ycc_to_rgb_obj, 5, 5, jpeg_ycc_to_rgb);

// ---------------------------------------------------------------------------------------------
// area_resize(src, dst, b, p): rounded box means, as preprocess._area_resize;
// p = [src width, channels, out width, out height];
// b = [x0 * ow, x1 * ow, y0 * oh, y1 * oh]: each output's source columns [x0, x1), rows [y0, y1)
// ---------------------------------------------------------------------------------------------

static mp_obj_t area_resize(size_t n_args, const mp_obj_t *args) {
    (void)n_args;
    mp_buffer_info_t src_b, dst_b, b_b, p_b;
    size_t nsrc = get_items(args[0], &src_b, MP_BUFFER_READ, 1);
    size_t ndst = get_items(args[1], &dst_b, MP_BUFFER_RW, 1);
    size_t nbnd = get_items(args[2], &b_b, MP_BUFFER_READ, 4);
    size_t np = get_items(args[3], &p_b, MP_BUFFER_READ, 4);
    if (np < 4) {
        mp_raise_ValueError(MP_ERROR_TEXT("area_resize: p too small"));
    }
    const int32_t *p = p_b.buf, *bnd = b_b.buf;
    int32_t sw = p[0], ch = p[1], ow = p[2], oh = p[3];
    if (sw < 0 || ch < 1 || ow < 0 || oh < 0 || 2 * ((uint64_t)ow + oh) > nbnd
        || !product_fits((uint64_t)ow * oh, ch, ndst)) {
        mp_raise_ValueError(MP_ERROR_TEXT("area_resize: sizes outside the buffers"));
    }
    // Each box must be non-empty and inside src: x0 < x1 <= sw, 0 <= y0 < y1 <= nsrc / (sw * ch).
    const int32_t *x0s = bnd, *x1s = bnd + ow, *y0s = bnd + 2 * ow, *y1s = bnd + 2 * ow + oh;
    uint64_t rows = sw == 0 ? 0 : nsrc / ((uint64_t)sw * ch);
    for (int32_t i = 0; i < ow; i++) {
        if (x0s[i] < 0 || x0s[i] >= x1s[i] || x1s[i] > sw) {
            mp_raise_ValueError(MP_ERROR_TEXT("area_resize: column bounds outside src"));
        }
    }
    for (int32_t i = 0; i < oh; i++) {
        if (y0s[i] < 0 || y0s[i] >= y1s[i] || (uint64_t)y1s[i] > rows) {
            mp_raise_ValueError(MP_ERROR_TEXT("area_resize: row bounds outside src"));
        }
    }
    const uint8_t *src = src_b.buf;
    uint8_t *o = dst_b.buf;
    for (int32_t oy = 0; oy < oh; oy++) {
        int32_t y0 = y0s[oy], y1 = y1s[oy];
        for (int32_t ox = 0; ox < ow; ox++) {
            int32_t x0 = x0s[ox], x1 = x1s[ox];
            uint64_t n = (uint64_t)(y1 - y0) * (uint64_t)(x1 - x0);
            for (int32_t c = 0; c < ch; c++) {
                uint64_t s = 0;
                for (int32_t y = y0; y < y1; y++) {
                    const uint8_t *px = src + ((size_t)y * sw + x0) * ch + c;
                    for (int32_t x = x0; x < x1; x++, px += ch) {
                        s += *px;
                    }
                }
                *o++ = (uint8_t)((s + (n >> 1)) / n);
            }
        }
    }
    return mp_const_none;
}
MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(cml_area_resize_obj, 4, 4, area_resize);
