"""The edge app's JSON configuration: defaults, validation with messages naming the bad value."""

import json

from camlytics.edge.model import MODEL_FILE

DEFAULTS = {
    "model": MODEL_FILE,
    "backend": "auto",  # auto | c | viper | numpy | pure
    "camera": {
        "url": "http://127.0.0.12",  # how an ACAP reaches VAPIX on the camera itself
        "user": None,
        "password": None,
        "resolution": "640x360",
        "compression": 30,
        "timeout": 5.0,
    },
    "fps": 1.0,
    "roi": None,  # [x0, y0, x1, y1] in full-resolution pixels: overrides the model's ROI (camera moved)
    "max_frames": 0,  # 0 = run forever
    "tracker": {"stable_frames": 3, "threshold": 0.6, "low_streak": 3},
    # a top-class probability below this makes the frame a vote for "unknown"; null: the model metadata's
    # `min_confidence`, else 0 (never). In [0, 1).
    "min_confidence": None,
    # the class that means "something is there" (drives the virtual input); null: the model metadata's
    # `active_class`, else open, occupied, or the second class (edge.tracker.default_active_class)
    "active_class": None,
    "mqtt": None,  # {"host", "port", "tls", "ca_file", "user", "password", "client_id", "prefix", "node_id", "ha_discovery", "discovery_prefix", "keepalive", "name"}
    "virtual_input": None,  # {"port": 1..64, "active_state": null (= active_class) or a class name}
    "webhook": None,  # {"url": "http://..."}
    "spool": None,  # {"dir": "...", "max_bytes": 5000000, "max_files": 200}
    "stats_every": 100,  # log timing/memory every N frames (0 = never)
    "http": None,  # {"port": 1..65535, "host": "127.0.0.1"}: the status/spool endpoint (edge.status)
    # which recorded model this is (`camlytics models`: "v3-1a2b3c4d", or "sha-<8 hex>" for an unrecorded
    # model dir); written by `camlytics bundle`, published in the MQTT attributes and /status
    "model_version": None,
}

# mqtt.port null (the default) means the standard port of the transport: 1883, or 8883 with tls;
# validate() fills it in, so a validated config always holds a number. With tls the broker's
# certificate is always verified: against mqtt.ca_file (PEM or DER CA certificate) when given, else
# against the system CA store (see edge.mqtt). A ca_file without tls is refused, never ignored.
MQTT_DEFAULTS = {
    "host": "127.0.0.1",
    "port": None,
    "tls": False,
    "ca_file": None,
    "user": None,
    "password": None,
    "client_id": None,
    "prefix": "camlytics",
    "node_id": "door",
    "ha_discovery": False,
    "discovery_prefix": "homeassistant",
    "keepalive": 30,
    "name": "Door",
}


class ConfigError(ValueError):
    """The configuration file is missing, not JSON, or has a bad value."""


def _merge(defaults, given, where):
    if given is None:
        return None
    if not isinstance(given, dict):
        raise ConfigError("%s must be an object, got %r" % (where, given))
    out = dict(defaults)
    for key in given:
        if key not in defaults:
            raise ConfigError("unknown setting %s.%s" % (where, key))
        out[key] = given[key]
    return out


