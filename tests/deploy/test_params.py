"""camlytics.deploy.params: app parameters from $CAMLYTICS_PARAM_NAME, a parameter file and NAME=VALUE items,
read the same way by `camlytics deploy` and `camlytics fleet deploy`; names and values checked against the
package's manifest before anything is uploaded."""

from __future__ import annotations

import pytest

from camlytics.deploy.manifest import build_manifest
from camlytics.deploy.params import PARAM_ENV_PREFIX, check_deploy_params, declared_params, env_params, gather_params
from camlytics.errors import DeployError


def test_environment_then_file_then_items_each_overriding_the_one_before(tmp_path, capsys):
    env = {f"{PARAM_ENV_PREFIX}VapixPassword": "from-env", f"{PARAM_ENV_PREFIX}MinConfidence": "0.6",
           f"{PARAM_ENV_PREFIX}not-a-name": "x", "HOME": "/root"}
    assert env_params(env) == {"VapixPassword": "from-env", "MinConfidence": "0.6"}
    path = tmp_path / "params"
    path.write_text("# secrets\n\nMinConfidence=0.7\r\nVapixPassword=a=b\n")
    path.chmod(0o600)
    got = gather_params(path, ["MinConfidence=0.8"], env)
    assert got == {"VapixPassword": "a=b", "MinConfidence": "0.8"}
    assert capsys.readouterr().err == ""  # chmod 600: no warning, and never a value
    path.chmod(0o644)
    gather_params(path, [], {}, command="camlytics fleet deploy")
    err = capsys.readouterr().err
    assert "camlytics fleet deploy: warning: --param-file" in err and "a=b" not in err
    assert gather_params(None, None, {}) == {}


def test_bad_lines_and_unreadable_files_are_one_line_errors(tmp_path):
    path = tmp_path / "params"
    path.write_text("MinConfidence=0.7\nno equals sign\n")
    with pytest.raises(DeployError, match=r"--param-file .* line 2 must look like NAME=VALUE"):
        gather_params(path, [], {})
    with pytest.raises(DeployError, match="cannot read"):
        gather_params(tmp_path / "missing", [], {})
    with pytest.raises(DeployError, match="--param must look like NAME=VALUE"):
        gather_params(None, ["=x"], {})


def test_the_package_decides_which_names_and_values_it_takes():
    manifest = build_manifest(app_name="camlytics_door", friendly_name="door", vendor="t", version="1.0.0",
                              architecture="all")
    declared = declared_params(manifest)
    assert declared["VapixPassword"] == "password" and "MinConfidence" in declared
    check_deploy_params({"MinConfidence": "0.7", "VapixPassword": "x"}, manifest)
    with pytest.raises(DeployError, match="no such parameter"):
        check_deploy_params({"NoSuchThing": "1"}, manifest)
    with pytest.raises(DeployError, match="MinConfidence"):
        check_deploy_params({"MinConfidence": "2"}, manifest)
