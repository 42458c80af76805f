"""PostgreSQL made highly available on the nodes of a lab by Patroni with etcd: the other route
of issue 16 (item 5), measured against PAF (esrt.testing.pgha) by benchmarks/bench_db_failover.py.

    with Lab(nodes=3) as lab:
        database = PatroniPostgres(lab, primary=lab.nodes[2]).start()
        database.dsn     # "host=A1,A2,A3 ... target_session_attrs=read-write"

Every node runs an etcd member (the three form the store Patroni keeps its leader key in) and
Patroni, which runs the node's PostgreSQL instance: `primary` bootstraps the cluster and holds
the leader key, the others are made standbys with pg_basebackup by Patroni. synchronous_mode
makes one standby synchronous and lets only it be promoted, so no acknowledged commit is lost.
There is no floating address: clients list every node and libpq takes the one that accepts
writes (target_session_attrs), which is what Patroni's documentation offers besides a proxy.

Patroni's own timings are at their documented floor (ttl 20 s, loop_wait 1 s, retry_timeout
3 s): a primary whose node dies holds the leader key until it expires, up to ttl later, and no
standby may be promoted before that. Fencing is by the key's expiry, not by a power switch.
"""

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from esrt.testing.labhost import LabError, wait_until
from esrt.testing.pgha import DATABASE, LINK, PORT, USER, LabPostgres

ETCD_CLIENT_PORT, ETCD_PEER_PORT, REST_PORT = 2379, 2380, 8008
# Patroni's documented minimums (ttl >= loop_wait + 2 * retry_timeout must hold too).
TIMINGS = {"ttl": 20, "loop_wait": 1, "retry_timeout": 3}
SCOPE = "esrt"
# Debian's programs; Patroni runs on Debian's Python, which has its etcd client module.
PATRONI, ETCD, SYSTEM_PYTHON = "/usr/bin/patroni", "/usr/bin/etcd", "/usr/bin/python3"