def _number(value, name, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ConfigError("%s must be a number in [%s, %s], got %r" % (name, lo, hi, value))
    return value


def _fraction(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError("%s must be a number in [0, 1), got %r" % (name, value))
    return value


def _class_name(value, name):
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError("%s must be a class name of the model or null, got %r" % (name, value))


def _printable(text):
    for ch in text:
        if not " " < ch <= "~":
            return False
    return True


def validate(raw):
    """Merge `raw` (a dict) over DEFAULTS and check every value; returns the full config."""
    if not isinstance(raw, dict):
        raise ConfigError("configuration must be a JSON object")
    cfg = {}
    for key in raw:
        if key not in DEFAULTS:
            raise ConfigError("unknown setting %r" % key)
    for key, default in DEFAULTS.items():
        value = raw.get(key, default)
        if key == "camera":
            value = _merge(default, value, "camera")
        elif key == "tracker":
            value = _merge(default, value, "tracker")
        elif key == "mqtt" and value is not None:
            value = _merge(MQTT_DEFAULTS, value, "mqtt")
        cfg[key] = value
    if cfg["backend"] not in ("auto", "c", "viper", "numpy", "pure"):
        raise ConfigError("backend must be auto, c, viper, numpy or pure, got %r" % cfg["backend"])
    _number(cfg["fps"], "fps", 0.001, 100)
    _number(cfg["max_frames"], "max_frames", 0, 10**9)
    _number(cfg["stats_every"], "stats_every", 0, 10**9)
    cam = cfg["camera"]
    if not isinstance(cam["url"], str) or not cam["url"].startswith("http://"):
        raise ConfigError("camera.url must start with http://, got %r" % cam["url"])
    _number(cam["compression"], "camera.compression", 0, 100)
    _number(cam["timeout"], "camera.timeout", 0.1, 300)
    res = cam["resolution"]
    if res is not None:
        parts = res.split("x") if isinstance(res, str) else []
        if len(parts) != 2 or not (parts[0].isdigit() and parts[1].isdigit()):
            raise ConfigError("camera.resolution must look like 640x360, got %r" % (res,))
    roi = cfg["roi"]
    if roi is not None:
        if not isinstance(roi, list) or len(roi) != 4 or not all(isinstance(v, int) and v >= 0 for v in roi) \
                or roi[2] <= roi[0] or roi[3] <= roi[1]:
            raise ConfigError("roi must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1, got %r" % (roi,))
    if cfg["min_confidence"] is not None:
        _fraction(cfg["min_confidence"], "min_confidence")
    _class_name(cfg["active_class"], "active_class")
    mv = cfg["model_version"]
    if mv is not None and (not isinstance(mv, str) or not 0 < len(mv) <= 64 or not _printable(mv)):
        raise ConfigError("model_version must be a short name such as v3-1a2b3c4d or null, got %r" % (mv,))
    tr = cfg["tracker"]
    _number(tr["stable_frames"], "tracker.stable_frames", 1, 1000)
    _number(tr["threshold"], "tracker.threshold", 0.0, 1.0)
    _number(tr["low_streak"], "tracker.low_streak", 1, 10**6)
    mq = cfg["mqtt"]
    if mq is not None:
        if not isinstance(mq["tls"], bool):
            raise ConfigError("mqtt.tls must be true or false, got %r" % (mq["tls"],))
        if mq["ca_file"] is not None:
            if not isinstance(mq["ca_file"], str) or not mq["ca_file"]:
                raise ConfigError("mqtt.ca_file must be the path of a CA certificate file or null, got %r"
                                  % (mq["ca_file"],))
            if not mq["tls"]:
                raise ConfigError("mqtt.ca_file is set but mqtt.tls is false: set \"tls\": true to use it")
        if mq["port"] is None:
            mq["port"] = 8883 if mq["tls"] else 1883
        _number(mq["port"], "mqtt.port", 1, 65535)
        _number(mq["keepalive"], "mqtt.keepalive", 1, 65535)
    vi = cfg["virtual_input"]
    if vi is not None:
        vi = _merge({"port": 1, "active_state": None}, vi, "virtual_input")
        _number(vi["port"], "virtual_input.port", 1, 64)
        _class_name(vi["active_state"], "virtual_input.active_state")
        cfg["virtual_input"] = vi
    hook = cfg["webhook"]
    if hook is not None:
        hook = _merge({"url": None}, hook, "webhook")
        if not isinstance(hook["url"], str) or not hook["url"].startswith("http://"):
            raise ConfigError("webhook.url must start with http://, got %r" % (hook["url"],))
        cfg["webhook"] = hook
    sp = cfg["spool"]
    if sp is not None:
        sp = _merge({"dir": None, "max_bytes": 5000000, "max_files": 200}, sp, "spool")
        if not isinstance(sp["dir"], str) or not sp["dir"]:
            raise ConfigError("spool.dir must be a directory path, got %r" % (sp["dir"],))
        _number(sp["max_bytes"], "spool.max_bytes", 1000, 10**11)
        _number(sp["max_files"], "spool.max_files", 1, 10**7)
        cfg["spool"] = sp
    web = cfg["http"]
    if web is not None:
        web = _merge({"port": None, "host": "127.0.0.1"}, web, "http")
        if isinstance(web["port"], bool) or not isinstance(web["port"], int) or not 1 <= web["port"] <= 65535:
            raise ConfigError("http.port must be an integer in [1, 65535], got %r" % (web["port"],))
        if not isinstance(web["host"], str) or not web["host"]:
            raise ConfigError("http.host must be an address to listen on such as \"127.0.0.1\", got %r"
                              % (web["host"],))
        cfg["http"] = web
    return cfg


def resolve_states(cfg, meta):
    """`(min_confidence, active_class, virtual-input class)` of a validated config with this model's metadata.

    The config's `min_confidence` overrides the model's (metadata key `min_confidence`, optional);
    a class named in the config must be one of the model's real classes (ConfigError otherwise)."""
    from camlytics.edge.tracker import UNKNOWN, default_active_class, known_classes

    classes = meta["classes"]
    known = known_classes(classes)
    if not known:
        raise ConfigError("the model has no class other than %r" % UNKNOWN)
    min_conf = cfg["min_confidence"]
    if min_conf is None:
        min_conf = meta.get("min_confidence")
        if min_conf is None:
            min_conf = 0.0
        elif isinstance(min_conf, bool) or not isinstance(min_conf, (int, float)) or not 0 <= min_conf < 1:
            raise ConfigError("the model's min_confidence must be a number in [0, 1), got %r" % (min_conf,))
    for key, value in (("active_class", cfg["active_class"]),
                       ("virtual_input.active_state", (cfg["virtual_input"] or {}).get("active_state"))):
        if value is not None and value not in known:
            raise ConfigError("%s must be one of the model's classes %s, got %r%s" % (
                key, ", ".join(known), value, " (the unknown state drives nothing)" if value == UNKNOWN else ""))
    active = cfg["active_class"] or default_active_class(classes, meta.get("active_class"))
    vi_class = (cfg["virtual_input"] or {}).get("active_state") or active
    return float(min_conf), active, vi_class


def load(path):
    """Read and validate a JSON configuration file."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        raise ConfigError("cannot read configuration file %r" % path)
    try:
        raw = json.loads(text)
    except ValueError:
        raise ConfigError("configuration file %r is not valid JSON" % path)
    return validate(raw)
