"""The lab's fake power switch and the fence agent that drives it.

Pacemaker will only run a two-node cluster safely with fencing: a node that stops answering
must be switched off before its resources start elsewhere. Lab nodes are namespaces, so
"switching a node off" means SIGKILL of its PID-namespace init (the kernel then kills every
process of the node) and taking its network cable out (its host-side veth down).

`PowerSwitch` is a unix-socket server run as a thread of the process that owns the lab; the
fence agent `fence_esrtlab` (installed into /usr/sbin, where Pacemaker's fencer looks for
RHCS-style agents) connects to it and asks for "off NODE", "status NODE" or "list".
"""

import os
import socket
import threading
from pathlib import Path

from esrt.home import write_text_atomic

FENCE_AGENT_NAME = "fence_esrtlab"
FENCE_AGENT_DIR = Path("/usr/sbin")

# The agent runs under Pacemaker's fencer with an almost empty environment, so it uses the
# system Python and nothing but the standard library.
FENCE_AGENT_TEXT = r'''#!/usr/bin/python3
"""fence_esrtlab: fence agent of the esrt.testing lab (installed by esrt.testing).

Talks to the lab's fake power switch, a unix socket given as parameter `socket`.
Reads RHCS-style key=value lines on stdin (or -o ACTION -n PLUG -s SOCKET on the command line).
"""
import socket
import sys

METADATA = """<?xml version="1.0" ?>
<resource-agent name="fence_esrtlab" shortdesc="Fake power switch of the esrt.testing lab">
<longdesc>Switches a lab node (a set of namespaces) off by asking the lab's power switch,
a unix-socket server run by the process that owns the lab.</longdesc>
<vendor-url>https://github.com/</vendor-url>
<parameters>
  <parameter name="action" unique="0" required="0">
    <getopt mixed="-o, --action=[action]" />
    <content type="string" default="off" />
    <shortdesc lang="en">Fencing action</shortdesc>
  </parameter>
  <parameter name="plug" unique="0" required="0" obsoletes="port">
    <getopt mixed="-n, --plug=[name]" />
    <content type="string" />
    <shortdesc lang="en">Node to act on</shortdesc>
  </parameter>
  <parameter name="port" unique="0" required="0" deprecated="1">
    <getopt mixed="-n, --plug=[name]" />
    <content type="string" />
    <shortdesc lang="en">Node to act on</shortdesc>
  </parameter>
  <parameter name="lan_check" unique="0" required="0">
    <getopt mixed="--lan-check=[host:port]" />
    <content type="string" />
    <shortdesc lang="en">host:port on the LAN this node must reach before it may fence</shortdesc>
  </parameter>
  <parameter name="socket" unique="0" required="1">
    <getopt mixed="-s, --socket=[path]" />
    <content type="string" />
    <shortdesc lang="en">Unix socket of the lab's power switch</shortdesc>
  </parameter>
</parameters>
<actions>
  <action name="on" automatic="0" />
  <action name="off" />
  <action name="reboot" />
  <action name="status" />
  <action name="list" />
  <action name="monitor" />
  <action name="metadata" />
</actions>
</resource-agent>
"""


def options():
    found = {}
    argv = sys.argv[1:]
    flags = {"-o": "action", "--action": "action", "-n": "plug", "--plug": "plug",
             "-s": "socket", "--socket": "socket"}
    for index, arg in enumerate(argv):
        if arg in flags and index + 1 < len(argv):
            found[flags[arg]] = argv[index + 1]
    if not argv and not sys.stdin.isatty():
        for line in sys.stdin:
            if "=" in line and not line.startswith("#"):
                key, value = line.strip().split("=", 1)
                found[key.strip()] = value.strip()
    if "port" in found and "plug" not in found:
        found["plug"] = found["port"]
    if "option" in found and "action" not in found:
        found["action"] = found["option"]
    return found


def ask(path, request):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(30)
        sock.connect(path)
        sock.sendall(request.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply.decode().strip()


def lan_ok(address):
    # A node cut off from the LAN must not win the fencing race against its healthy peer
    # (the power switch is reachable without the LAN), so it first proves it can reach it.
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=2) as sock:
            sock.settimeout(2)
            sock.sendall(b"ping\n")
            return sock.recv(16).strip() == b"ok"
    except (OSError, ValueError):
        return False


def main():
    opts = options()
    action = opts.get("action", "reboot")
    if action == "metadata":
        print(METADATA)
        return 0
    path = opts.get("socket")
    if not path:
        print("fence_esrtlab: parameter socket (the lab power switch) is not set", file=sys.stderr)
        return 1
    plug = opts.get("plug", "")
    try:
        if action in ("monitor", "validate-all"):
            return 0 if ask(path, "ping") == "ok" else 1
        if action in ("list", "list-status"):
            print("\n".join(f"{name}," for name in ask(path, "list").split()))
            return 0
        if action == "status":
            state = ask(path, f"status {plug}")
            print(f"Status: {state.upper()}")
            return 0 if state == "on" else 2
        if action in ("off", "reboot") and opts.get("lan_check") \
                and not lan_ok(opts["lan_check"]):
            print(f"fence_esrtlab: refusing to fence {plug}: this node cannot reach the lab "
                  f"LAN ({opts['lan_check']})", file=sys.stderr)
            return 1
        if action in ("off", "reboot"):
            reply = ask(path, f"off {plug}")
        elif action == "on":
            reply = ask(path, f"on {plug}")
        else:
            print(f"fence_esrtlab: action {action} is not supported", file=sys.stderr)
            return 1
    except OSError as exc:
        print(f"fence_esrtlab: power switch {path} does not answer: {exc}", file=sys.stderr)
        return 1
    if reply != "ok":
        print(f"fence_esrtlab: {action} {plug}: {reply}", file=sys.stderr)
        return 1
    return 0


sys.exit(main())
'''


