"""`mdump [host] [server]`: the node's directory as text, for HA monitor scripts to grep.

The layout keeps the facts that Micro Focus-era monitor scripts look for, so they work with
few edits:

* when mfds does not answer, a line `m_ldap_bind: 0x51 SERVER_DOWN ...` and a non-zero exit;
* per server a block `CN: <server>` ... `mfServerStatus: <status>`;
* per listener a block `CN: <listener>` ... `mfRequestedEndpoint: tcp:host:port` ...
  `mfListenerStatus: Started` when healthy, another status otherwise.

On the local node the dump also lists regions started from a region file (`casstart
--config`), which the repository does not hold, from their own run records.

A server whose region is not running never shows a listener as Started, whatever its last
report said (a region killed with SIGKILL cannot say goodbye).
"""

import argparse
import sys
from pathlib import Path

from esrt.home import Home
from esrt.node.mfds_client import MfdsClient, MfdsError, MfdsUnavailable
from esrt.node.runs import LIVE_STATES, effective_status, read_json
from esrt.states import ExitCode, ListenerStatus, ServerStatus

DEFAULT_MFDS_PORT = 8686
SERVER_DOWN_LINE = "m_ldap_bind: 0x51 SERVER_DOWN"


class MdumpError(Exception):
    """mdump could not produce a dump (bad host argument, unknown server)."""


def mfds_url_for(host, home=None):
    """The mfds URL for mdump's `host` argument, or None for the local node's mfds.

    `localhost` (or nothing) means this node's mfds, found in $ESRT_HOME/mfds.json (it may
    listen on any port); otherwise `host` or `host:port` (default port 8686), or a URL with
    https:// for an mfds with TLS ($ESRT_MFDS_CA names its CA when the system's do not).
    """
    if host in (None, "", "localhost"):
        return None
    scheme, sep, text = host.partition("://")
    if not sep:
        scheme, text = "http", host
    elif scheme not in ("http", "https"):
        raise MdumpError(f"mdump: {host!r}: only http:// and https:// reach an mfds")
    text = text.rstrip("/")
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        address = f"[{address}]"
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, ""
    if not address or "/" in address or (port and not port.isdigit()):
        raise MdumpError(f"mdump: {host!r} is not a host: give localhost, a host name or "
                         f"address, or host:port (e.g. 10.0.0.5:{DEFAULT_MFDS_PORT})")
    return f"{scheme}://{address}:{port or DEFAULT_MFDS_PORT}"


def listener_entries(server):
    """The listener entries of one server object: its live status merged over its definition.

    Each entry is a dict with CN, mfListenerStatus, mfRequestedEndpoint and address.
    """
    definition = server.get("definition") or {}
    status = server.get("status") or {}
    server_state = server.get("mfServerStatus") or status.get("mfServerStatus") \
        or ServerStatus.STOPPED.value
    live = {item.get("CN"): item for item in status.get("listeners") or [] if item.get("CN")}
    entries = []
    for listener in definition.get("listeners") or []:
        name = listener.get("name")
        reported = live.pop(name, {})
        entries.append(_listener_entry(name, listener.get("address"), reported, server_state))
    for name, reported in live.items():  # reported but no longer defined: still show it
        entries.append(_listener_entry(name, None, reported, server_state))
    return entries


def _listener_entry(name, defined_address, reported, server_state):
    state = reported.get("mfListenerStatus") or ListenerStatus.STOPPED.value
    if server_state not in LIVE_STATES:
        # The region is gone: a stale "Started" would make a monitor script think all is well.
        state = (ListenerStatus.FAILED.value if server_state == ServerStatus.FAILED.value
                 else ListenerStatus.STOPPED.value)
    endpoint = reported.get("mfRequestedEndpoint")
    if not endpoint and defined_address:
        endpoint = f"tcp:{defined_address}"
    return {"CN": name, "mfListenerStatus": state, "mfRequestedEndpoint": endpoint or "",
            "address": reported.get("address") or "", "message": reported.get("message") or ""}


