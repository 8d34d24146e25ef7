"""Numbers more than one stage agrees on."""

HOUR = 3600.0  # seconds
DAY = 86400.0  # seconds in a day: simulated days, timelines, a sampler's default span
EDGE_HEAPSIZE = "4M"  # MicroPython heap of the edge app: the ACAP launcher's and the host runner's `-X heapsize`