def install_fence_agent(directory=FENCE_AGENT_DIR):
    """Install fence_esrtlab into `directory` (mode 0755) unless it is there already."""
    target = Path(directory) / FENCE_AGENT_NAME
    try:
        if target.exists() and target.read_text() == FENCE_AGENT_TEXT:
            return target
        write_text_atomic(target, FENCE_AGENT_TEXT, mode=0o755)
    except OSError as exc:
        raise RuntimeError(f"cannot install the lab's fence agent as {target}: {exc}; "
                           "run the lab as root") from None
    return target


class PowerSwitch:
    """A unix-socket server that switches lab nodes off when the cluster fences them.

    `switch_off(name)` is the callable doing the real work (the Lab's power-off); `names` is
    the function listing the nodes and `is_on(name)` says whether a node is powered.
    Requests of the fence agent (not the lab's own power_off calls) are kept in `events`.
    """

    def __init__(self, path, switch_off, names, is_on, lan_address=None):
        self.path = str(path)
        self._switch_off = switch_off
        self._names = names
        self._is_on = is_on
        self.events = []
        self._lock = threading.Lock()
        self._sock = None
        self._thread = None
        self._stopping = False
        self._lan_address = lan_address
        self._lan_sock = None
        self.lan_check = None     # "host:port" nodes probe before fencing (with lan_address)

    def start(self):
        """Listen on the socket and serve requests in a daemon thread."""
        if os.path.exists(self.path):
            os.unlink(self.path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.path)
        os.chmod(self.path, 0o600)
        self._sock.listen(8)
        self._sock.settimeout(0.5)
        if self._lan_address:
            self._lan_sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._lan_sock.bind((self._lan_address, 0))
            self._lan_sock.listen(8)
            self._lan_sock.settimeout(0.5)
            self.lan_check = f"{self._lan_address}:{self._lan_sock.getsockname()[1]}"
            threading.Thread(target=self._serve, args=(self._lan_sock, True),
                             name="esrt-lab-lan-check", daemon=True).start()
        self._thread = threading.Thread(target=self._serve, args=(self._sock, False),
                                        name="esrt-lab-power-switch", daemon=True)
        self._thread.start()

    def stop(self):
        """Stop serving and remove the socket; idempotent."""
        self._stopping = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for sock in (self._sock, self._lan_sock):
            if sock is not None:
                sock.close()
        self._sock = self._lan_sock = None
        try:
            os.unlink(self.path)
        except OSError:
            pass

    def _serve(self, listener, ping_only):
        while not self._stopping:
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            # One request per connection; fencing is rare, so no worker pool.
            threading.Thread(target=self._handle, args=(conn, ping_only), daemon=True).start()

    def _handle(self, conn, ping_only):
        with conn:
            conn.settimeout(30)
            data = b""
            try:
                while not data.endswith(b"\n"):
                    chunk = conn.recv(1024)
                    if not chunk:
                        break
                    data += chunk
                request = data.decode(errors="replace").strip()
                # Over the LAN only the reachability probe is served: power stays on the socket.
                reply = ("ok" if request == "ping" else "error: only ping over the LAN") \
                    if ping_only else self.answer(request)
                conn.sendall(reply.encode() + b"\n")
            except OSError:
                pass

    def answer(self, request):
        """Return the reply to one request line ("ping", "list", "status N", "off N")."""
        words = request.split()
        if not words:
            return "error: empty request"
        verb, args = words[0], words[1:]
        if verb == "ping":
            return "ok"
        if verb == "list":
            return " ".join(self._names())
        if len(args) != 1 or args[0] not in self._names():
            return f"error: unknown node {' '.join(args)!r}; known: {' '.join(self._names())}"
        name = args[0]
        if verb == "status":
            return "on" if self._is_on(name) else "off"
        if verb == "off":
            with self._lock:
                self.events.append(f"off {name}")
                try:
                    self._switch_off(name)
                except Exception as exc:  # noqa: BLE001 - the agent must hear about it, not the thread die
                    return f"error: {exc}"
            return "ok"
        if verb == "on":
            # Powering a lab node back on is not supported: the fence succeeded only if it is off.
            return "ok" if self._is_on(name) else "error: lab nodes cannot be powered on again"
        return f"error: unknown request {verb!r}"
