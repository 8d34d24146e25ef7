"""The edge runtime: runs unchanged under MicroPython (on the camera) and CPython (on the host).

Only the standard modules MicroPython also has are imported here (sys, time, struct, array, socket,
hashlib, binascii, json, gc, os, errno, select, micropython guarded); numpy is an optional
accelerator on CPython. Import the submodules directly (`from camlytics.edge.model import ...`).
"""
