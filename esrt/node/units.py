"""systemd units for a node: mfds, and one templated unit for its servers.

`esrt mfds install-service` writes esrt-mfds.service and `esrt server install-service NAME`
writes esrt-server@.service, whose instance esrt-server@NAME.service runs server NAME:

- at boot, in order: every server unit comes after mfds (it fetches its definition there),
  and wants it, without requiring it, so that stopping or restarting mfds leaves running
  servers alone (as killing mfds must);
- Type=notify: systemd counts a unit started when the process says READY=1
  (esrt.node.sdnotify): mfds once it serves, a region once its listeners are up;
- a region runs in the unit itself (`esrt casstart --foreground` execs it), so a crash is seen
  and restarted on failure, with a back-off (systemd 254 and later lengthen the delay at each
  restart; older ones wait RestartSec each time and give up after StartLimitBurst failures in
  StartLimitIntervalSec);
- a region that cannot start for a reason a retry will not mend (not defined, already running
  outside systemd, a definition it cannot use) is not restarted (RestartPreventExitStatus);
- stop: `esrt casstop` first (listeners stop, calls in flight finish, SEPs stop in order),
  then SIGTERM to the region if it still runs, SIGKILL to whatever of it is left once it
  exits or TimeoutStopSec passes (KillMode=mixed);
- output goes to the journal; a region also writes each console line there, beside
  console.log.
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from esrt.home import write_text_atomic
from esrt.states import ExitCode


MFDS_UNIT = "esrt-mfds.service"
SERVER_TEMPLATE = "esrt-server@.service"
SYSTEM_UNIT_DIR = Path("/etc/systemd/system")
# The first systemd with RestartSteps= and RestartMaxDelaySec= (a growing restart delay).
STEPPED_RESTARTS = 254
# Open files for a region: its listeners' connections (max_connections, 10000 by default).
LIMIT_NOFILE = 65536
STOP_TIMEOUT = 90  # seconds: casstop's own limit (60) and a margin before SIGKILL
# The exit codes of a region that trying again will not start.
NOT_RESTARTED = (ExitCode.BOOT_FAILED, ExitCode.NOT_CONFIGURED, ExitCode.ALREADY_RUNNING)


def systemd_version():
    """The version of the systemd installed here (252 for Debian 12), or None."""
    try:
        result = subprocess.run(["systemctl", "--version"], capture_output=True, text=True,
                                timeout=30)
    except OSError:
        return None
    match = re.match(r"systemd (\d+)", result.stdout)
    return int(match.group(1)) if match else None


def systemd_runs():
    """Whether systemd is this machine's service manager (sd_booted(3))."""
    return Path("/run/systemd/system").is_dir()


def is_user_unit_dir(unit_dir):
    """A user manager's unit directory (~/.config/systemd/user, ...): no User=, and its
    units are wanted by default.target."""
    return "systemd/user" in str(unit_dir)


def _command(*args):
    return " ".join(shlex.quote(str(arg)) for arg in args)


def _restart_lines(version):
    if version is not None and version >= STEPPED_RESTARTS:
        return ["Restart=on-failure", "RestartSec=1s", "RestartSteps=8",
                "RestartMaxDelaySec=2min"]
    return ["Restart=on-failure", "RestartSec=5s"]


def _start_limit_lines(version):
    if version is not None and version >= STEPPED_RESTARTS:
        return ["StartLimitIntervalSec=0"]  # the growing delay is the back-off: never give up
    return ["StartLimitIntervalSec=10min", "StartLimitBurst=20"]


def _render(unit, service, install):
    sections = [("Unit", unit), ("Service", service), ("Install", install)]
    return "\n\n".join(f"[{name}]\n" + "\n".join(lines) for name, lines in sections) + "\n"


def _common_service(home, user, unit_dir):
    lines = [f"Environment={_command('ESRT_HOME=' + str(home.root))}",
             "Environment=PYTHONUNBUFFERED=1", f"LimitNOFILE={LIMIT_NOFILE}"]
    if user and not is_user_unit_dir(unit_dir):
        lines.append(f"User={user}")
    return lines


def _network(unit_dir):
    # network-online.target is the system manager's: a user manager has none.
    if is_user_unit_dir(unit_dir):
        return []
    return ["After=network-online.target", "Wants=network-online.target"]


def _wanted_by(unit_dir):
    return [f"WantedBy={'default.target' if is_user_unit_dir(unit_dir) else 'multi-user.target'}"]


def mfds_unit(home, listen, tls_cert=None, tls_key=None, user=None, unit_dir=SYSTEM_UNIT_DIR,
              python=sys.executable, version=None):
    """The text of esrt-mfds.service for node `home` (an esrt.home.Home)."""
    start = ["-m", "esrt", "mfds", "--listen", listen]
    if tls_cert:
        start += ["--tls-cert", os.path.abspath(tls_cert), "--tls-key", os.path.abspath(tls_key)]
    unit = [f"Description=esrt directory server (mfds) of ESRT_HOME={home.root}",
            *_network(unit_dir), *_start_limit_lines(version)]
    service = ["Type=notify", "NotifyAccess=main", *_common_service(home, user, unit_dir),
               f"ExecStart={_command(python, *start)}",
               # Servers started from the admin UI run in this unit's cgroup: stopping mfds
               # must leave them running.
               "KillMode=process", "TimeoutStartSec=60", "TimeoutStopSec=30",
               *_restart_lines(version)]
    return _render(unit, service, _wanted_by(unit_dir))


def server_unit(home, user=None, unit_dir=SYSTEM_UNIT_DIR, python=sys.executable, version=None):
    """The text of esrt-server@.service (instance: the server name) for node `home`."""
    unit = ["Description=esrt server %i", f"After={MFDS_UNIT}", f"Wants={MFDS_UNIT}",
            *_network(unit_dir), *_start_limit_lines(version)]
    service = ["Type=notify", "NotifyAccess=main", *_common_service(home, user, unit_dir),
               f"ExecStart={_command(python, '-m', 'esrt', 'casstart', '-r')} %i --foreground",
               f"ExecStop={_command(python, '-m', 'esrt', 'casstop', '-r')} %i --timeout 60",
               # READY=1 comes once every SEP is ready, which after a crash waits for the
               # recovery of the data environment, however long: a limit would kill it and
               # start the recovery over.
               "KillMode=mixed", "TimeoutStartSec=infinity", f"TimeoutStopSec={STOP_TIMEOUT}",
               *_restart_lines(version), "RestartPreventExitStatus="
               + " ".join(str(int(code)) for code in NOT_RESTARTED)]
    return _render(unit, service, _wanted_by(unit_dir))


def write_unit(unit_dir, name, text):
    """Write unit `name` into `unit_dir` (atomically, mode 0644); its path."""
    unit_dir = Path(unit_dir)
    unit_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(unit_dir / name, text, mode=0o644)
    return unit_dir / name


def enable(unit, user_manager=False):
    """`systemctl daemon-reload` then `systemctl enable --now unit`; (ok, what systemctl said)."""
    prefix = ["systemctl"] + (["--user"] if user_manager else [])
    for command in (prefix + ["daemon-reload"], prefix + ["enable", "--now", unit]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=180)
        if result.returncode != 0:
            return False, (result.stderr or result.stdout).strip()
    return True, ""

