"""esrt's resource agents and their installer: `ocf:esrt:region` (its template, the file
`region` here) and `ocf:esrt:pgfollow` (the file `pgfollow`: a PostgreSQL standby follows a
promoted primary at once).

A cluster runs agents with an almost empty environment, so the installer writes into the
agent where this esrt lives: the `esrt` script beside the running Python when there is one,
else that Python with this package's directory on PYTHONPATH.
"""

import os
import sys
from pathlib import Path

from esrt.home import write_text_atomic

DEFAULT_OCF_RESOURCE_DIR = "/usr/lib/ocf/resource.d"
PROVIDER = "esrt"
AGENT_NAME = "region"
AGENT_NAMES = (AGENT_NAME, "pgfollow")


class AgentInstallError(Exception):
    """The agent could not be installed; the message says where and what to do."""


def agent_text(name=AGENT_NAME):
    """Agent `name`'s script with this installation's esrt command filled in."""
    bin_dir = Path(sys.executable).parent
    exe = bin_dir / "esrt"
    package_dir = Path(__file__).resolve().parents[3]
    values = {"@ESRT_EXE@": str(exe) if os.access(exe, os.X_OK) else "",
              "@ESRT_PYTHON@": sys.executable,
              "@ESRT_PACKAGE_DIR@": str(package_dir)}
    text = Path(__file__).with_name(name).read_text(encoding="utf-8")
    for placeholder, value in values.items():
        if "'" in value:
            # The value goes between single quotes in a shell script.
            raise AgentInstallError(f"cannot install the OCF agent: the path {value!r} contains "
                                    "a single quote; install esrt under a path without one")
        text = text.replace(placeholder, value)
    return text


def install_agents(root=DEFAULT_OCF_RESOURCE_DIR):
    """Install every agent of AGENT_NAMES (see install_agent); return their paths."""
    return [install_agent(root, name) for name in AGENT_NAMES]


def install_agent(root=DEFAULT_OCF_RESOURCE_DIR, name=AGENT_NAME):
    """Install agent `name` as ROOT/esrt/NAME (mode 0755); return its path.

    The provider directory is made world-traversable: cluster tools run `meta-data` as an
    unprivileged user (ocf-tester uses `nobody`).
    """
    provider_dir = Path(root) / PROVIDER
    try:
        provider_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(provider_dir, 0o755)
        target = provider_dir / name
        write_text_atomic(target, agent_text(name), mode=0o755)
    except PermissionError as exc:
        raise AgentInstallError(f"cannot install the OCF agent into {provider_dir}: {exc.strerror}"
                                "; run as root or pass --root DIR") from None
    return target
