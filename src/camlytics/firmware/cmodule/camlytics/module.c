// Module table of `_camlytics`; the kernels live in int8.c and jpeg.c.
#include "camlytics.h"
#include "py/objstr.h"

#ifndef CAMLYTICS_BUILD_ID
#define CAMLYTICS_BUILD_ID "unknown"
#endif

// Which camlytics build this is (version + content digest of the edge package and this module).
static const MP_DEFINE_STR_OBJ(camlytics_build_obj, CAMLYTICS_BUILD_ID);

static const mp_rom_map_elem_t camlytics_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__camlytics) },
    { MP_ROM_QSTR(MP_QSTR_VERSION), MP_ROM_INT(CAMLYTICS_CMODULE_VERSION) },
    { MP_ROM_QSTR(MP_QSTR_BUILD), MP_ROM_PTR(&camlytics_build_obj) },
    { MP_ROM_QSTR(MP_QSTR_conv2d), MP_ROM_PTR(&cml_conv2d_obj) },
    { MP_ROM_QSTR(MP_QSTR_depthwise), MP_ROM_PTR(&cml_depthwise_obj) },
    { MP_ROM_QSTR(MP_QSTR_gap), MP_ROM_PTR(&cml_gap_obj) },
    { MP_ROM_QSTR(MP_QSTR_jpeg_scan), MP_ROM_PTR(&cml_jpeg_scan_obj) },
    { MP_ROM_QSTR(MP_QSTR_jpeg_upsample), MP_ROM_PTR(&cml_jpeg_upsample_obj) },
    { MP_ROM_QSTR(MP_QSTR_jpeg_ycc_to_rgb), MP_ROM_PTR(&cml_jpeg_ycc_to_rgb_obj) },
    { MP_ROM_QSTR(MP_QSTR_area_resize), MP_ROM_PTR(&cml_area_resize_obj) },
};
static MP_DEFINE_CONST_DICT(camlytics_module_globals, camlytics_module_globals_table);

const mp_obj_module_t camlytics_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&camlytics_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__camlytics, camlytics_user_cmodule);
