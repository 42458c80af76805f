"""Deploying packages to a server, including the MF `mfdepinst` convention.

`mfdepinst srv01.car` is run inside a deploy directory whose `.mfdeploy` file names the target
(`MFDS=localhost`, `MFUS_SERVER=ESSRV01`, `MFUS_LISTENER=Web Services`); the outcome is written
to `deploy.txt` beside it, as the original tool did, so existing scripts can check it.
"""

import datetime
from pathlib import Path

from esrt.node.mfds_client import MfdsClient


def read_mfdeploy(directory="."):
    """Return the settings of .mfdeploy in directory as a dict (keys upper-cased)."""
    path = Path(directory) / ".mfdeploy"
    if not path.is_file():
        raise FileNotFoundError(f"no .mfdeploy in {Path(directory).resolve()}: create one with a "
                                "line MFUS_SERVER=ESSRV01, or use "
                                "`esrt deploy PKG.car --server NAME`")
    settings = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{path}:{number}: expected KEY=value, got {line!r}")
        settings[key.strip().upper()] = value.strip()
    if not settings.get("MFUS_SERVER"):
        raise ValueError(f"{path}: MFUS_SERVER=<server name> is missing")
    return settings


def deploy_package(car_path, server, home=None, client=None):
    """Send a .car to the node's mfds for installation on `server`; return mfds's answer."""
    car_path = Path(car_path)
    if not car_path.is_file():
        raise FileNotFoundError(f"package {car_path} not found: build it with "
                                "`esrt imtk generate --service NAME`")
    client = client or MfdsClient.from_home(home)
    return client.deploy(server, car_path.read_bytes(), car_path.name)


def write_deploy_report(directory, car_name, server, outcome, ok):
    """Write deploy.txt the way scripts written for mfdepinst expect to find it."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S")
    text = (f"{stamp} Deploying {car_name} to server {server}\n"
            f"{outcome}\n"
            f"Deployment {'successful' if ok else 'failed'}\n")
    (Path(directory) / "deploy.txt").write_text(text)
