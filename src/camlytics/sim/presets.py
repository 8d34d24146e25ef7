"""Scene presets: one fixed camera installation each (room, door, lights, camera pose, behaviour).

A preset is the installation; the seed passed to `Scene` only changes the simulated day (timeline,
people, weather, noise). Lengths are metres, angles degrees, colours linear RGB in 0..1.
World axes: x to the right of the room, y up, z from the camera's wall towards the door's wall.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RGB = tuple[float, float, float]


@dataclass(frozen=True)
class Material:
    """A surface look: `kind` picks the procedural texture; `ir` is its reflectance under IR light."""

    kind: str  # paint | tiles | planks | concrete | blocks | wood | metal | carpet | panel | slats | bays
    color: RGB
    color2: RGB = (0.0, 0.0, 0.0)  # grout, plank seams, grain, kick plate ...
    scale: float = 0.5  # tile / plank / block size in metres
    roughness: float = 0.04  # amplitude of the low-frequency blotches
    ir: float = 0.5
    gloss: float = 0.0  # strength of the specular highlight (varnish, polished concrete, paint on metal)
    region: tuple[float, float, float, float] | None = None  # bays: (u0, u1, v0, v1) where the lines are painted


@dataclass(frozen=True)
class Lamp:
    """A point light: position (m), colour, intensity (irradiance at 1 m, facing it)."""

    pos: tuple[float, float, float]
    color: RGB
    power: float


@dataclass(frozen=True)
class Preset:
    """Everything that describes one installation."""

    name: str
    description: str
    # room box: x in [-width/2, width/2], z in [0, depth], y in [0, height]
    width: float
    depth: float
    height: float
    wall_thickness: float
    # door in the back wall (z = depth): left edge x, width, height; hinge on "left"|"right";
    # swing "out" (away from the camera, into the space behind) or "in" (into the room)
    door_x: float
    door_w: float
    door_h: float
    hinge: str
    swing: str
    door_thickness: float
    # the space behind the door: a corridor parallel to the back wall
    behind_depth: float
    behind_height: float
    # window on a side wall: side "left"|"right", z range, y range
    window_side: str
    window_z: tuple[float, float]
    window_y: tuple[float, float]
    # camera: position, yaw (deg, + turns right), pitch (deg, + looks up), horizontal field of view
    cam_pos: tuple[float, float, float]
    cam_yaw: float
    cam_pitch: float
    cam_hfov: float
    # materials
    floor: Material
    walls: Material
    ceiling: Material
    door: Material
    frame: Material
    skirting: Material
    behind_floor: Material
    behind_walls: Material
    # lights
    lamps: tuple[Lamp, ...]
    behind_lamps: tuple[Lamp, ...]
    daylight_color: RGB
    daylight_power: float  # window radiance at full daylight
    ir_power: float  # camera IR illuminator strength
    ir_reach: float  # metres at which IR light is half of its near value (beam falloff)
    ambient: float  # fraction of each light's power that bounces around as uniform light
    # behaviour: hours (local) when lights are on, when people are around, how the door is used
    lights_schedule: tuple[tuple[float, float], ...]
    activity_hours: tuple[tuple[float, float, float], ...]  # (from_h, to_h, weight)
    propped_share: float  # share of the daily open time spent in long "propped open" events
    behind_light_always: bool
    lights_need_dark: bool = False  # lamps are only switched on when daylight is low (homes)
    vignette: float = 0.35
    shake_px: float = 0.8
    extra: dict = field(default_factory=dict)
    # what is watched: "hinged" (one leaf), "double" (two leaves hinged at both jambs), "glass" (a hinged
    # glass leaf in a metal frame), "roller" (a curtain raised vertically), "car" (occupancy of `spot`)
    door_kind: str = "hinged"
    classes: tuple[str, str] = ("closed", "open")  # (common state, rare state) as truth["state"] names them
    door_speed: float = 1.0  # opening/closing durations x this (a roller door or a car takes longer)
    spot: tuple[float, float, float, float] | None = None  # occupancy: floor box (x0, x1, z0, z1) watched
    ir_always: bool = False  # the camera is held in IR (night) mode all day
    motion_light: float = 0.0  # s a lamp stays on after someone moves (0: lamps follow lights_schedule)
    effects: tuple[str, ...] = ()  # scene effects, any of EFFECTS


EFFECTS = ("rain", "fog", "headlights", "focus", "shift")


OFFICE = Preset(
    name="office",
    description="Office: white walls, carpet tiles, wooden door to a lit corridor, daylight window",
    width=5.0, depth=4.8, height=2.7, wall_thickness=0.15,
    door_x=0.35, door_w=0.92, door_h=2.05, hinge="left", swing="out", door_thickness=0.045,
    behind_depth=1.8, behind_height=2.6,
    window_side="left", window_z=(1.2, 3.9), window_y=(0.85, 2.35),
    cam_pos=(-1.1, 2.5, 0.2), cam_yaw=14.0, cam_pitch=-21.0, cam_hfov=80.0,
    floor=Material("carpet", (0.16, 0.17, 0.19), (0.10, 0.11, 0.13), scale=0.5, roughness=0.05, ir=0.45),
    walls=Material("paint", (0.72, 0.72, 0.70), roughness=0.025, ir=0.8),
    ceiling=Material("paint", (0.80, 0.80, 0.80), roughness=0.01, ir=0.8),
    door=Material("wood", (0.36, 0.20, 0.09), (0.22, 0.11, 0.045), scale=0.012, roughness=0.05, ir=0.55, gloss=0.1),
    frame=Material("paint", (0.80, 0.80, 0.78), roughness=0.01, ir=0.85),
    skirting=Material("paint", (0.30, 0.30, 0.30), roughness=0.01, ir=0.4),
    behind_floor=Material("tiles", (0.42, 0.40, 0.36), (0.25, 0.24, 0.22), scale=0.3, roughness=0.04, ir=0.6,
                          gloss=0.2),
    behind_walls=Material("paint", (0.55, 0.62, 0.66), roughness=0.03, ir=0.7),
    lamps=(Lamp((-0.8, 2.65, 1.8), (1.0, 0.98, 0.95), 2.2), Lamp((0.9, 2.65, 3.8), (1.0, 0.98, 0.95), 2.2)),
    behind_lamps=(Lamp((0.8, 2.55, 5.9), (0.95, 1.0, 1.05), 1.6),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=2.6,
    ir_power=2.0, ir_reach=2.6, ambient=0.16,
    lights_schedule=((7.3, 19.0),),
    activity_hours=((7.5, 9.5, 3.0), (9.5, 12.0, 2.0), (12.0, 13.5, 3.0), (13.5, 17.0, 2.0), (17.0, 19.0, 2.5),
                    (19.0, 22.0, 0.3), (5.5, 7.5, 0.3)),
    propped_share=0.45,
    behind_light_always=True,
)

WAREHOUSE = Preset(
    name="warehouse",
    description="Warehouse: grey block walls, concrete floor, steel door to the yard hall, strong IR",
    width=9.0, depth=7.5, height=5.0, wall_thickness=0.25,
    door_x=-0.9, door_w=1.05, door_h=2.15, hinge="right", swing="in", door_thickness=0.06,
    behind_depth=4.0, behind_height=4.5,
    window_side="right", window_z=(2.0, 6.5), window_y=(3.3, 4.4),
    cam_pos=(1.6, 4.0, 0.4), cam_yaw=-14.0, cam_pitch=-24.0, cam_hfov=70.0,
    floor=Material("concrete", (0.30, 0.30, 0.29), (0.65, 0.52, 0.06), scale=1.0, roughness=0.10, ir=0.5, gloss=0.12),
    walls=Material("blocks", (0.36, 0.36, 0.35), (0.27, 0.27, 0.26), scale=0.4, roughness=0.06, ir=0.55),
    ceiling=Material("concrete", (0.25, 0.25, 0.26), roughness=0.05, ir=0.4),
    door=Material("metal", (0.26, 0.31, 0.36), (0.18, 0.19, 0.20), scale=0.3, roughness=0.03, ir=0.5, gloss=0.15),
    frame=Material("metal", (0.12, 0.12, 0.13), roughness=0.02, ir=0.3),
    skirting=Material("paint", (0.55, 0.45, 0.05), roughness=0.04, ir=0.5),
    behind_floor=Material("concrete", (0.24, 0.23, 0.21), scale=1.0, roughness=0.12, ir=0.45),
    behind_walls=Material("blocks", (0.42, 0.40, 0.37), (0.30, 0.29, 0.27), scale=0.4, roughness=0.05, ir=0.55),
    lamps=(Lamp((-2.0, 4.8, 2.5), (1.0, 0.97, 0.9), 6.0), Lamp((2.0, 4.8, 5.5), (1.0, 0.97, 0.9), 6.0)),
    behind_lamps=(Lamp((-0.4, 4.3, 9.5), (1.0, 0.62, 0.25), 4.5),),
    daylight_color=(0.92, 0.98, 1.1), daylight_power=1.8,
    ir_power=6.5, ir_reach=4.0, ambient=0.12,
    lights_schedule=((5.8, 22.3),),
    activity_hours=((6.0, 10.0, 2.0), (10.0, 14.0, 3.0), (14.0, 18.0, 2.0), (18.0, 22.0, 1.0), (22.0, 24.0, 0.15),
                    (0.0, 6.0, 0.1)),
    propped_share=0.6,
    behind_light_always=False,
    vignette=0.45,
    shake_px=1.3,
)

HOME = Preset(
    name="home",
    description="Home: warm walls, oak floor, white panel door to a hallway, evening lamps",
    width=4.2, depth=4.6, height=2.5, wall_thickness=0.12,
    door_x=0.55, door_w=0.82, door_h=2.0, hinge="right", swing="out", door_thickness=0.04,
    behind_depth=1.3, behind_height=2.5,
    window_side="left", window_z=(1.0, 2.6), window_y=(0.9, 2.15),
    cam_pos=(-1.2, 2.25, 0.2), cam_yaw=18.0, cam_pitch=-17.0, cam_hfov=84.0,
    floor=Material("planks", (0.33, 0.19, 0.09), (0.20, 0.11, 0.05), scale=0.18, roughness=0.06, ir=0.55, gloss=0.2),
    walls=Material("paint", (0.70, 0.52, 0.36), roughness=0.03, ir=0.75),
    ceiling=Material("paint", (0.78, 0.74, 0.68), roughness=0.01, ir=0.8),
    door=Material("panel", (0.80, 0.79, 0.76), (0.62, 0.61, 0.58), roughness=0.015, ir=0.85, gloss=0.08),
    frame=Material("paint", (0.82, 0.81, 0.78), roughness=0.01, ir=0.85),
    skirting=Material("paint", (0.82, 0.81, 0.78), roughness=0.01, ir=0.85),
    behind_floor=Material("planks", (0.28, 0.15, 0.07), (0.16, 0.09, 0.04), scale=0.16, roughness=0.06, ir=0.5),
    behind_walls=Material("paint", (0.55, 0.27, 0.18), roughness=0.03, ir=0.6),
    lamps=(Lamp((-1.6, 1.5, 3.9), (1.0, 0.72, 0.42), 0.9), Lamp((1.7, 0.9, 1.6), (1.0, 0.68, 0.38), 0.5)),
    behind_lamps=(Lamp((1.0, 2.3, 5.3), (1.0, 0.75, 0.45), 0.9),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=2.2,
    ir_power=1.4, ir_reach=2.2, ambient=0.2,
    lights_schedule=((6.3, 8.2), (16.5, 23.4)),
    activity_hours=((6.3, 8.5, 3.0), (8.5, 16.5, 0.6), (16.5, 19.0, 2.5), (19.0, 23.3, 2.0), (23.3, 24.0, 0.3),
                    (0.0, 6.3, 0.05)),
    propped_share=0.65,
    behind_light_always=False,
    lights_need_dark=True,
    vignette=0.3,
    shake_px=0.6,
)

# ---- installations kept out of all tuning: the held-out test of the training pipeline ---------------

ROLLER = Preset(
    name="roller",
    description="Loading bay seen from inside: a 3 m steel roller door raised to the yard, rain and headlights",
    width=12.0, depth=9.0, height=6.0, wall_thickness=0.3,
    door_x=-1.2, door_w=3.2, door_h=3.4, hinge="left", swing="out", door_thickness=0.05,
    behind_depth=9.0, behind_height=5.5,
    window_side="right", window_z=(2.5, 7.5), window_y=(4.2, 5.4),
    cam_pos=(3.4, 4.6, 0.5), cam_yaw=-17.0, cam_pitch=-19.0, cam_hfov=76.0,
    floor=Material("concrete", (0.34, 0.33, 0.31), (0.62, 0.5, 0.08), scale=1.0, roughness=0.12, ir=0.5, gloss=0.08),
    walls=Material("blocks", (0.48, 0.47, 0.43), (0.36, 0.35, 0.32), scale=0.5, roughness=0.05, ir=0.6),
    ceiling=Material("metal", (0.30, 0.31, 0.32), roughness=0.04, ir=0.4),
    door=Material("slats", (0.58, 0.60, 0.61), (0.22, 0.22, 0.23), scale=0.11, roughness=0.05, ir=0.65),
    frame=Material("metal", (0.55, 0.45, 0.06), roughness=0.03, ir=0.5),
    skirting=Material("paint", (0.15, 0.15, 0.15), roughness=0.02, ir=0.3),
    behind_floor=Material("concrete", (0.20, 0.20, 0.21), scale=1.0, roughness=0.15, ir=0.4),
    behind_walls=Material("blocks", (0.40, 0.33, 0.28), (0.28, 0.25, 0.22), scale=0.5, roughness=0.06, ir=0.5),
    lamps=(Lamp((-3.0, 5.8, 3.0), (1.0, 0.96, 0.88), 7.0), Lamp((2.5, 5.8, 6.5), (1.0, 0.96, 0.88), 7.0)),
    behind_lamps=(Lamp((0.4, 5.0, 14.0), (1.0, 0.6, 0.25), 9.0),),
    daylight_color=(0.92, 0.98, 1.1), daylight_power=1.6,
    ir_power=7.0, ir_reach=4.5, ambient=0.12,
    lights_schedule=((5.5, 21.5),),
    activity_hours=((5.5, 9.0, 3.0), (9.0, 15.0, 2.0), (15.0, 21.0, 1.5), (21.0, 24.0, 0.2), (0.0, 5.5, 0.1)),
    propped_share=0.7,
    behind_light_always=False,
    vignette=0.4,
    shake_px=1.2,
    door_kind="roller", door_speed=6.0, effects=("rain", "headlights", "shift"),
)

GLASSDOOR = Preset(
    name="glassdoor",
    description="Lobby: a glass door in an aluminium frame to a bright reception, reflections, focus hunting",
    width=5.6, depth=5.2, height=2.8, wall_thickness=0.14,
    door_x=0.25, door_w=1.0, door_h=2.2, hinge="right", swing="out", door_thickness=0.04,
    behind_depth=3.2, behind_height=3.0,
    window_side="left", window_z=(0.8, 4.4), window_y=(0.5, 2.5),
    cam_pos=(-1.4, 2.55, 0.25), cam_yaw=17.0, cam_pitch=-18.0, cam_hfov=78.0,
    floor=Material("tiles", (0.55, 0.54, 0.52), (0.35, 0.34, 0.33), scale=0.6, roughness=0.03, ir=0.65, gloss=0.35),
    walls=Material("paint", (0.62, 0.66, 0.70), roughness=0.02, ir=0.75),
    ceiling=Material("paint", (0.85, 0.85, 0.85), roughness=0.01, ir=0.8),
    door=Material("metal", (0.62, 0.63, 0.65), (0.62, 0.63, 0.65), scale=0.0, roughness=0.02, ir=0.6, gloss=0.5),
    frame=Material("metal", (0.58, 0.59, 0.61), roughness=0.02, ir=0.6),
    skirting=Material("paint", (0.2, 0.2, 0.22), roughness=0.01, ir=0.3),
    behind_floor=Material("tiles", (0.70, 0.66, 0.58), (0.5, 0.47, 0.42), scale=0.45, roughness=0.03, ir=0.7,
                          gloss=0.25),
    behind_walls=Material("paint", (0.78, 0.55, 0.30), roughness=0.03, ir=0.7),
    lamps=(Lamp((-0.9, 2.75, 1.8), (1.0, 0.98, 0.95), 2.4), Lamp((1.2, 2.75, 3.9), (1.0, 0.98, 0.95), 2.4)),
    behind_lamps=(Lamp((0.7, 2.9, 6.8), (1.0, 0.95, 0.85), 3.0),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=2.4,
    ir_power=2.2, ir_reach=2.8, ambient=0.16,
    lights_schedule=((7.0, 20.0),),
    activity_hours=((7.0, 9.5, 3.0), (9.5, 12.0, 2.0), (12.0, 14.0, 3.0), (14.0, 18.0, 2.0), (18.0, 21.0, 0.8),
                    (21.0, 24.0, 0.1), (0.0, 7.0, 0.05)),
    propped_share=0.35,
    behind_light_always=True,
    vignette=0.3,
    door_kind="glass", effects=("focus", "headlights"),
)

DOUBLE = Preset(
    name="double",
    description="Hospital corridor: painted steel double doors (two leaves) to a ward hall, small camera moves",
    width=6.0, depth=6.2, height=2.9, wall_thickness=0.2,
    door_x=-0.75, door_w=1.7, door_h=2.1, hinge="left", swing="out", door_thickness=0.05,
    behind_depth=2.6, behind_height=2.9,
    window_side="right", window_z=(1.5, 4.5), window_y=(1.0, 2.3),
    cam_pos=(1.7, 2.6, 0.3), cam_yaw=-12.0, cam_pitch=-17.0, cam_hfov=76.0,
    floor=Material("tiles", (0.30, 0.42, 0.40), (0.22, 0.3, 0.29), scale=0.4, roughness=0.03, ir=0.55, gloss=0.3),
    walls=Material("paint", (0.80, 0.80, 0.74), roughness=0.02, ir=0.8),
    ceiling=Material("paint", (0.86, 0.86, 0.86), roughness=0.01, ir=0.8),
    door=Material("metal", (0.30, 0.45, 0.62), (0.55, 0.56, 0.57), scale=0.35, roughness=0.03, ir=0.55, gloss=0.2),
    frame=Material("metal", (0.25, 0.38, 0.52), roughness=0.02, ir=0.5),
    skirting=Material("paint", (0.22, 0.3, 0.3), roughness=0.01, ir=0.4),
    behind_floor=Material("tiles", (0.50, 0.50, 0.46), (0.35, 0.35, 0.33), scale=0.4, roughness=0.03, ir=0.6,
                          gloss=0.2),
    behind_walls=Material("paint", (0.70, 0.78, 0.70), roughness=0.02, ir=0.7),
    lamps=(Lamp((0.0, 2.85, 2.0), (1.0, 1.0, 1.0), 2.8), Lamp((0.0, 2.85, 4.8), (1.0, 1.0, 1.0), 2.8)),
    behind_lamps=(Lamp((0.3, 2.8, 7.6), (1.0, 1.0, 1.0), 2.0),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=2.0,
    ir_power=2.4, ir_reach=3.0, ambient=0.17,
    lights_schedule=((5.8, 23.0),),  # the night staff keep the corridor dark: IR
    activity_hours=((6.0, 10.0, 3.0), (10.0, 16.0, 2.5), (16.0, 22.0, 1.5), (22.0, 24.0, 0.6), (0.0, 6.0, 0.4)),
    propped_share=0.5,
    behind_light_always=True,
    vignette=0.32,
    door_kind="double", effects=("shift", "focus"),
)

IRNIGHT = Preset(
    name="irnight",
    description="Storeroom under IR all day: a wooden door, a motion-activated lamp when someone moves",
    width=4.6, depth=5.0, height=2.6, wall_thickness=0.15,
    door_x=-0.2, door_w=0.9, door_h=2.05, hinge="right", swing="in", door_thickness=0.045,
    behind_depth=1.6, behind_height=2.5,
    window_side="left", window_z=(2.0, 2.8), window_y=(2.0, 2.4),
    cam_pos=(1.5, 2.45, 0.2), cam_yaw=-14.0, cam_pitch=-20.0, cam_hfov=82.0,
    floor=Material("concrete", (0.28, 0.27, 0.25), scale=1.0, roughness=0.1, ir=0.45),
    walls=Material("blocks", (0.55, 0.53, 0.50), (0.42, 0.41, 0.39), scale=0.4, roughness=0.05, ir=0.7),
    ceiling=Material("concrete", (0.4, 0.4, 0.4), roughness=0.05, ir=0.5),
    door=Material("wood", (0.40, 0.26, 0.14), (0.25, 0.15, 0.07), scale=0.012, roughness=0.05, ir=0.6, gloss=0.05),
    frame=Material("paint", (0.3, 0.3, 0.3), roughness=0.01, ir=0.4),
    skirting=Material("paint", (0.3, 0.3, 0.3), roughness=0.01, ir=0.4),
    behind_floor=Material("concrete", (0.3, 0.3, 0.3), scale=1.0, roughness=0.1, ir=0.5),
    behind_walls=Material("paint", (0.5, 0.5, 0.48), roughness=0.03, ir=0.65),
    lamps=(Lamp((0.2, 2.55, 2.6), (1.0, 0.9, 0.75), 2.0),),
    behind_lamps=(Lamp((0.6, 2.4, 6.2), (0.9, 0.95, 1.0), 0.5),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=0.25,
    ir_power=2.6, ir_reach=2.4, ambient=0.15,
    lights_schedule=(),
    activity_hours=((7.0, 18.0, 2.0), (18.0, 23.0, 1.0), (23.0, 24.0, 0.3), (0.0, 7.0, 0.2)),
    propped_share=0.3,
    behind_light_always=False,
    vignette=0.3,
    ir_always=True, motion_light=75.0, effects=("focus", "shift"),
)

PARKING = Preset(
    name="parking",
    description="Garage: is the marked parking bay occupied (a car or people in it)? Fog and headlights",
    width=10.0, depth=16.0, height=3.2, wall_thickness=0.3,
    door_x=2.6, door_w=1.2, door_h=2.1, hinge="left", swing="out", door_thickness=0.05,
    behind_depth=2.0, behind_height=3.0,
    window_side="left", window_z=(3.0, 12.0), window_y=(2.3, 3.0),
    cam_pos=(3.8, 3.0, 0.3), cam_yaw=-13.0, cam_pitch=-15.0, cam_hfov=72.0,
    floor=Material("bays", (0.30, 0.30, 0.30), (0.75, 0.72, 0.62), scale=2.7, roughness=0.12, ir=0.5, gloss=0.05,
                   region=(-2.1, 0.6, 10.4, 16.0)),
    walls=Material("concrete", (0.50, 0.50, 0.48), scale=1.0, roughness=0.08, ir=0.6),
    ceiling=Material("concrete", (0.35, 0.35, 0.35), roughness=0.05, ir=0.4),
    door=Material("metal", (0.55, 0.07, 0.05), (0.55, 0.07, 0.05), scale=0.0, roughness=0.02, ir=0.45, gloss=0.45),
    frame=Material("paint", (0.55, 0.55, 0.1), roughness=0.02, ir=0.5),
    skirting=Material("paint", (0.6, 0.55, 0.1), roughness=0.02, ir=0.5),
    behind_floor=Material("concrete", (0.33, 0.33, 0.32), scale=1.0, roughness=0.1, ir=0.5),
    behind_walls=Material("paint", (0.6, 0.62, 0.55), roughness=0.03, ir=0.7),
    lamps=(Lamp((-1.5, 3.1, 5.0), (0.9, 1.0, 0.95), 4.0), Lamp((-1.0, 3.1, 12.0), (0.9, 1.0, 0.95), 4.0),
           Lamp((3.0, 3.1, 9.0), (0.9, 1.0, 0.95), 3.0)),
    behind_lamps=(Lamp((3.2, 2.9, 17.5), (1.0, 0.9, 0.7), 1.2),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=1.4,
    ir_power=6.0, ir_reach=6.0, ambient=0.14,
    lights_schedule=((5.5, 23.5),),
    activity_hours=((6.0, 9.0, 3.0), (9.0, 16.0, 1.5), (16.0, 19.5, 3.0), (19.5, 23.5, 1.0), (23.5, 24.0, 0.2),
                    (0.0, 6.0, 0.1)),
    propped_share=0.75,
    behind_light_always=True,
    vignette=0.4,
    shake_px=0.9,
    door_kind="car", classes=("empty", "occupied"), door_speed=5.0, spot=(-2.1, 0.6, 10.8, 15.8),
    effects=("fog", "headlights", "shift"),
)

CORRIDOR = Preset(
    name="corridor",
    description="Long corridor: a narrow wooden door far away at its end (a narrow, tall ROI), focus hunting",
    width=2.4, depth=15.0, height=2.7, wall_thickness=0.15,
    door_x=-0.35, door_w=0.8, door_h=2.0, hinge="left", swing="out", door_thickness=0.04,
    behind_depth=1.8, behind_height=2.6,
    window_side="right", window_z=(5.0, 6.4), window_y=(1.0, 2.2),
    cam_pos=(0.85, 2.45, 0.2), cam_yaw=-3.0, cam_pitch=-6.0, cam_hfov=64.0,
    floor=Material("tiles", (0.45, 0.38, 0.30), (0.3, 0.25, 0.2), scale=0.3, roughness=0.04, ir=0.6, gloss=0.25),
    walls=Material("paint", (0.74, 0.70, 0.60), roughness=0.025, ir=0.8),
    ceiling=Material("paint", (0.82, 0.82, 0.80), roughness=0.01, ir=0.8),
    door=Material("wood", (0.30, 0.16, 0.07), (0.18, 0.09, 0.04), scale=0.012, roughness=0.05, ir=0.5, gloss=0.1),
    frame=Material("paint", (0.85, 0.85, 0.82), roughness=0.01, ir=0.85),
    skirting=Material("paint", (0.3, 0.25, 0.2), roughness=0.01, ir=0.4),
    behind_floor=Material("planks", (0.35, 0.22, 0.1), (0.2, 0.12, 0.05), scale=0.18, roughness=0.05, ir=0.5),
    behind_walls=Material("paint", (0.45, 0.55, 0.62), roughness=0.03, ir=0.7),
    lamps=(Lamp((0.0, 2.65, 3.0), (1.0, 0.95, 0.88), 1.8), Lamp((0.0, 2.65, 8.0), (1.0, 0.95, 0.88), 1.8),
           Lamp((0.0, 2.65, 13.0), (1.0, 0.95, 0.88), 1.8)),
    behind_lamps=(Lamp((0.5, 2.5, 16.2), (1.0, 0.95, 0.9), 1.2),),
    daylight_color=(0.95, 1.0, 1.08), daylight_power=2.0,
    ir_power=4.0, ir_reach=6.0, ambient=0.18,
    lights_schedule=((6.5, 22.0),),
    activity_hours=((7.0, 9.0, 3.0), (9.0, 17.0, 2.0), (17.0, 22.0, 1.5), (22.0, 24.0, 0.2), (0.0, 7.0, 0.1)),
    propped_share=0.4,
    behind_light_always=False,
    vignette=0.33,
    shake_px=0.7,
    effects=("focus", "shift"),
)

PRESETS: dict[str, Preset] = {p.name: p for p in (OFFICE, WAREHOUSE, HOME, ROLLER, GLASSDOOR, DOUBLE, IRNIGHT, PARKING,
                                                   CORRIDOR)}
HELD_OUT = ("roller", "glassdoor", "double", "irnight", "parking", "corridor")  # kept out of all tuning

