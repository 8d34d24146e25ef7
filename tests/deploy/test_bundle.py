"""`camlytics bundle`: package contents, reproducible bytes, interpreter checks, bad input, the launcher."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from camlytics.cli import main
from camlytics.deploy.bundle import BundleOptions, build_bundle, check_interpreter
from camlytics.errors import DeployError, ModelError
from camlytics.firmware.build import elf_arch
from tests.deploy.conftest import eap_file, read_eap

MICROPYTHON = Path(shutil.which("micropython") or Path(os.sys.executable).parent / "micropython")


@pytest.mark.parametrize("arch", ["armv7hf", "aarch64"])
def test_a_firmware_package_holds_the_firmware_for_its_arch_and_no_edge_sources(model_dir, firmware_binary, tmp_path,
                                                                                arch):
    path = build_bundle(model_dir, tmp_path, BundleOptions(arch=arch, version="1.2.3"))
    assert path.name == f"camlytics_door_1_2_3_{arch}.eap"
    members = read_eap(path)
    assert {"manifest.json", "LICENSE", "camlytics_door", "html/index.html", "model.cml", "build.json",
            "lib/micropython"} <= set(members)
    assert not any(name.startswith(("lib/python", "lib/portable")) for name in members)  # frozen in the firmware
    assert members["lib/micropython"].mode == 0o755 and members["camlytics_door"].mode == 0o755
    assert all(m.uid == 0 and m.gid == 0 and m.mtime == 0 for m in members.values())
    firmware = tmp_path / "micropython"
    firmware.write_bytes(eap_file(path, "lib/micropython"))
    assert elf_arch(firmware) == arch
    assert firmware.read_bytes() == firmware_binary(arch).read_bytes()
    assert eap_file(path, "model.cml") == (model_dir / "model.cml").read_bytes()
    license_text = eap_file(path, "LICENSE")
    assert b"MicroPython" in license_text and b"Mbed TLS" in license_text
    build = json.loads(eap_file(path, "build.json"))
    assert build["firmware"]["arch"] == arch and "firmware" in build["interpreter"]
    manifest = json.loads(eap_file(path, "manifest.json"))
    setup = manifest["acapPackageConf"]["setup"]
    assert manifest["schemaVersion"].startswith("2.") and setup["architecture"] == arch
    assert setup["vendorId"] and setup["compatibleOsVersions"] == [{"min": "12.0", "max": "13"}]
    assert manifest["resources"]["dbus"]["requiredMethods"] == [
        "com.axis.HTTPConf1.VAPIXServiceAccounts1.GetCredentials"]
    assert manifest["acapPackageConf"]["configuration"]["reverseProxy"] == [
        {"apiPath": "status", "target": "http://localhost:2180/status", "access": "viewer"},
        {"apiPath": "spool", "target": "http://localhost:2180/spool", "access": "admin"}]
    launcher = eap_file(path, "camlytics_door").decode()
    assert launcher.startswith("#!/bin/sh") and "INTERPRETER=bundled" in launcher
    assert 'exec ${CAMLYTICS_EMULATOR:+$CAMLYTICS_EMULATOR }"$MPY" -X heapsize=4M -m camlytics.edge.app' in launcher
    page = eap_file(path, "html/index.html").decode()
    assert "root.${APP}" in page and '"MqttHost"' in page and '"HttpPort"' in page


def test_a_package_for_the_cameras_own_micropython_holds_the_stripped_edge_app_as_bytecode(model_dir, tmp_path):
    path = build_bundle(model_dir, tmp_path, BundleOptions(arch="all", interpreter="camera"))
    assert path.name == "camlytics_door_1_0_0_all.eap"
    members = read_eap(path)
    assert "lib/micropython" not in members
    assert not any(name.startswith("lib/portable") for name in members)
    for name in ("lib/python/camlytics/__init__.mpy", "lib/python/camlytics/edge/app.mpy",
                 "lib/python/camlytics/edge/jpeg.mpy", "lib/python/camlytics/edge/config.mpy"):
        assert name in members and eap_file(path, name)[:1] == b"M", name  # mpy-cross output
    # the firmware's frozen set: no CPython-only module, no viper kernels, no source
    assert not any(name.endswith(".py") or "ops_numpy" in name or "ops_viper" in name for name in members)
    assert "INTERPRETER=camera" in eap_file(path, "camlytics_door").decode()
    assert b"Mbed TLS" not in eap_file(path, "LICENSE")


def test_same_inputs_give_the_same_bytes(model_dir, tmp_path):
    first = build_bundle(model_dir, tmp_path / "a.eap")
    second = build_bundle(model_dir, tmp_path / "b.eap")
    assert first.read_bytes() == second.read_bytes()
    different = build_bundle(model_dir, tmp_path / "c.eap", BundleOptions(params={"MqttHost": "broker"}))
    assert different.read_bytes() != first.read_bytes()


def test_cli_writes_the_conventional_name_into_the_output_directory(model_dir, tmp_path, capsys):
    assert main(["bundle", str(model_dir), "--out", str(tmp_path), "--arch", "armv7hf", "--version", "2.0.1",
                 "--mqtt-host", "10.0.0.5", "--threshold", "0.75", "--no-ha-discovery"]) == 0
    path = tmp_path / "camlytics_door_2_0_1_armv7hf.eap"
    assert path.exists() and "camlytics firmware for armv7hf" in capsys.readouterr().out
    params = {p["name"]: p["default"] for p in
              json.loads(eap_file(path, "manifest.json"))["acapPackageConf"]["configuration"]["paramConfig"]}
    assert params["MqttHost"] == "10.0.0.5" and params["Threshold"] == "75" and params["HaDiscovery"] == "no"


def test_interpreter_for_the_target_is_bundled_and_the_license_mentions_it(model_dir, arm_binaries, tmp_path):
    path = build_bundle(model_dir, tmp_path, BundleOptions(arch="armv7hf", interpreter=arm_binaries["armv7hf"]))
    members = read_eap(path)
    assert members["lib/micropython"].mode == 0o755
    assert eap_file(path, "lib/micropython") == arm_binaries["armv7hf"].read_bytes()
    assert b"MicroPython" in eap_file(path, "LICENSE")
    assert build_bundle(model_dir, tmp_path, BundleOptions(arch="aarch64", interpreter=arm_binaries["aarch64"]))


@pytest.mark.parametrize("arch, binary, message", [
    ("armv7hf", "aarch64", "built for 64-bit ARM"),
    ("aarch64", "armv7hf", "built for 32-bit ARM"),
    ("aarch64", "host", "built for x86-64"),
    ("all", "armv7hf", "--arch armv7hf or aarch64"),
])
def test_interpreter_for_another_architecture_is_refused(model_dir, arm_binaries, tmp_path, arch, binary, message):
    exe = Path(shutil.which("true")) if binary == "host" else arm_binaries[binary]
    with pytest.raises(DeployError, match=message):
        build_bundle(model_dir, tmp_path, BundleOptions(arch=arch, interpreter=exe))
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


def test_soft_float_arm_and_non_elf_interpreters_are_refused(arm_binaries, tmp_path):
    data = bytearray(arm_binaries["armv7hf"].read_bytes())
    data[36 + 1] &= ~0x04  # clear EF_ARM_ABI_FLOAT_HARD (0x400) in e_flags
    softfloat = tmp_path / "armel"
    softfloat.write_bytes(bytes(data))
    with pytest.raises(DeployError, match="soft-float"):
        check_interpreter(softfloat, "armv7hf")
    script = tmp_path / "micropython"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(DeployError, match="not an ELF"):
        check_interpreter(script, "armv7hf")
    with pytest.raises(DeployError, match="nowhere"):
        check_interpreter(tmp_path / "nowhere", "aarch64")


def test_an_output_directory_is_made_like_mkdir_but_not_its_parents(model_dir, tmp_path, capsys):
    assert main(["bundle", str(model_dir), "--out", str(tmp_path / "dist") + "/", "--arch", "aarch64"]) == 0
    assert (tmp_path / "dist" / "camlytics_door_1_0_0_aarch64.eap").is_file()
    assert main(["bundle", str(model_dir), "--out", str(tmp_path / "no" / "dist"), "--arch", "aarch64"]) == 2
    assert f"directory {tmp_path / 'no' / 'dist'} does not exist" in capsys.readouterr().err
    assert not (tmp_path / "no").exists()


def test_model_directory_without_an_int8_model_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no edge model file at"):
        build_bundle(tmp_path / "empty", tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "model.cml").write_bytes(b"CML\x00" + bytes(40))
    with pytest.raises(ModelError, match="not a valid edge model"):
        build_bundle(tmp_path / "bad", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "empty"]


@pytest.mark.parametrize("argv, message", [
    (["--app-name", "my-door"], "appName"),
    (["--version", "1.0"], "version"),
    (["--vendor", "ACME <x>"], "vendor"),
    (["--stable-frames", "0"], "StableFrames"),
    (["--mqtt-port", "70000"], "MqttPort"),
    (["--threshold", "1.5"], "threshold"),
    (["--vendor-id", "xyz"], "vendorId"),
])
def test_cli_reports_bad_values_in_one_line_and_writes_nothing(model_dir, tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["bundle", str(model_dir), "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert list(out.iterdir()) == []


def test_existing_package_is_replaced_whole_or_left_alone(model_dir, tmp_path):
    path = build_bundle(model_dir, tmp_path / "app.eap")
    before = path.read_bytes()
    with pytest.raises(DeployError):
        build_bundle(model_dir, tmp_path / "app.eap", BundleOptions(version="bad"))
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["app.eap"]


def unpack(path: Path, dest: Path) -> Path:
    with tarfile.open(path, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest


def run_launcher(app_dir: Path, params: str, tmp_path: Path, path_dirs: list[Path]) -> subprocess.CompletedProcess:
    params_file = tmp_path / "params.conf"
    params_file.write_text(params)
    env = {"PATH": ":".join([*map(str, path_dirs), "/usr/bin", "/bin"]), "CAMLYTICS_PARAMS_FILE": str(params_file),
           "CAMLYTICS_VAPIX_URL": "http://127.0.0.1:9"}
    return subprocess.run([str(app_dir / "camlytics_door")], env=env, capture_output=True, text=True, timeout=30)


def fake_interpreter(path: Path) -> Path:
    """A stand-in for MicroPython that prints its arguments and MICROPYPATH, then exits."""
    path.write_text('#!/bin/sh\necho "FAKE $0 $* MICROPYPATH=$MICROPYPATH"\n')
    path.chmod(0o755)
    return path


def test_launcher_writes_the_edge_config_from_the_app_parameters(model_dir, tmp_path):
    app = unpack(build_bundle(model_dir, tmp_path / "a.eap", BundleOptions(interpreter="camera", params={"VapixUser": "root"})),
                 tmp_path / "app")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_interpreter(bin_dir / "micropython")
    params = ("root.camlytics_door.MqttHost=broker.lan\nroot.camlytics_door.MqttPassword=pa\"ss\\word\n"
              "root.camlytics_door.Threshold=75\nroot.camlytics_door.FrameRate=0.5\n"
              "root.camlytics_door.VapixPassword=secret\nroot.camlytics_door.VirtualInputPort=3\n"
              "root.other_app.MqttHost=not-this-one\n")
    done = run_launcher(app, params, tmp_path, [bin_dir])
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"micropython found on the device PATH ({bin_dir / 'micropython'})" in done.stdout
    assert f"-m camlytics.edge.app {app / 'localdata' / 'config.json'}" in done.stdout
    assert f"MICROPYPATH=.frozen:{app}/lib/python" in done.stdout
    config_path = app / "localdata" / "config.json"
    assert config_path.stat().st_mode & 0o077 == 0  # it holds passwords
    config = json.loads(config_path.read_text())
    assert config["model"] == str(app / "model.cml")
    assert config["camera"] == {"url": "http://127.0.0.1:9", "user": "root", "password": "secret",
                                "resolution": "640x360"}
    assert config["fps"] == 0.5 and config["tracker"] == {"stable_frames": 3, "threshold": 0.75}
    assert config["mqtt"]["host"] == "broker.lan" and config["mqtt"]["password"] == 'pa"ss\\word'
    assert config["mqtt"]["ha_discovery"] is True and config["mqtt"]["port"] == 1883
    assert config["virtual_input"] == {"port": 3} and config["webhook"] is None
    from camlytics.edge.config import validate

    validate(config)  # the edge app accepts what the launcher wrote
    assert "secret" not in done.stdout  # passwords are not logged


def test_launcher_prefers_the_bundled_interpreter_and_says_which_it_uses(model_dir, arm_binaries, tmp_path):
    path = build_bundle(model_dir, tmp_path / "a.eap", BundleOptions(arch="aarch64", interpreter=arm_binaries["aarch64"]))
    app = unpack(path, tmp_path / "app")
    fake_interpreter(app / "lib" / "micropython")  # this machine cannot run the aarch64 binary: stand in for it
    done = run_launcher(app, "", tmp_path, [])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "interpreter: bundled lib/micropython" in done.stdout and f"FAKE {app}/lib/micropython" in done.stdout
    assert json.loads((app / "localdata" / "config.json").read_text())["mqtt"] is None  # MqttHost empty: off


def test_launcher_without_any_interpreter_fails_clearly(model_dir, tmp_path):
    app = unpack(build_bundle(model_dir, tmp_path / "a.eap"), tmp_path / "app")
    done = run_launcher(app, "", tmp_path, [tmp_path / "empty"])
    assert done.returncode == 1
    assert "no micropython on the device PATH" in done.stdout and "--interpreter camera" in done.stdout


@pytest.mark.parametrize("param, value", [("FrameRate", "fast"), ("MqttPort", "-1"), ("HaDiscovery", "maybe"),
                                          ("Resolution", "big"), ("WebhookUrl", "ftp://x")])
def test_launcher_refuses_bad_parameter_values_naming_them(model_dir, tmp_path, param, value):
    app = unpack(build_bundle(model_dir, tmp_path / "a.eap"), tmp_path / "app")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_interpreter(bin_dir / "micropython")
    done = run_launcher(app, f"root.camlytics_door.{param}={value}\n", tmp_path, [bin_dir])
    assert done.returncode == 1 and f"parameter {param}" in done.stdout and "FAKE" not in done.stdout


def test_launcher_on_axis_os_reads_parhandclient_and_vapix_credentials_from_dbus(model_dir, tmp_path):
    app = unpack(build_bundle(model_dir, tmp_path / "a.eap"), tmp_path / "app")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_interpreter(bin_dir / "micropython")
    # stand-ins with the output formats of AXIS OS's tools
    (bin_dir / "parhandclient").write_text(
        '#!/bin/sh\ncase "$2" in\n root.camlytics_door.MqttHost) echo \'"broker.lan"\';;\n'
        ' root.camlytics_door.StableFrames) echo \'"5"\';;\n *) exit 1;;\nesac\n')
    (bin_dir / "dbus-send").write_text(
        '#!/bin/sh\necho "method return time=1 sender=:1.8 -> destination=:1.9 serial=3 reply_serial=2"\n'
        'echo \'   string "acap-camlytics_door:s3cr:et"\'\n')
    for tool in ("parhandclient", "dbus-send"):
        (bin_dir / tool).chmod(0o755)
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin"}  # no CAMLYTICS_* variables: as on a camera
    done = subprocess.run([str(app / "camlytics_door")], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "service account from D-Bus" in done.stdout and "s3cr" not in done.stdout
    config = json.loads((app / "localdata" / "config.json").read_text())
    assert config["camera"]["url"] == "http://127.0.0.12"  # VAPIX of the camera the app runs on
    assert (config["camera"]["user"], config["camera"]["password"]) == ("acap-camlytics_door", "s3cr:et")
    assert config["mqtt"]["host"] == "broker.lan" and config["tracker"]["stable_frames"] == 5
    assert config["mqtt"]["port"] == 1883  # parhandclient failed for it: the manifest default
