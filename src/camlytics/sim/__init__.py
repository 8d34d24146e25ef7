"""The simulated door scene: a procedurally rendered camera view with per-frame ground truth."""

from camlytics.sim.presets import PRESETS, Preset
from camlytics.sim.scene import Scene
from camlytics.sim.timeline import OPEN_ANGLE, DoorEvent, Timeline

__all__ = ["PRESETS", "Preset", "Scene", "Timeline", "DoorEvent", "OPEN_ANGLE"]
