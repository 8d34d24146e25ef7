// Module table of `_camlytics`; the kernels live in int8.c and jpeg.c.
#include "camlytics.h"
#include "py/objstr.h"
#include "py/runtime.h"

#include <signal.h>

#ifndef CAMLYTICS_BUILD_ID
#define CAMLYTICS_BUILD_ID "unknown"
#endif

// Which camlytics build this is (version + content digest of the edge package and this module).
static const MP_DEFINE_STR_OBJ(camlytics_build_obj, CAMLYTICS_BUILD_ID);

// The signal that stopped the app (0: none yet); written by the handler, read by last_signal().
static volatile sig_atomic_t camlytics_last_signal = 0;

// SIGTERM/SIGHUP: remember which one, then stop the script as Ctrl-C does (the unix port's own
// SIGINT handler schedules the same KeyboardInterrupt), so the app's close() runs.
static void camlytics_sighandler(int signum) {
    if (camlytics_last_signal == 0) {
        camlytics_last_signal = signum;
    }
    mp_sched_keyboard_interrupt();
}

// trap_signals(): SIGTERM and SIGHUP raise KeyboardInterrupt; one ignored at start (nohup) stays ignored.
static mp_obj_t cml_trap_signals(void) {
    static const int signals[] = { SIGTERM, SIGHUP };
    for (size_t i = 0; i < MP_ARRAY_SIZE(signals); i++) {
        struct sigaction old;
        if (sigaction(signals[i], NULL, &old) == 0 && old.sa_handler == SIG_IGN) {
            continue;
        }
        struct sigaction sa;
        sa.sa_flags = 0;  // no SA_RESTART: a blocking call returns EINTR and the VM sees the exception
        sa.sa_handler = camlytics_sighandler;
        sigemptyset(&sa.sa_mask);
        sigaction(signals[i], &sa, NULL);
    }
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_0(cml_trap_signals_obj, cml_trap_signals);

// last_signal(): the number of the trapped signal that arrived first, 0 if none.
static mp_obj_t cml_last_signal(void) {
    return MP_OBJ_NEW_SMALL_INT(camlytics_last_signal);
}
static MP_DEFINE_CONST_FUN_OBJ_0(cml_last_signal_obj, cml_last_signal);

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
    { MP_ROM_QSTR(MP_QSTR_trap_signals), MP_ROM_PTR(&cml_trap_signals_obj) },
    { MP_ROM_QSTR(MP_QSTR_last_signal), MP_ROM_PTR(&cml_last_signal_obj) },
};
static MP_DEFINE_CONST_DICT(camlytics_module_globals, camlytics_module_globals_table);

const mp_obj_module_t camlytics_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&camlytics_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__camlytics, camlytics_user_cmodule);
