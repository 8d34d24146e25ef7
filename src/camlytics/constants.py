"""Numbers more than one stage agrees on."""

HOUR = 3600.0  # seconds
DAY = 86400.0  # seconds in a day: simulated days, timelines, a sampler's default span