def format_server(server):
    """The text block of one server object (as mfds's API returns it) and its listeners."""
    name = server.get("name") or (server.get("definition") or {}).get("name", "?")
    definition = server.get("definition") or {}
    status = server.get("status") or {}
    state = server.get("mfServerStatus") or status.get("mfServerStatus") \
        or ServerStatus.STOPPED.value
    lines = [f"dn: CN={name},CN=Enterprise Server Instances",
             f"CN: {name}",
             "objectClass: mfServer",
             f"mfServerStatus: {state}"]
    if state in LIVE_STATES and status.get("pid"):
        lines.append(f"mfServerPid: {status['pid']}")
    if definition.get("seps") is not None:
        lines.append(f"mfSEPCount: {definition['seps']}")
    if status.get("message"):
        lines.append(f"mfStatusMessage: {status['message']}")
    lines.append("")
    for entry in listener_entries(server):
        lines += [f"dn: CN={entry['CN']},CN={name},CN=Enterprise Server Instances",
                  f"CN: {entry['CN']}",
                  "objectClass: mfListener",
                  f"mfRequestedEndpoint: {entry['mfRequestedEndpoint']}"]
        if entry["address"]:
            lines.append(f"mfListenerAddress: {entry['address']}")
        lines.append(f"mfListenerStatus: {entry['mfListenerStatus']}")
        if entry["message"]:
            lines.append(f"mfStatusMessage: {entry['message']}")
        lines.append("")
    return "\n".join(lines) + "\n"


def format_dump(servers, url):
    """The whole dump: a header naming the directory, then one block per server."""
    text = f"# mdump of the esrt directory at {url}\n\n"
    if not servers:
        return text + "# no servers defined\n"
    return text + "".join(format_server(server) for server in servers)


def format_server_down(url, reason):
    """The lines printed when no mfds answers: monitors grep SERVER_DOWN."""
    where = f" at {url}" if url else ""
    return (f"{SERVER_DOWN_LINE}: no directory server (mfds) answers{where}"
            f"{f' ({reason})' if reason else ''}; start it with `esrt mfds --daemon`\n")


def local_region_objects(home, known=()):
    """Server objects of regions run on this node from a region file (`casstart --config`),
    which mfds's repository does not hold, built from their own run records; `known` names
    are skipped (mfds already reports them)."""
    objects = []
    for index in sorted((home.root / "run").glob("*.json")):
        record = read_json(index) or {}
        name = record.get("name") or index.stem
        if name in known or not record.get("run"):
            continue
        run_dir = Path(record["run"])
        definition = read_json(run_dir / "definition.json")
        if not isinstance(definition, dict):
            continue
        status = read_json(run_dir / "status.json") or {}
        objects.append({"name": name, "definition": definition,
                        "mfServerStatus": effective_status(status), "status": status})
    return objects


def dump(host=None, server=None, home=None, timeout=5.0):
    """Return (text, exit code) of an mdump of `host` (default: this node), optionally of one
    `server` only. mfds not answering is not an exception: it is the SERVER_DOWN dump."""
    home = home if isinstance(home, Home) else Home(home)
    url = mfds_url_for(host, home)
    try:
        if url is None:
            client = MfdsClient.from_home(home, timeout=timeout)
        else:
            client = MfdsClient(url, timeout=timeout, home=home.root)
        local = url is None
        url = client.url
        servers = client.list_servers()
    except MfdsUnavailable as exc:
        return format_server_down(url or exc.url, exc.reason), ExitCode.ERROR
    if local:
        servers += local_region_objects(home, known={s.get("name") for s in servers})
        servers.sort(key=lambda s: s.get("name") or "")
    if server:
        servers = [s for s in servers if s.get("name") == server]
        if not servers:
            raise MdumpError(f"mdump: no server {server!r} in the directory at {url}"
                             f"{' nor started here from a region file' if local else ''}: "
                             "`esrt server list` shows the defined ones")
    return format_dump(servers, url), ExitCode.OK


def add_arguments(parser):
    """mdump's arguments, shared by `esrt mdump` and the `mdump` script."""
    parser.add_argument("host", nargs="?", default="localhost",
                        help="localhost (default: this node's mfds from $ESRT_HOME/mfds.json), "
                             f"a host, or host:port (default port {DEFAULT_MFDS_PORT})")
    parser.add_argument("server", nargs="?", help="print only this server")
    parser.add_argument("--timeout", type=float, default=5.0,
                        help="seconds to wait for mfds (default 5)")


def run(args):
    """Print the dump for parsed `args`; return the exit code."""
    try:
        text, code = dump(args.host, args.server, home=getattr(args, "home", None),
                          timeout=args.timeout)
    except (MdumpError, MfdsError, ValueError) as exc:
        print(str(exc) if str(exc).startswith("mdump:") else f"mdump: error: {exc}",
              file=sys.stderr)
        return ExitCode.ERROR
    sys.stdout.write(text)
    sys.stdout.flush()
    return code


def main(argv=None):
    """The `mdump` script: `mdump [host] [server] [--home DIR]`."""
    parser = argparse.ArgumentParser(prog="mdump", description="print the node's directory "
                                     "(servers, listeners, status) as text for HA monitors")
    parser.add_argument("--home", help="node home (default $ESRT_HOME or ~/.esrt)")
    add_arguments(parser)
    args = parser.parse_args(argv)
    sys.exit(int(run(args)))


if __name__ == "__main__":
    main()
