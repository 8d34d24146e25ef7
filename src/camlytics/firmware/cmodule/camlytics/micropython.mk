# The camlytics C user module (MicroPython USER_C_MODULES): the edge app's hot paths.
CAMLYTICS_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD += $(CAMLYTICS_MOD_DIR)/module.c $(CAMLYTICS_MOD_DIR)/int8.c $(CAMLYTICS_MOD_DIR)/jpeg.c
CFLAGS_USERMOD += -I$(CAMLYTICS_MOD_DIR) -O2
