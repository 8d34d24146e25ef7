"""App parameters for a deploy: from $CAMLYTICS_PARAM_NAME variables, a parameter file and NAME=VALUE items.

`camlytics deploy` and `camlytics fleet deploy` read them the same way; secrets (VapixPassword, MqttPassword)
come from the environment or a chmod-600 file, never from the command line (it shows in `ps`). Values are
never echoed. The package's manifest says which parameters its app has (`check_deploy_params`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from camlytics.deploy.manifest import check_app_values
from camlytics.errors import DeployError

PARAM_ENV_PREFIX = "CAMLYTICS_PARAM_"  # $CAMLYTICS_PARAM_VapixPassword=... sets the app parameter VapixPassword


def parse_params(items: list[str], what: str = "--param") -> dict[str, str]:
    """NAME=VALUE pairs of --param (or of the lines of a --param-file, `what` naming the line)."""
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise DeployError(f"{what} must look like NAME=VALUE, got {item.split('=')[0]!r}")
        params[name] = value
    return params


def param_file(path: Path, command: str = "camlytics deploy") -> dict[str, str]:
    """NAME=VALUE lines of a --param-file (blank lines and # comments skipped); values are never echoed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeployError(f"--param-file {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    if os.name == "posix" and path.stat().st_mode & 0o077:
        print(f"{command}: warning: --param-file {path} is readable by other users (chmod 600 it)", file=sys.stderr)
    params: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            params.update(parse_params([line.strip("\r")], f"--param-file {path} line {number}"))
    return params


def env_params(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """{NAME: value} of every $CAMLYTICS_PARAM_NAME variable (NAME a Python identifier)."""
    environ = os.environ if environ is None else environ
    return {k[len(PARAM_ENV_PREFIX):]: v for k, v in environ.items()
            if k.startswith(PARAM_ENV_PREFIX) and k[len(PARAM_ENV_PREFIX):].isidentifier()}


def gather_params(path: Path | None = None, items: list[str] | None = None, environ: Mapping[str, str] | None = None,
                  command: str = "camlytics deploy") -> dict[str, str]:
    """App parameters from $CAMLYTICS_PARAM_NAME, then the file `path`, then `items` (each overriding the one
    before)."""
    params = env_params(environ)
    if path is not None:
        params.update(param_file(path, command))
    params.update(parse_params(items or []))
    return params


def declared_params(manifest: dict) -> dict[str, str]:
    """The app parameters a package declares: name -> type (e.g. "password")."""
    try:
        return {p["name"]: p["type"] for p in manifest["acapPackageConf"].get("configuration", {})
                .get("paramConfig", [])}
    except (AttributeError, KeyError, TypeError):
        return {}


def check_deploy_params(params: dict[str, str], manifest: dict) -> None:
    """--param names the package declares, with values its app accepts; DeployError before anything is uploaded."""
    name = manifest["acapPackageConf"]["setup"]["appName"]
    declared = declared_params(manifest)
    for param in params:
        if param not in declared:
            known = ", ".join(sorted(declared)) or "none"
            raise DeployError(f"--param {param}: {name} has no such parameter (its parameters: {known})")
    check_app_values(params, {p: f"--param {p}" for p in params}, declared)
