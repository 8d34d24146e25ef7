"""manifest.json: what `camlytics bundle` writes, and the schema checks that reject bad manifests."""

from __future__ import annotations

import copy

import pytest

from camlytics.deploy.manifest import (APP_PARAMS, DBUS_CREDENTIALS, PLACEHOLDER_VENDOR_ID, build_manifest,
                                       check_param_value, eap_name, validate_manifest)
from camlytics.errors import DeployError


def sample(**overrides) -> dict:
    options = dict(app_name="camlytics_door", friendly_name="Door", vendor="camlytics", version="1.2.3",
                   architecture="armv7hf")
    options.update(overrides)
    return build_manifest(**options)


def test_built_manifest_has_the_documented_setup_and_a_param_per_setting():
    manifest = validate_manifest(sample())
    setup = manifest["acapPackageConf"]["setup"]
    assert manifest["schemaVersion"] == "2.0.0"
    assert setup == {**setup, "appName": "camlytics_door", "friendlyName": "Door", "vendor": "camlytics",
                     "version": "1.2.3", "architecture": "armv7hf", "runMode": "respawn"}
    config = manifest["acapPackageConf"]["configuration"]
    assert config["settingPage"] == "index.html"
    names = [p["name"] for p in config["paramConfig"]]
    assert names == [p.name for p in APP_PARAMS]
    for wanted in ("MqttHost", "MqttPort", "MqttPrefix", "MqttNodeId", "HaDiscovery", "Threshold", "StableFrames",
                   "FrameRate", "VapixUser", "VapixPassword", "VirtualInputPort"):
        assert wanted in names
    types = {p["name"]: p["type"] for p in config["paramConfig"]}
    assert types["VapixPassword"] == "password" and types["MqttPassword"] == "password"
    assert types["HaDiscovery"] == "bool:no,yes"


def test_param_overrides_become_defaults_and_unknown_names_are_refused():
    manifest = sample(params={"MqttHost": "broker.lan", "Threshold": "75"})
    defaults = {p["name"]: p["default"] for p in manifest["acapPackageConf"]["configuration"]["paramConfig"]}
    assert defaults["MqttHost"] == "broker.lan" and defaults["Threshold"] == "75"
    with pytest.raises(DeployError, match="Mqtt_Host"):
        sample(params={"Mqtt_Host": "x"})


def test_schema_2_needs_a_vendor_id_and_drops_embedded_sdk_version():
    manifest = validate_manifest(sample(vendor_id="0123456789"))
    setup = manifest["acapPackageConf"]["setup"]
    assert manifest["schemaVersion"].startswith("2.")
    assert setup["vendorId"] == "0123456789" and setup["compatibleOsVersions"] == [{"min": "12.0", "max": "13"}]
    assert "embeddedSdkVersion" not in setup
    assert sample()["acapPackageConf"]["setup"]["vendorId"] == PLACEHOLDER_VENDOR_ID
    for field in ("vendorId", "compatibleOsVersions", "architecture"):
        broken = copy.deepcopy(manifest)
        del broken["acapPackageConf"]["setup"][field]
        with pytest.raises(DeployError, match=f"setup.{field} is required"):
            validate_manifest(broken)


def test_schema_1_is_1_7_without_the_2_x_fields_and_keeps_proxy_and_dbus():
    manifest = validate_manifest(sample(schema=1))
    setup = manifest["acapPackageConf"]["setup"]
    assert manifest["schemaVersion"] == "1.7.3"
    assert "vendorId" not in setup and "compatibleOsVersions" not in setup and setup["architecture"] == "armv7hf"
    assert manifest["acapPackageConf"]["configuration"]["reverseProxy"][0]["apiPath"] == "status"
    assert manifest["resources"]["dbus"]["requiredMethods"] == [DBUS_CREDENTIALS]
    with pytest.raises(DeployError, match="--vendor-id needs manifest schema 2"):
        sample(schema=1, vendor_id="0123456789")
    with pytest.raises(DeployError, match="--schema must be 1"):
        sample(schema=3)
    too_old = copy.deepcopy(manifest)
    too_old["schemaVersion"] = "1.4.0"
    with pytest.raises(DeployError, match="reverseProxy needs schemaVersion 1.5"):
        validate_manifest(too_old)


