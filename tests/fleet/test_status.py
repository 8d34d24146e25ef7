"""`camlytics fleet status`: each sensor's availability, state, confidence and model version, read from the
retained messages its edge app publishes (topics built by edge/publish.py's own functions) on a real mosquitto."""

from __future__ import annotations

import json
import re
import time

import paho.mqtt.client as paho

from camlytics.cli import main
from camlytics.edge.publish import Topics, attributes_payload
from tests.conftest import find_free_port

FLEET = """
[mqtt]
host = "{host}"
port = {port}
prefix = "site"
[[camera]]
name = "lobby"
url = "http://127.0.0.1:9"
  [[camera.sensor]]
  name = "front-door"
  [[camera.sensor]]
  name = "gate"
[[camera]]
name = "dock"
url = "http://127.0.0.1:9"
  [[camera.sensor]]
  name = "door"
"""


def publish_retained(host: str, port: int, messages: list[tuple[str, str]]) -> None:
    """Publish each (topic, payload) retained with QoS 1, as the edge app does, and wait for the broker."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-edge-app")
    client.connect(host, port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_status_shows_every_sensor_from_retained_messages(mosquitto, tmp_path, capsys):
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET.format(host=mosquitto.host, port=mosquitto.port))
    since = time.time() - 200
    front, dock = Topics("site", "lobby_front-door"), Topics("site", "dock_door")
    publish_retained(mosquitto.host, mosquitto.port, [
        (front.availability, "online"), (front.state, "open"),
        (front.attributes, attributes_payload(0.9734, since, 3, "camlytics", 120, "open", 0.97, "v3-1a2b3c4d")),
        (dock.availability, "offline"), (dock.state, "closed"),
        (dock.attributes, attributes_payload(0.51, since, 0, "camlytics", 5)),
    ])
    assert main(["fleet", "status", "--fleet", str(path), "--wait", "2", "--json"]) == 1  # not all online
    sensors = {s["sensor"]: s for s in json.loads(capsys.readouterr().out)["sensors"]}
    assert sensors["lobby/front-door"] == {"sensor": "lobby/front-door", "topic": "site/lobby_front-door",
                                           "availability": "online", "state": "open", "confidence": 0.9734,
                                           "model_version": "v3-1a2b3c4d", "since": since}
    assert sensors["dock/door"]["availability"] == "offline" and sensors["dock/door"]["model_version"] is None
    assert sensors["lobby/gate"]["availability"] == "" and sensors["lobby/gate"]["state"] == ""

    assert main(["fleet", "status", "--fleet", str(path), "--wait", "1"]) == 1
    table = capsys.readouterr().out
    assert "1/3 sensors online" in table and "v3-1a2b3c4d" in table and "no message" in table
    assert re.search(r"3m 2\ds", table)  # the state has held 200 s (and the seconds the commands took)


def test_all_online_returns_at_once_with_exit_0(mosquitto, tmp_path, capsys):
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET.format(host=mosquitto.host, port=mosquitto.port))
    messages = []
    for node in ("lobby_front-door", "lobby_gate", "dock_door"):
        t = Topics("site", node)
        messages += [(t.availability, "online"), (t.state, "closed"),
                     (t.attributes, attributes_payload(0.99, time.time(), 0, "camlytics", 1, model_version="v1-00ff00ff"))]
    publish_retained(mosquitto.host, mosquitto.port, messages)
    started = time.monotonic()
    assert main(["fleet", "status", "--fleet", str(path), "--wait", "60"]) == 0
    assert time.monotonic() - started < 60  # it stopped when all had come, not at the end of --wait
    assert "3/3 sensors online" in capsys.readouterr().out


def test_no_broker_and_no_mqtt_section_are_one_line_errors(tmp_path, capsys):
    path = tmp_path / "fleet.toml"
    path.write_text(FLEET.format(host="127.0.0.1", port=find_free_port()))
    assert main(["fleet", "status", "--fleet", str(path), "--wait", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot reach the MQTT broker 127.0.0.1:" in err
    path.write_text(FLEET.split("[[camera]]", 1)[0].replace("[mqtt]", "") .split("host")[0]
                    + "[[camera]]" + FLEET.split("[[camera]]", 1)[1])
    assert main(["fleet", "status", "--fleet", str(path)]) == 2
    assert "no [mqtt] section" in capsys.readouterr().err
