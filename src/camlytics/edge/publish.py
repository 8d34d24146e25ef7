"""MQTT topics of the state sensor and Home Assistant MQTT discovery (docs/mqtt.md).

Topics (the interface other systems rely on; `<p>` = topic prefix, default "camlytics",
`<n>` = node id, default "door"):
- `<p>/<n>/availability`  "online" / "offline" (retained; "offline" is the last will)
- `<p>/<n>/state`         the current state: a class name such as "open" or "occupied", or "unknown"
                          (retained, QoS 1)
- `<p>/<n>/attributes`    JSON: confidence, since (unix s), changes, model, model_version (the recorded
                          version, e.g. "v3-1a2b3c4d", or null), frames, raw_class and raw_confidence
                          (the latest frame's top class and its probability) (retained)
- `<d>/binary_sensor/<n>/state/config` (two states with an on/off meaning) or `<d>/sensor/<n>/state/config`
  (an enum sensor otherwise): Home Assistant discovery config (retained), `<d>` = discovery prefix
  (default "homeassistant").
"""

import json

from camlytics.edge.tracker import UNKNOWN, known_classes

# Two-class models Home Assistant has a binary_sensor device class for: {on, off} -> device class.
BINARY_PAIRS = (("open", "closed", "door"), ("occupied", "empty", "occupancy"))

# A binary_sensor takes payload_on, payload_off or "None" (its unknown state) after this template.
BINARY_TEMPLATE = "{{ 'None' if value == '%s' else value }}" % UNKNOWN


class Topics:
    """Topic names for one sensor."""

    def __init__(self, prefix="camlytics", node_id="door", discovery_prefix="homeassistant"):
        for name, value in (("prefix", prefix), ("node_id", node_id), ("discovery_prefix", discovery_prefix)):
            if not value or "#" in value or "+" in value:
                raise ValueError("invalid MQTT topic part %s=%r" % (name, value))
        base = prefix + "/" + node_id
        self.node_id = node_id
        self.availability = base + "/availability"
        self.state = base + "/state"
        self.attributes = base + "/attributes"
        self.discovery_prefix = discovery_prefix

    def discovery_topic(self, component):
        """Where Home Assistant looks for this sensor's config ("binary_sensor" or "sensor")."""
        return "%s/%s/%s/state/config" % (self.discovery_prefix, component, self.node_id)


def binary_states(classes, meta=None):
    """`(on, off, device_class)` when the model's real classes are a pair with an on/off meaning, else None.

    The door and occupancy pairs are known; any other pair needs the model metadata's `active_class`
    (the "on" class) and optionally `device_class` (a Home Assistant binary_sensor device class)."""
    known = known_classes(classes)
    if len(known) != 2:
        return None
    for on, off, device_class in BINARY_PAIRS:
        if on in known and off in known:
            return on, off, device_class
    meta = meta or {}
    on = meta.get("active_class")
    if on in known:
        off = known[1] if known[0] == on else known[0]
        device_class = meta.get("device_class")
        return on, off, device_class if isinstance(device_class, str) and device_class else None
    return None


def ha_component(classes, meta=None):
    """The Home Assistant entity type of this model: "binary_sensor" or "sensor" (enum)."""
    return "binary_sensor" if binary_states(classes, meta) else "sensor"


def discovery_config(topics, classes, name="Door", model_name="camlytics", device_name=None, meta=None):
    """The Home Assistant discovery payload: a binary_sensor for an on/off pair, else an enum sensor."""
    config = {
        "name": name,
        "unique_id": "camlytics_" + topics.node_id,
        "object_id": "camlytics_" + topics.node_id,
        "state_topic": topics.state,
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "json_attributes_topic": topics.attributes,
        "device": {
            "identifiers": ["camlytics_" + topics.node_id],
            "name": device_name or ("camlytics " + topics.node_id),
            "manufacturer": "camlytics",
            "model": model_name,
        },
    }
    pair = binary_states(classes, meta)
    if pair:
        on, off, device_class = pair
        if device_class:
            config["device_class"] = device_class
        config["payload_on"] = on
        config["payload_off"] = off
        config["value_template"] = BINARY_TEMPLATE  # "unknown" -> "None": Home Assistant's unknown state
    else:
        config["device_class"] = "enum"
        config["options"] = known_classes(classes) + [UNKNOWN]
    return json.dumps(config)


def attributes_payload(confidence, since, changes, model_name, frames, raw_class=None, raw_confidence=None,
                       model_version=None):
    """JSON attributes published beside the state."""
    return json.dumps({
        "model_version": model_version,
        "confidence": round(confidence, 4),
        "since": since,
        "changes": changes,
        "model": model_name,
        "frames": frames,
        "raw_class": raw_class,
        "raw_confidence": None if raw_confidence is None else round(raw_confidence, 4),
    })
