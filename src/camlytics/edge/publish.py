"""MQTT topics of the state sensor and Home Assistant MQTT discovery.

Topics (the interface other systems rely on; `<p>` = topic prefix, default "camlytics",
`<n>` = node id, default "door"):
- `<p>/<n>/availability`  "online" / "offline" (retained; "offline" is the last will)
- `<p>/<n>/state`         the current class name, e.g. "open" (retained, QoS 1)
- `<p>/<n>/attributes`    JSON: confidence, since (unix s), changes, model, frames (retained)
- `<d>/binary_sensor/<n>/state/config` (two classes) or `<d>/sensor/<n>/state/config`
  (N classes): Home Assistant discovery config (retained), `<d>` = discovery prefix
  (default "homeassistant").
"""

import json


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

    def discovery_topic(self, classes):
        """Where Home Assistant looks for this sensor's config."""
        component = "binary_sensor" if _is_binary(classes) else "sensor"
        return "%s/%s/%s/state/config" % (self.discovery_prefix, component, self.node_id)


def _is_binary(classes):
    return len(classes) == 2 and "open" in classes and "closed" in classes


def discovery_config(topics, classes, name="Door", model_name="camlytics", device_name=None):
    """The Home Assistant discovery payload: a door binary_sensor, or an enum sensor for N classes."""
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
    if _is_binary(classes):
        config["device_class"] = "door"
        config["payload_on"] = "open"
        config["payload_off"] = "closed"
    else:
        config["device_class"] = "enum"
        config["options"] = list(classes)
    return json.dumps(config)


def attributes_payload(confidence, since, changes, model_name, frames):
    """JSON attributes published beside the state."""
    return json.dumps({
        "confidence": round(confidence, 4),
        "since": since,
        "changes": changes,
        "model": model_name,
        "frames": frames,
    })