class PatroniPostgres(LabPostgres):
    """PostgreSQL on every node of `lab`, run by Patroni with etcd (see module)."""

    @classmethod
    def unavailable_reason(cls):
        missing = [package for program, package in ((PATRONI, "patroni"), (ETCD, "etcd-server"))
                   if not Path(program).is_file()]
        if not missing and subprocess.run([SYSTEM_PYTHON, "-c", "import etcd"],
                                          capture_output=True).returncode != 0:
            missing.append("python3-etcd")
        if missing:
            return (f"Patroni with etcd is not installed: run `apt-get install "
                    f"{' '.join(missing)}` (make bench does)")
        return super().unavailable_reason()

    @property
    def dsn(self):
        """Every node, the one that takes writes chosen by libpq; LINK's timeouts as for PAF,
        so a dead node costs a connection attempt about two seconds at most."""
        hosts = ",".join(node.address for node in self.lab.nodes)
        return (f"host={hosts} port={PORT} user={USER} dbname={DATABASE} "
                f"target_session_attrs=read-write {LINK}")

    # -- start -----------------------------------------------------------------------------

    def start(self, timeout=120):
        """Start etcd everywhere, then Patroni on the first primary (which bootstraps the
        cluster), then on the others; wait until the primary has a synchronous standby and
        every standby streams."""
        self._make_directories()
        for node in self.lab.nodes:
            self._daemon(node, "etcd", self._etcd_argv(node))
        self._wait_etcd(timeout)
        primary = self.first_primary
        self._start_patroni(primary)
        self._wait_leader(primary, timeout)
        self._create_database(primary)
        for node in self.lab.nodes:
            if node is not primary:
                self._start_patroni(node)
        self.wait_primary(on=primary, timeout=timeout)
        return self

    def _wait_leader(self, node, timeout):
        """Wait until `node` bootstrapped the cluster and leads it (no standby yet)."""
        def leads():
            try:
                name, running = self.primary(standbys_ready=False)
            except LabError:
                return False
            return name == node.name and running

        if not wait_until(leads, timeout):
            raise LabError(f"Patroni did not bootstrap a primary on {node.name} within "
                           f"{timeout} s; see {self._where_to_look()}")

    def _etcd_argv(self, node):
        peers = ",".join(f"{n.name}=http://{n.address}:{ETCD_PEER_PORT}"
                         for n in self.lab.nodes)
        return [ETCD, "--name", node.name, "--data-dir", self.directory(node) / "etcd",
                "--listen-peer-urls", f"http://{node.address}:{ETCD_PEER_PORT}",
                "--initial-advertise-peer-urls", f"http://{node.address}:{ETCD_PEER_PORT}",
                "--listen-client-urls",
                f"http://{node.address}:{ETCD_CLIENT_PORT},http://127.0.0.1:{ETCD_CLIENT_PORT}",
                "--advertise-client-urls", f"http://{node.address}:{ETCD_CLIENT_PORT}",
                "--initial-cluster", peers, "--initial-cluster-token", self.lab.name,
                "--initial-cluster-state", "new",
                # etcd's own failure detection in the lab's terms (a 1 s election, as the
                # corosync token of the PAF route).
                "--heartbeat-interval", "100", "--election-timeout", "1000"]

    def _wait_etcd(self, timeout):
        if not wait_until(lambda: all(self._etcd_healthy(node) for node in self.lab.nodes),
                          timeout):
            raise LabError(f"etcd is not healthy on every node within {timeout} s; see "
                           f"{self.directory(self.lab.nodes[0])}/etcd.log on each node")

    @staticmethod
    def _etcd_healthy(node):
        try:
            with urllib.request.urlopen(f"http://{node.address}:{ETCD_CLIENT_PORT}/health",
                                        timeout=2) as answer:
                return json.load(answer).get("health") in (True, "true")
        except (OSError, ValueError):
            return False

    def _start_patroni(self, node):
        config = self.directory(node) / "patroni.json"
        # JSON is YAML: Patroni reads it as its configuration file.
        config.write_text(json.dumps(self._patroni_config(node), indent=2))
        self._daemon(node, "patroni", ["runuser", "-u", "postgres", "--", PATRONI, config])

    def _patroni_config(self, node):
        parameters = dict(self.session_settings())
        parameters.pop("port")              # Patroni sets it from postgresql.listen
        parameters.pop("listen_addresses")
        return {
            "scope": SCOPE, "name": node.name,
            "restapi": {"listen": f"{node.address}:{REST_PORT}",
                        "connect_address": f"{node.address}:{REST_PORT}"},
            "etcd3": {"hosts": [f"{n.address}:{ETCD_CLIENT_PORT}" for n in self.lab.nodes]},
            "bootstrap": {
                "dcs": dict(TIMINGS, synchronous_mode=True, maximum_lag_on_failover=1048576,
                            postgresql={"use_pg_rewind": False, "use_slots": True,
                                        "parameters": parameters}),
                "initdb": [{"encoding": "UTF8"}, {"locale": "C"}, "data-checksums"],
            },
            "postgresql": {
                "listen": f"*:{PORT}", "connect_address": f"{node.address}:{PORT}",
                "use_unix_socket": True,
                # A standby is made at once, not after a spread checkpoint of minutes.
                "basebackup": {"checkpoint": "fast"}, "data_dir": str(self.data_dir(node)),
                "bin_dir": str(self.bindir), "pgpass": str(self.directory(node) / "pgpass"),
                "authentication": {"superuser": {"username": "postgres"},
                                   "replication": {"username": "postgres"}},
                "parameters": {"unix_socket_directories": str(self.socket_dir(node))},
                "pg_hba": ["local all all trust",
                           # Patroni asks its own instance for its timeline this way.
                           "host replication all 127.0.0.1/32 trust",
                           f"host replication all {self.lab.subnet}.0/24 trust",
                           f"host all all {self.lab.subnet}.0/24 trust"],
            },
        }

    def _daemon(self, node, name, argv):
        """Start argv in `node`, detached (its init reaps it; a power-off kills it), its
        output in the node's pg directory."""
        log = self.directory(node) / f"{name}.log"
        command = " ".join(f"'{part}'" for part in map(str, argv))
        node.run(["sh", "-c", f"setsid {command} >>'{log}' 2>&1 </dev/null &"])

    # -- state -----------------------------------------------------------------------------

    def members(self):
        """Patroni's view of the cluster (GET /cluster of the first node that answers): a list
        of {"name", "role", "state", ...}."""
        last = None
        for node in self.lab.nodes:
            if not node.powered:
                continue
            try:
                with urllib.request.urlopen(f"http://{node.address}:{REST_PORT}/cluster",
                                            timeout=2) as answer:
                    return json.load(answer).get("members", [])
            except (OSError, ValueError) as exc:
                last = exc
        raise LabError(f"no Patroni REST API answers ({last})")

    def primary(self, standbys_ready=True):
        """(node name of the leader or None, is it running (and, with `standbys_ready`, does
        every other member stream from it)?)."""
        members = self.members()
        leader = next((m for m in members if m.get("role") in ("leader", "master")), None)
        if leader is None:
            return None, False
        if leader.get("state") != "running":
            return leader["name"], False
        if not standbys_ready:
            return leader["name"], True
        # Asked of the leader itself: Patroni's member states for standbys differ between
        # releases (3.0 says "running" whether or not one replicates).
        others = len(members) - 1
        streaming = self.psql(self.lab.node(leader["name"]), "SELECT count(*) FROM "
                              "pg_stat_replication WHERE state = 'streaming'", check=False)
        ready = streaming.strip().isdigit() and others >= 1 and int(streaming) >= others
        return leader["name"], ready

    def _where_to_look(self):
        return f"patroni.log and etcd.log in {self.directory(self.lab.nodes[0])} on each node"
