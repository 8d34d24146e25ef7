"""camlytics: turn a fixed network camera into a visual state sensor (door open/closed, on the camera)."""

__version__ = "0.1.0"
