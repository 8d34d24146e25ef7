// The camlytics C module (`import _camlytics`): the int8 layers of docs/int8.md and the JPEG
// decoder's inner loops, with the same buffer conventions as their Python/viper twins in
// camlytics.edge (ops.py, jpeg.py, preprocess.py), so each is a drop-in replacement.
#ifndef CAMLYTICS_CMODULE_H
#define CAMLYTICS_CMODULE_H

#include "py/obj.h"

// MicroPython has fixed-arity function objects for 0-3 arguments only: 4+ use the _var type
// (MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(name, n, n, fun) with fun(size_t n_args, const mp_obj_t *args)).

// Bumped whenever a kernel's behaviour or signature changes; the edge package checks it.
#define CAMLYTICS_CMODULE_VERSION (1)

// int8.c -- same signatures as camlytics.edge.ops (x, w, y: buffers; p: array('i') parameter block)
extern const mp_obj_fun_builtin_var_t cml_conv2d_obj;      // conv2d(x, w, y, p)
extern const mp_obj_fun_builtin_var_t cml_depthwise_obj;   // depthwise(x, w, y, p)
extern const mp_obj_fun_builtin_fixed_t cml_gap_obj;        // gap(x, y, p)

// jpeg.c -- same signatures as the viper kernels of camlytics.edge.jpeg / preprocess
extern const mp_obj_fun_builtin_var_t cml_jpeg_scan_obj;        // jpeg_scan(data, lut, plan, st, coef, qt, out, a) -> int
extern const mp_obj_fun_builtin_fixed_t cml_jpeg_upsample_obj;  // jpeg_upsample(src, dst, p)
extern const mp_obj_fun_builtin_var_t cml_jpeg_ycc_to_rgb_obj;  // jpeg_ycc_to_rgb(yp, cb, cr, dst, p)
extern const mp_obj_fun_builtin_var_t cml_area_resize_obj;     // area_resize(src, dst, b, p)

#endif
