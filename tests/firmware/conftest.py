"""Firmware fixtures live in tests/conftest.py (`firmware_binary`, `firmware_argv`), shared with the
edge package's MicroPython tests, which also run inside the ARM firmware."""
