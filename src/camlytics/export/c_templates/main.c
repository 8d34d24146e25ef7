/* Example program for the generated camlytics C runtime: classify a PGM/PPM image or raw tensors.
 *
 *   camlytics_predict IMAGE.pgm          grey model: binary PGM (P5); colour model: binary PPM (P6).
 *                                        Any size: area-resized to the input (docs/int8.md 4.3).
 *   camlytics_predict --raw FILE|-       consecutive uint8 HWC input tensors; prints one line per
 *                                        tensor: "<class index> <logit 0> <logit 1> ..."
 *   camlytics_predict --bench N IMAGE    also times N inferences and prints microseconds per call.
 */
#define _POSIX_C_SOURCE 199309L /* clock_gettime under -std=c99 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>

#include "camlytics_model.h"

static int fail(const char *msg, const char *what) {
    fprintf(stderr, "camlytics_predict: %s%s%s\n", msg, what ? ": " : "", what ? what : "");
    return 2;
}

/* Next header integer of a PNM file, skipping whitespace and # comments; -1 on error. */
static long pnm_int(FILE *f) {
    int ch = fgetc(f);
    while (ch == '#' || ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
        if (ch == '#')
            while (ch != '\n' && ch != EOF) ch = fgetc(f);
        ch = fgetc(f);
    }
    long v = 0;
    int digits = 0;
    while (ch >= '0' && ch <= '9' && digits < 9) {
        v = v * 10 + (ch - '0');
        digits++;
        ch = fgetc(f);
    }
    return digits ? v : -1;  /* the single whitespace after the last field is consumed above */
}

/* Area-resize one channel-interleaved image (docs/int8.md section 4, step 3) into the input tensor. */
static void area_resize(const uint8_t *src, long sw, long sh, int c, uint8_t *dst) {
    for (long oy = 0; oy < CML_INPUT_H; oy++) {
        long y0 = oy * sh / CML_INPUT_H, y1 = (oy + 1) * sh / CML_INPUT_H;
        if (y1 < y0 + 1) y1 = y0 + 1;
        for (long ox = 0; ox < CML_INPUT_W; ox++) {
            long x0 = ox * sw / CML_INPUT_W, x1 = (ox + 1) * sw / CML_INPUT_W;
            if (x1 < x0 + 1) x1 = x0 + 1;
            long n = (y1 - y0) * (x1 - x0);
            for (int k = 0; k < c; k++) {
                long sum = 0;
                for (long y = y0; y < y1; y++)
                    for (long x = x0; x < x1; x++) sum += src[(y * sw + x) * c + k];
                dst[(oy * CML_INPUT_W + ox) * c + k] = (uint8_t)((sum + n / 2) / n);
            }
        }
    }
}

static int read_pnm(const char *path, uint8_t *input) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail("cannot open", path);
    char magic[3] = {0};
    int rc = 0;
    if (fread(magic, 1, 2, f) != 2 || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6')) {
        rc = fail("not a binary PGM (P5) or PPM (P6) file", path);
    } else {
        int c = magic[1] == '5' ? 1 : 3;
        long w = pnm_int(f), h = pnm_int(f), maxval = pnm_int(f);
        if (c != CML_INPUT_C) {
            rc = fail(CML_INPUT_C == 1 ? "this grey model needs a PGM (P5) image" : "this colour model needs a PPM (P6) image", path);
        } else if (w < 1 || h < 1 || w > 16384 || h > 16384 || maxval != 255) {
            rc = fail("unsupported image size or maxval (need 1..16384 pixels, maxval 255)", path);
        } else {
            size_t size = (size_t)w * (size_t)h * (size_t)c;
            uint8_t *pixels = (uint8_t *)malloc(size);
            if (!pixels) rc = fail("out of memory", path);
            else if (fread(pixels, 1, size, f) != size) rc = fail("truncated image", path);
            else area_resize(pixels, w, h, c, input);
            free(pixels);
        }
    }
    fclose(f);
    return rc;
}

static void print_scores(const int8_t *logits, int best) {
    float z[CML_NUM_CLASSES], top = -1e30f, total = 0.0f;
    for (int k = 0; k < CML_NUM_CLASSES; k++) {
        z[k] = CML_OUTPUT_SCALE * (float)(logits[k] - CML_OUTPUT_ZP);
        if (z[k] > top) top = z[k];
    }
    for (int k = 0; k < CML_NUM_CLASSES; k++) total += (z[k] = expf(z[k] - top));
    printf("class: %s\n", cml_class_names[best]);
    for (int k = 0; k < CML_NUM_CLASSES; k++)
        printf("%-16s %.4f  (logit %d)\n", cml_class_names[k], z[k] / total, logits[k]);
}

static int run_raw(const char *path) {
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) return fail("cannot open", path);
    static uint8_t input[CML_INPUT_SIZE];
    int8_t logits[CML_NUM_CLASSES];
    size_t got;
    while ((got = fread(input, 1, sizeof input, f)) == sizeof input) {
        printf("%d", cml_predict(input, logits));
        for (int k = 0; k < CML_NUM_CLASSES; k++) printf(" %d", logits[k]);
        printf("\n");
    }
    if (f != stdin) fclose(f);
    return got ? fail("raw input is not a whole number of input tensors", path) : 0;
}

int main(int argc, char **argv) {
    long bench = 0;
    int argi = 1;
    if (argc == 3 && strcmp(argv[1], "--raw") == 0) return run_raw(argv[2]);
    if (argc == 4 && strcmp(argv[1], "--bench") == 0) {
        bench = strtol(argv[2], NULL, 10);
        argi = 3;
    }
    if (argi != argc - 1 || argv[argi][0] == '-') {
        fprintf(stderr, "usage: %s [--bench N] IMAGE.pgm|IMAGE.ppm\n       %s --raw TENSORS.bin|-\n", argv[0], argv[0]);
        return 2;
    }
    static uint8_t input[CML_INPUT_SIZE];
    int8_t logits[CML_NUM_CLASSES];
    int rc = read_pnm(argv[argi], input);
    if (rc) return rc;
    int best = cml_predict(input, logits);
    print_scores(logits, best);
    if (bench > 0) {
        struct timespec t0, t1;
        volatile int sink = 0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (long i = 0; i < bench; i++) sink += cml_predict(input, logits);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double us = ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / (double)bench;
        printf("time per inference: %.3f us (%ld runs)\n", us, bench);
    }
    return 0;
}
