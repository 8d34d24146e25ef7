"""Secrets never only on the command line: `run` takes the camera and MQTT passwords from a file or the
environment, `deploy` app parameters (VapixPassword, ...) from a --param-file or $CAMLYTICS_PARAM_NAME;
none of them shows in /proc/<pid>/cmdline of a process we start, nor in what the commands print; files
we write that hold secrets are 0600 in 0700 directories. Also: `run` reports a broken model as its own
one-line error (`camlytics run: error: ...`)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from camlytics.errors import CamlyticsError
from camlytics.runtime.launch import app_config, read_password_file
from camlytics.sim.camera import SimulatedCamera
from tests.conftest import Mosquitto, find_free_port

from tests.runtime.test_run_signals import processes_mentioning

CAMLYTICS = Path(sys.executable).parent / "camlytics"
CAMERA_SECRET = "cam-Secret-4711"
MQTT_SECRET = "mqtt-Secret-0815"


cmdlines_with = processes_mentioning  # PIDs of live processes whose command line contains a text


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    return tree


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


class AuthMosquitto(Mosquitto):
    """A mosquitto that lets in only user `edge` with MQTT_SECRET."""

    def __init__(self, workdir: Path) -> None:
        super().__init__(workdir)
        passwords = self.workdir / "passwords"
        passwords.write_text("")
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), "edge", MQTT_SECRET], check=True,
                       capture_output=True)
        passwords.chmod(0o600)
        # run as root, mosquitto would switch to its own user, which cannot read this test's 0700 directory
        user = "user root\n" if os.getuid() == 0 else ""
        self.config.write_text(f"listener {self.port} {self.host}\nallow_anonymous false\npassword_file {passwords}\n"
                               f"persistence false\nlog_dest file {self.log}\n{user}")


def secret_file(path: Path, secret: str) -> Path:
    path.write_text(secret + "\n")
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("how", ["files", "env"])
def test_run_takes_passwords_from_files_or_env_and_never_shows_them(how, door_model, tmp_path):
    import paho.mqtt.client as paho

    broker = AuthMosquitto(tmp_path)
    broker.start()
    try:
        with SimulatedCamera(preset="office", seed=0, auth=("root", CAMERA_SECRET), prewarm=False) as cam:
            env = {**os.environ, "TMPDIR": str(tmp_path)}
            args = [str(CAMLYTICS), "run", str(door_model), "--camera", cam.url.replace("http://", "http://root@"),
                    "--mqtt", f"mqtt://edge@127.0.0.1:{broker.port}", "--node-id", "secrets", "--fps", "4"]
            if how == "files":
                args += ["--camera-password-file", str(secret_file(tmp_path / "cam.pw", CAMERA_SECRET)),
                         "--mqtt-password-file", str(secret_file(tmp_path / "mqtt.pw", MQTT_SECRET))]
            else:
                env.update(CAMLYTICS_PASSWORD=CAMERA_SECRET, CAMLYTICS_MQTT_PASSWORD=MQTT_SECRET)
            states: list[bytes] = []
            sub = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="secrets-test")
            sub.username_pw_set("edge", MQTT_SECRET)
            sub.on_connect = lambda c, *a: c.subscribe("camlytics/secrets/state")
            sub.on_message = lambda c, u, msg: states.append(msg.payload)
            sub.connect("127.0.0.1", broker.port)
            sub.loop_start()
            proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            lines: list[str] = []
            reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
            reader.start()
            seen: set[int] = set()
            try:
                deadline = time.monotonic() + 120
                while not states and time.monotonic() < deadline and proc.poll() is None:
                    for pid in process_tree(proc.pid):  # `run` and the edge app it started
                        seen.add(pid)
                        assert CAMERA_SECRET.encode() not in cmdline(pid) and MQTT_SECRET.encode() not in cmdline(pid)
                    time.sleep(0.1)
                assert states, lines  # the app logged in to the camera and the broker with those passwords
                assert len(seen) >= 2  # we looked at the edge app too
                assert cmdlines_with(CAMERA_SECRET) == [] and cmdlines_with(MQTT_SECRET) == []
            finally:
                proc.terminate()
                proc.wait(30)
                reader.join(5)
                sub.loop_stop()
                sub.disconnect()
    finally:
        broker.stop()
    out = "".join(lines)
    assert CAMERA_SECRET not in out and MQTT_SECRET not in out and "Traceback" not in out, out
    assert "warning" not in out  # no password in a URL: nothing to warn about


def test_a_password_in_the_url_still_works_but_is_warned_about(door_model, tmp_path):
    done = subprocess.run([str(CAMLYTICS), "run", str(door_model), "--camera", "http://root:pw@127.0.0.1:9",
                           "--mqtt", "mqtt://u:pw@127.0.0.1:9", "--runtime", "nonsense"],
                          capture_output=True, text=True, timeout=60)
    assert "password in --camera shows in `ps`" in done.stderr and "password in --mqtt shows in `ps`" in done.stderr


def test_password_sources_are_checked(door_model, tmp_path, monkeypatch):
    model = door_model / "model.cml"
    monkeypatch.setenv("CAMLYTICS_MQTT_PASSWORD", "from-env")
    cfg = app_config(model, "http://root@127.0.0.1:9", mqtt="mqtt://u@127.0.0.1:1883")
    assert cfg["mqtt"]["password"] == "from-env"
    cfg = app_config(model, "http://root@127.0.0.1:9", mqtt="mqtt://u@127.0.0.1:1883", mqtt_password="from-file",
                     camera_password="cam-file")
    assert cfg["mqtt"]["password"] == "from-file" and cfg["camera"]["password"] == "cam-file"
    with pytest.raises(CamlyticsError, match="given twice"):
        app_config(model, "http://root@127.0.0.1:9", mqtt="mqtt://u:x@127.0.0.1:1883", mqtt_password="y")
    with pytest.raises(CamlyticsError, match="given twice"):
        app_config(model, "http://root:x@127.0.0.1:9", camera_password="y")
    with pytest.raises(CamlyticsError, match="needs --mqtt"):
        app_config(model, "http://root@127.0.0.1:9", mqtt_password="y")
    (tmp_path / "empty").write_text("\n")
    for path, message in ((tmp_path / "empty", "first line is empty"), (tmp_path / "none", "cannot read")):
        with pytest.raises(CamlyticsError, match=message):
            read_password_file(str(path), "--mqtt-password-file")
    (tmp_path / "pw").write_text("p@ss word\r\nsecond line\n")
    assert read_password_file(str(tmp_path / "pw"), "--mqtt-password-file") == "p@ss word"


def test_run_with_a_broken_model_is_its_own_one_line_error(door_model, tmp_path):
    data = bytearray((door_model / "model.cml").read_bytes())
    data[40] ^= 0xFF
    broken = tmp_path / "model.cml"
    broken.write_bytes(bytes(data))
    done = subprocess.run([str(CAMLYTICS), "run", str(broken), "--camera", "http://root@127.0.0.1:9"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("camlytics run: error: ") and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "camlytics-edge" not in done.stderr + done.stdout


# -- deploy --------------------------------------------------------------------------------------------
def test_deploy_takes_app_passwords_from_a_param_file_or_env_never_argv(tmp_path):
    from tests.sim.test_apps import APP, package

    eap = tmp_path / "stand-in.eap"
    eap.write_bytes(package())
    params = secret_file(tmp_path / "app.params", f"# the app's secrets\nVapixPassword={CAMERA_SECRET}\n\nMqttHost=broker.lan")
    with SimulatedCamera(auth=("root", "deploy-pw"), prewarm=False) as cam:
        env = {**os.environ, "CAMLYTICS_PASSWORD": "deploy-pw", f"CAMLYTICS_PARAM_MqttPassword": MQTT_SECRET}
        proc = subprocess.Popen([str(CAMLYTICS), "deploy", str(eap), "--camera", cam.url.replace("http://", "http://root@"),
                                 "--param-file", str(params), "--param", "MqttPort=1884"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        looked = 0
        while proc.poll() is None:
            line = cmdline(proc.pid)
            if line:
                looked += 1
                assert CAMERA_SECRET.encode() not in line and MQTT_SECRET.encode() not in line and b"deploy-pw" not in line
            time.sleep(0.01)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, out + err
        assert looked
        assert cam.params[f"root.{APP}.VapixPassword"] == CAMERA_SECRET
        assert cam.params[f"root.{APP}.MqttPassword"] == MQTT_SECRET
        assert cam.params[f"root.{APP}.MqttHost"] == "broker.lan" and cam.params[f"root.{APP}.MqttPort"] == "1884"
    assert CAMERA_SECRET not in out + err and MQTT_SECRET not in out + err and "warning" not in err


def test_deploy_param_file_errors_and_the_argv_password_warning(tmp_path):
    from camlytics.cli import main
    from tests.sim.test_apps import package

    eap = tmp_path / "stand-in.eap"
    eap.write_bytes(package())
    bad = tmp_path / "bad.params"
    bad.write_text("VapixPassword=x\nthis line has no equals sign\n")
    done = subprocess.run([str(CAMLYTICS), "deploy", str(eap), "--camera", "http://root@127.0.0.1:9",
                           "--param-file", str(bad)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and f"--param-file {bad} line 2 must look like NAME=VALUE" in done.stderr, done.stderr
    assert "warning" in done.stderr and "readable by other users" in done.stderr  # written with the default umask
    with SimulatedCamera(auth=("root", "pw"), prewarm=False) as cam:
        camera = cam.url.replace("http://", "http://root:pw@")
        done = subprocess.run([str(CAMLYTICS), "deploy", str(eap), "--camera", camera, "--param", "VapixPassword=x"],
                              capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--param VapixPassword: a password on the command line shows in `ps`" in done.stderr


def test_the_acap_launcher_keeps_its_config_in_a_0700_localdata(door_model, tmp_path):
    from camlytics.deploy.bundle import BundleOptions, build_bundle
    from tests.deploy.test_bundle import fake_interpreter, run_launcher, unpack

    app = unpack(build_bundle(door_model, tmp_path / "a.eap", BundleOptions(interpreter="camera")), tmp_path / "app")
    (app / "localdata").mkdir(mode=0o755)  # as an older version left it
    (app / "localdata").chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_interpreter(bin_dir / "micropython")
    done = run_launcher(app, f"root.camlytics_door.VapixUser=root\nroot.camlytics_door.VapixPassword={CAMERA_SECRET}\n",
                        tmp_path, [bin_dir])
    assert done.returncode == 0, done.stdout + done.stderr
    assert (app / "localdata").stat().st_mode & 0o777 == 0o700
    assert (app / "localdata" / "config.json").stat().st_mode & 0o777 == 0o600
    assert CAMERA_SECRET in (app / "localdata" / "config.json").read_text()
    assert CAMERA_SECRET not in done.stdout + done.stderr
