"""A region as its monitors see it: its state read from its run directory, a health probe,
the cluster's monitor made of both, and switching a standby region. The CLI (`esrt server
status|activate|deactivate`, `esrt ha monitor`), the OCF agent through it, and any other caller
use these.
"""

import http.client
import json
import os
import signal
import ssl
import time
from dataclasses import dataclass, field

from esrt.node.runs import read_json, recorded_run_dir, region_pid
from esrt.procs import process_alive
from esrt.states import ExitCode, ServerStatus


@dataclass(frozen=True)
class RegionState:
    """What a region is doing: an OCF exit code, a line for a person, its status file."""

    code: ExitCode            # OK running, NOT_RUNNING stopped, ERROR failed
    text: str
    status: dict = field(default_factory=dict)
    pid: int | None = None


def region_state(home, name):
    """The state of region `name` of ESRT_HOME `home` (an esrt.home.Home)."""
    run_dir = recorded_run_dir(home, name)
    status = read_json(run_dir / "status.json") or {}
    pid = region_pid(run_dir)
    state = status.get("mfServerStatus", "Stopped")
    alive = bool(pid) and process_alive(pid)
    if alive and state == "Started":
        waiting = [f"listener \"{listener.get('CN')}\" waiting for address "
                   f"{listener.get('mfRequestedEndpoint', '').removeprefix('tcp:')}"
                   for listener in status.get("listeners") or []
                   if listener.get("mfListenerStatus") == "Waiting for address"]
        text = f"{name}: Started (pid {pid})" + (f"; {'; '.join(waiting)}" if waiting else "")
        return RegionState(ExitCode.OK, text, status, pid)
    if alive and state == "Starting" and status.get("standby") and status.get("active"):
        # A standby being activated is Starting again while it recovers its data and starts
        # its SEPs. The clone that keeps it running must not see that as a failure: Pacemaker
        # would restart the region that is taking over (the pattern-6 flake).
        return RegionState(ExitCode.OK, f"{name}: Starting (pid {pid}): being activated",
                           status, pid)
    if alive:
        return RegionState(ExitCode.ERROR,
                           f"{name}: {state} (pid {pid}) {status.get('message', '')}".rstrip(),
                           status, pid)
    if state == "Stopped" or not status:
        return RegionState(ExitCode.NOT_RUNNING, f"{name}: Stopped", status)
    return RegionState(ExitCode.ERROR, f"{name}: Failed (last status {state}, process gone) "
                                       f"{status.get('message', '')}".rstrip(), status)


# The probe asks whether the region's own process answers, on this node: who holds the
# certificate is not its question, so it checks none (the listener's clients do).
_PROBE_TLS = ssl.create_default_context()
_PROBE_TLS.check_hostname = False
_PROBE_TLS.verify_mode = ssl.CERT_NONE


def probe_health(status, timeout):
    """(ok, detail): GET /health on the region's first started web-services listener.

    A region that is alive but frozen (SIGSTOP, a stuck reactor) keeps its pid and its
    "Started" status file; only an answer tells it from a healthy one. Regions with only
    binary listeners are not probed (ok).
    """
    for listener in status.get("listeners") or []:
        endpoint = (listener.get("mfRequestedEndpoint") or "").removeprefix("tcp:")
        address = listener.get("address") or endpoint
        if listener.get("mfListenerStatus") != "Started" or not address \
                or listener.get("conversation", "web-services") != "web-services":
            continue
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        if host in ("", "*", "0.0.0.0", "::"):
            host = "127.0.0.1"
        if listener.get("tls"):
            connection = http.client.HTTPSConnection(host, int(port), timeout=timeout,
                                                     context=_PROBE_TLS)
        else:
            connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            connection.request("GET", "/health")
            response = connection.getresponse()
            body = response.read()
        except ssl.SSLError as exc:
            # A listener that wants a client certificate refuses the probe's handshake with
            # an alert; refusing is answering, which is all a frozen region cannot do.
            return True, f"listener \"{listener.get('CN')}\" at {address} answers the TLS " \
                         f"handshake ({exc.reason or exc})"
        except (OSError, http.client.HTTPException, ValueError) as exc:
            return False, f"listener \"{listener.get('CN')}\" at {address} does not answer " \
                          f"GET /health within {timeout:g} s ({exc or type(exc).__name__})"
        finally:
            connection.close()
        if response.status != 200 and not _starting(body):
            return False, (f"listener \"{listener.get('CN')}\" at {address}: GET /health "
                           f"answered HTTP {response.status}")
        return True, f"listener \"{listener.get('CN')}\" at {address} answers"
    return True, "no started web-services listener to probe"