def test_the_reverse_proxy_follows_the_http_port_and_disappears_at_0():
    proxy = sample(params={"HttpPort": "8099"})["acapPackageConf"]["configuration"]["reverseProxy"]
    assert [(e["apiPath"], e["target"], e["access"]) for e in proxy] == [
        ("status", "http://localhost:8099/status", "viewer"), ("spool", "http://localhost:8099/spool", "admin")]
    assert "reverseProxy" not in sample(params={"HttpPort": "0"})["acapPackageConf"]["configuration"]
    params = {p["name"]: p for p in sample()["acapPackageConf"]["configuration"]["paramConfig"]}
    assert params["HttpPort"] == {"name": "HttpPort", "default": "2180", "type": "int:min=0;max=65535"}
    with pytest.raises(DeployError, match="HttpPort.*outside"):
        validate_manifest(sample(params={"HttpPort": "70000"}))


@pytest.mark.parametrize("field, value, message", [
    ("appName", "door-app", "appName"),                 # '-' is not allowed in the executable name
    ("appName", "a" * 27, "appName"),                   # at most 26 characters
    ("version", "1.0", "version"),
    ("version", "v1.0.0", "version"),
    ("runMode", "always", "runMode"),
    ("architecture", "x86_64", "architecture"),
    ("vendor", "ACME<script>", "vendor"),
    ("friendlyName", "", "friendlyName"),
])
def test_invalid_setup_values_are_named(field, value, message):
    manifest = sample()
    manifest["acapPackageConf"]["setup"][field] = value
    with pytest.raises(DeployError, match=message) as info:
        validate_manifest(manifest)
    assert str(info.value).startswith("manifest.json:")


@pytest.mark.parametrize("mutate, message", [
    (lambda m: m.pop("schemaVersion"), "schemaVersion"),
    (lambda m: m.update(schemaVersion="3.0"), "schemaVersion"),
    (lambda m: m.update(extra=1), "unknown field"),
    (lambda m: m["acapPackageConf"]["setup"].pop("vendor"), "vendor"),
    (lambda m: m["acapPackageConf"]["setup"].update(colour="red"), "colour"),
    (lambda m: m["acapPackageConf"]["configuration"]["paramConfig"].append(
        {"name": "MqttHost", "default": "", "type": "string"}), "defined twice"),
    (lambda m: m["acapPackageConf"]["configuration"]["paramConfig"].append(
        {"name": "Level", "default": "200", "type": "int:min=0;max=100"}), "outside"),
    (lambda m: m["acapPackageConf"]["configuration"]["paramConfig"].append(
        {"name": "Mode", "default": "maybe", "type": "bool:no,yes"}), "maybe"),
    (lambda m: m["acapPackageConf"]["configuration"]["paramConfig"].append(
        {"name": "Mode", "default": "1", "type": "float"}), "unknown"),
    (lambda m: m["acapPackageConf"]["configuration"]["paramConfig"].append(
        {"name": "Port", "default": 8080, "type": "int"}), "must be a string"),
    (lambda m: m["acapPackageConf"]["configuration"].update(settingPage="../index.html"), "settingPage"),
    (lambda m: m["resources"]["dbus"].update(requiredMethods="com.axis.X"), "requiredMethods"),
    (lambda m: m["acapPackageConf"]["setup"].update(compatibleOsVersions=[]), "compatibleOsVersions must be a non-empty"),
    (lambda m: m["acapPackageConf"]["setup"].update(compatibleOsVersions=[{"min": "12.0"}]), "max is required"),
    (lambda m: m["acapPackageConf"]["setup"].update(compatibleOsVersions=[{"min": "twelve", "max": "13"}]),
     "AXIS OS version"),
    (lambda m: m["acapPackageConf"]["setup"].update(compatibleOsVersions=[{"min": "13.1", "max": "12"}]),
     "above max"),
    (lambda m: m["acapPackageConf"]["setup"].update(vendorId="12345"), "vendorId"),
    (lambda m: m["acapPackageConf"]["setup"].update(embeddedSdkVersion="3.0"), "removed in schema 2"),
    (lambda m: m["acapPackageConf"]["setup"].update(user={"username": "root", "group": "sdk"}), "username"),
    (lambda m: m["acapPackageConf"]["setup"].update(user={"username": "sdk", "group": "wheel"}), "group"),
    (lambda m: m["acapPackageConf"]["configuration"]["reverseProxy"][0].update(access="everyone"), "access"),
    (lambda m: m["acapPackageConf"]["configuration"]["reverseProxy"][0].update(target="http://10.0.0.1:80/"),
     "target"),
    (lambda m: m["acapPackageConf"]["configuration"]["reverseProxy"][0].update(target="http://localhost:99999/"),
     "outside"),
    (lambda m: m["acapPackageConf"]["configuration"]["reverseProxy"][0].update(apiPath="a b"), "apiPath"),
    (lambda m: m["acapPackageConf"]["configuration"]["reverseProxy"][1].update(apiPath="status"), "defined twice"),
    (lambda m: m["acapPackageConf"]["configuration"]["reverseProxy"][0].pop("access"), "access is required"),
])
def test_schema_violations_are_rejected_with_the_field_named(mutate, message):
    manifest = sample()
    mutate(manifest)
    with pytest.raises(DeployError, match=message):
        validate_manifest(manifest)


