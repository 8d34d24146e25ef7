"""The camera firmware: MicroPython cross-compiled with the camlytics C module and the edge app frozen in.

`build` pins and verifies the MicroPython source, builds and caches the binary per architecture;
`cmodule/camlytics/` is the C user module (int8 layers and JPEG inner loops, see camlytics.h).
"""