def monitor_region(home, name, probe_timeout, require_active=False):
    """The cluster's monitor of region `name` (`esrt ha monitor`, which the OCF agent runs):
    (ExitCode, lines for a person).

    region_state's code (OK running, NOT_RUNNING stopped, ERROR failed); then a running region
    that does not answer a health probe within `probe_timeout` seconds (0: no probe) is failed.
    A standby region that is standing by is running, or stopped with `require_active` (the
    monitor of the resource that activates it).
    """
    state = region_state(home, name)
    lines = [state.text]
    if state.code != ExitCode.OK:
        return state.code, lines
    if state.status.get("active") is False:
        # A standby standing by: running as it should, with nothing to serve yet.
        if require_active:
            return ExitCode.NOT_RUNNING, lines + [f"{name}: standing by (not active)"]
        return ExitCode.OK, lines
    if probe_timeout <= 0:
        return ExitCode.OK, lines
    ok, detail = probe_health(state.status, probe_timeout)
    if not ok:
        return ExitCode.ERROR, lines + [f"{name}: Failed (running but not answering: {detail})"]
    return ExitCode.OK, lines


def _starting(body):
    """Whether a /health answer says the region is starting (a standby being activated, its
    SEPs not all ready yet): alive and coming up, which a monitor must not call failed."""
    try:
        return json.loads(body).get("detail") == ServerStatus.STARTING.value
    except (ValueError, AttributeError):
        return False


def switch_region(home, name, activate, timeout, clock=time.monotonic, sleep=time.sleep):
    """Signal a running standby region to activate (or to stand by again) and wait until its
    status says it switched; (ExitCode, a line for a person). OK done, NOT_RUNNING the region
    is not running, ERROR it failed or did not switch within `timeout` seconds."""
    action = "activate" if activate else "deactivate"
    run_dir = recorded_run_dir(home, name)
    pid = region_pid(run_dir)
    if not pid or not process_alive(pid):
        return ExitCode.NOT_RUNNING, f"{name} is not running; start it first (`casstart -r {name}`)"
    status = read_json(run_dir / "status.json") or {}
    if not status.get("standby"):
        return (ExitCode.OK if activate else ExitCode.ERROR,
                f"{name} is not a standby region, so it is always active; set "
                "\"standby\": true in its definition to pre-start it on a standby node")
    os.kill(pid, signal.SIGUSR1 if activate else signal.SIGUSR2)
    deadline = clock() + timeout
    while clock() < deadline:
        status = read_json(run_dir / "status.json") or {}
        if not process_alive(pid):
            return ExitCode.ERROR, f"{name} ended while it was being {action}d; see its console log"
        ready = status.get("mfServerStatus") == "Started" if activate else True
        if status.get("active") is activate and ready:
            return ExitCode.OK, f"{name}: {'active' if activate else 'standing by'} (pid {pid})"
        if status.get("mfServerStatus") == "Failed":
            return ExitCode.ERROR, f"{name} failed: {status.get('message', '')}"
        sleep(0.05)
    return ExitCode.ERROR, (f"{name} did not finish being {action}d within {timeout:g} s; see "
                            "its console log")