def test_every_bad_field_is_one_line_naming_the_manifest():
    manifest = sample()
    manifest["acapPackageConf"]["setup"]["compatibleOsVersions"] = [{"min": "12.0", "max": "x"}]
    with pytest.raises(DeployError) as info:
        validate_manifest(manifest)
    assert str(info.value).startswith("manifest.json: acapPackageConf.setup.compatibleOsVersions[0].max")
    assert "\n" not in str(info.value)


def test_a_package_with_a_binary_must_name_its_architecture():
    manifest = sample(architecture="all")
    files = {"manifest.json", "LICENSE", "camlytics_door", "html/index.html", "lib/micropython"}
    with pytest.raises(DeployError, match="architecture.*lib/micropython"):
        validate_manifest(manifest, files=files)
    validate_manifest(manifest, files=files - {"lib/micropython"})


def test_files_named_by_the_manifest_must_be_in_the_package():
    manifest = sample()
    files = {"manifest.json", "LICENSE", "camlytics_door", "html/index.html"}
    validate_manifest(manifest, files=files)
    with pytest.raises(DeployError, match="executable 'camlytics_door'"):
        validate_manifest(manifest, files=files - {"camlytics_door"})
    with pytest.raises(DeployError, match="html/index.html"):
        validate_manifest(manifest, files=files - {"html/index.html"})


@pytest.mark.parametrize("type_, value, ok", [
    ("string", "anything", True), ("string:maxlen=3", "abcd", False), ("password", "s3cret", True),
    ("hidden:string", "x", True), ("int", "-4", True), ("int:min=1;max=30", "0", False), ("int:min=1;max=30", "x", False),
    ("bool:no,yes", "yes", True), ("enum:a|b", "c", False), ("string", "two\nlines", False),
])
def test_parameter_values_are_checked_against_their_type(type_, value, ok):
    assert (check_param_value(type_, value) is None) == ok


def test_package_name_is_appname_major_minor_patch_arch():
    assert eap_name(sample(version="2.10.3", architecture="aarch64")) == "camlytics_door_2_10_3_aarch64.eap"
