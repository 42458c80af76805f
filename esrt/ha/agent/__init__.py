"""The `ocf:esrt:region` resource agent: its template (the file `region` here) and installer.

A cluster runs agents with an almost empty environment, so the installer writes into the
agent where this esrt lives: the `esrt` script beside the running Python when there is one,
else that Python with this package's directory on PYTHONPATH.
"""

import os
import sys
from pathlib import Path

DEFAULT_OCF_RESOURCE_DIR = "/usr/lib/ocf/resource.d"
PROVIDER = "esrt"
AGENT_NAME = "region"
TEMPLATE = Path(__file__).with_name(AGENT_NAME)


class AgentInstallError(Exception):
    """The agent could not be installed; the message says where and what to do."""


def agent_text():
    """The agent script with this installation's esrt command filled in."""
    bin_dir = Path(sys.executable).parent
    exe = bin_dir / "esrt"
    package_dir = Path(__file__).resolve().parents[3]
    values = {"@ESRT_EXE@": str(exe) if os.access(exe, os.X_OK) else "",
              "@ESRT_PYTHON@": sys.executable,
              "@ESRT_PACKAGE_DIR@": str(package_dir)}
    text = TEMPLATE.read_text(encoding="utf-8")
    for placeholder, value in values.items():
        if "'" in value:
            # The value goes between single quotes in a shell script.
            raise AgentInstallError(f"cannot install the OCF agent: the path {value!r} contains "
                                    "a single quote; install esrt under a path without one")
        text = text.replace(placeholder, value)
    return text


def install_agent(root=DEFAULT_OCF_RESOURCE_DIR):
    """Install the agent as ROOT/esrt/region (mode 0755); return its path.

    The provider directory is made world-traversable: cluster tools run `meta-data` as an
    unprivileged user (ocf-tester uses `nobody`).
    """
    provider_dir = Path(root) / PROVIDER
    try:
        provider_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(provider_dir, 0o755)
        target = provider_dir / AGENT_NAME
        staging = provider_dir / f".{AGENT_NAME}.{os.getpid()}.tmp"
        staging.write_text(agent_text(), encoding="utf-8")
        os.chmod(staging, 0o755)
        os.replace(staging, target)
    except PermissionError as exc:
        raise AgentInstallError(f"cannot install the OCF agent into {provider_dir}: {exc.strerror}"
                                "; run as root or pass --root DIR") from None
    return target
