"""Helpers for the HA tests: a portable region (region file + deploy + data) outside any repo,
and running esrt's OCF agents as a cluster would."""

import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import EXAMPLES

OCF_TESTER = shutil.which("ocf-tester")
needs_ocf_tester = pytest.mark.skipif(
    OCF_TESTER is None, reason="ocf-tester is not installed (Debian package resource-agents: "
                               "`apt-get install resource-agents`)")


def agent_environment(ocf_root, **params):
    """The environment a cluster gives an agent: OCF_ROOT, parameters as OCF_RESKEY_*, and a
    state directory (HA_RSCTMP) of the test's own."""
    environ = dict(os.environ, OCF_ROOT=str(ocf_root), HA_RSCTMP=str(ocf_root / "run"))
    environ.update({f"OCF_RESKEY_{key}": value for key, value in params.items()})
    return environ


def run_agent(agent, action, ocf_root, **params):
    """Run `action` of the agent at path `agent` as instance esrt1."""
    return subprocess.run([str(agent), action], capture_output=True, text=True, timeout=180,
                          env=dict(agent_environment(ocf_root, **params),
                                   OCF_RESOURCE_INSTANCE="esrt1"))


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_portable_region(base, car, name="ESHA01", seps=1):
    """Write a region file for CBLAPP01 under `base` (as on a shared disk); return its path.

    srv01 is installed into the region's deploy directory and APPFILE01 initialised (counter 0)
    with the region's own environment, the way `esrt batch run` does it, without any mfds.
    """
    from esrt.cobol.batch import run_batch
    from esrt.cobol.esfh_build import esfh_cobc_args, esfh_library
    from esrt.mapping.car import install_car
    from esrt.paths import RegionPaths, program_environment
    from esrt.settings import validate_server
    base = Path(base)
    definition = validate_server({
        "name": name, "seps": seps,
        "listeners": [{"name": "Web Services", "address": f"127.0.0.1:{free_port()}"}],
        "env": {"DD_APPFILE01": "APPFILE01"},
        "root": str(base / name), "deploy_dir": str(base / "deploy"),
        "data_dir": str(base / "data"), "casroot": str(base / "logs")})
    install_car(Path(car).read_bytes(), definition["deploy_dir"])
    paths = RegionPaths(definition).create()
    code = run_batch(str(EXAMPLES / "initfile1.cbl"), program_environment(definition, paths),
                     cwd=str(paths.data), build_dir=str(paths.root / "batch"),
                     extra_args=esfh_cobc_args(esfh_library()))
    assert code == 0, f"initfile1 ended with exit code {code}"
    region_file = base / f"{name}.region.json"
    region_file.write_text(json.dumps(definition, indent=2))
    return region_file, definition
