# The camlytics C user module (MicroPython USER_C_MODULES): the edge app's hot paths.
CAMLYTICS_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD += $(CAMLYTICS_MOD_DIR)/module.c $(CAMLYTICS_MOD_DIR)/int8.c $(CAMLYTICS_MOD_DIR)/jpeg.c
CFLAGS_USERMOD += -I$(CAMLYTICS_MOD_DIR)
# The port compiles for size (-Os, placed after CFLAGS_USERMOD); the kernels are the hot path, so
# their objects get -O2 as the last word (and the architecture's kernel flags, e.g. NEON on armv7hf).
$(BUILD)/camlytics/%.o: CFLAGS += -O2 $(CAMLYTICS_KERNEL_CFLAGS)
