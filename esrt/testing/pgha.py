"""PostgreSQL made highly available on the nodes of a lab: streaming replication to a
synchronous standby, promoted by Pacemaker's PostgreSQL agent (PAF, Debian's
resource-agents-paf: ocf:heartbeat:pgsqlms), the primary reached at a floating address.

    with Lab(nodes=3) as lab:
        database = ReplicatedPostgres(lab, primary=lab.nodes[2])
        database.start()
        database.dsn             # "host=10.99.N.30 port=5432 user=esrt dbname=esrt"

Every node has an instance of its own (data directory and socket under the node's directory
in the lab's workdir); the first primary is `primary`, the others are streaming standbys made
with pg_basebackup. A commit waits for one standby (`ANY 1 (node1, node2, ...)`), so losing a
standby does not stop writes and a promoted standby holds every acknowledged commit. Pacemaker
runs the instances as a promotable clone and moves the address with the primary; a lost
primary's node is fenced (the lab's power switch) before a standby is promoted, and once the
address is up on the promoted one, esrt's ocf:esrt:pgfollow agent makes the other standby
connect to it at once (a commit waits for that standby).

The lab's network is its own, so every connection is trusted. Sessions whose client vanished
(a region's node powered off) are ended fast: TCP keepalives of a second or two, and a session
idle inside a transaction for IDLE_IN_TRANSACTION is ended, so the row locks of a dead region
do not hold the others' calls.
"""

import os
import pwd
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

from esrt.testing.labhost import LabError, wait_until
from esrt.testing.postgres import PostgresError, bin_dir

PORT = 5432
ADDRESS_HOST = 30          # the primary's floating address: SUBNET.30
CLONE, INSTANCE, ADDRESS = "pgsql-ha", "pgsqld", "pgsql-ip"
FOLLOW_CLONE, FOLLOW = "pgfollow-clone", "pgfollow"
PAF_AGENT = "/usr/lib/ocf/resource.d/heartbeat/pgsqlms"
USER = DATABASE = "esrt"
# The row locks of a region whose node died go with its sessions, ended after this long idle
# inside a transaction. It must be shorter than the clients' per-attempt timeout (0.5 s in
# the failover tests): a caller of the live region waiting for such a lock would otherwise
# give up on the live region and try the dead one next, a second in all (seen at 500 ms).
# The price: a call whose program computes longer than this between two file operations
# loses its connection and answers 503.
IDLE_IN_TRANSACTION = "300ms"
# libpq's options for connections through the floating address (see dsn).
LINK = ("connect_timeout=2 keepalives=1 keepalives_idle=1 keepalives_interval=1 "
        "keepalives_count=2 tcp_user_timeout=1000")
POLL = 0.2


class LabPostgres:
    """What the highly available PostgreSQL of a lab has whichever engine promotes it: an
    instance per node (data directory and socket under the node's directory), the settings
    that end a vanished client's sessions fast, psql on a node, and waiting for a primary.
    Subclasses say where the primary is (`primary`) and how clients reach it (`dsn`)."""

    def __init__(self, lab, primary=None):
        self.lab = lab
        self.first_primary = primary or lab.nodes[0]
        self.bindir = bin_dir()

    @classmethod
    def unavailable_reason(cls):
        """Why this engine cannot run on this machine (what to install), or None."""
        try:
            bin_dir()
        except PostgresError as exc:
            return str(exc)
        return None

    @staticmethod
    def directory(node):
        return node.dir / "pg"

    def data_dir(self, node):
        return self.directory(node) / "data"

    def socket_dir(self, node):
        return self.directory(node) / "run"

    def _make_directories(self):
        account = pwd.getpwnam("postgres")
        for node in self.lab.nodes:
            for path in (self.directory(node), self.socket_dir(node)):
                path.mkdir(parents=True, exist_ok=True)
                os.chown(path, account.pw_uid, account.pw_gid)

    @staticmethod
    def session_settings():
        """The server settings both engines run with, as name -> value."""
        return {
            "listen_addresses": "*", "port": PORT, "wal_level": "replica", "hot_standby": "on",
            "max_wal_senders": 10, "max_replication_slots": 10, "wal_keep_size": "256MB",
            "wal_log_hints": "on", "synchronous_commit": "on",
            # A standby follows a promoted one (and so lets commits go on) as soon as it can,
            # not after the default 5 s between attempts.
            "wal_retrieve_retry_interval": "200ms",
            # A session whose client is gone ends even while it waits for a lock or runs a
            # statement.
            "client_connection_check_interval": "500ms",
            "tcp_keepalives_idle": 1, "tcp_keepalives_interval": 1, "tcp_keepalives_count": 2,
            "idle_in_transaction_session_timeout": IDLE_IN_TRANSACTION,
            "logging_collector": "on"}

    def primary(self, standbys_ready=True):
        """(node name of the primary or None, does it serve its clients (and, with
        `standbys_ready`, can every other online node's standby take over)?)."""
        raise NotImplementedError

    def wait_primary(self, on=None, not_on=None, timeout=60, standbys_ready=True):
        """Wait until a primary serves its clients (on `on` if given, elsewhere than
        `not_on`) with a synchronous standby, and (with `standbys_ready`) the other nodes'
        standbys can be promoted; its node."""
        last = "no answer yet"

        def serving():
            nonlocal last
            try:
                name, ready = self.primary(standbys_ready)
            except (LabError, ET.ParseError, OSError, ValueError) as exc:
                last = str(exc)
                return None
            if ready and (on is None or name == on.name) \
                    and (not_on is None or name != not_on.name):
                node = self.lab.node(name)
                standbys = self.psql(node, "SELECT count(*) FROM pg_stat_replication WHERE "
                                     "sync_state IN ('sync', 'quorum')", check=False)
                if standbys.strip().isdigit() and int(standbys) >= 1:
                    return node
                last = f"primary {name} has no synchronous standby yet"
            elif name:
                last = (f"primary on {name}; serving, and standbys ready to take over: "
                        f"{'yes' if ready else 'not yet'}")
            return None

        node = wait_until(serving, timeout, POLL)
        if node:
            return node
        raise LabError(f"no PostgreSQL primary with a synchronous standby within {timeout} s "
                       f"({last}); see {self._where_to_look()}")

    def _where_to_look(self):
        return f"{self.directory(self.lab.nodes[0])}/data/log on each node"

    def psql(self, node, sql, check=True, database=DATABASE):
        """Run `sql` with psql in `database` of `node`'s instance; its output."""
        result = self._postgres(node, "psql", "-X", "-q", "-A", "-t", "-h",
                                self.socket_dir(node), "-p", str(PORT), "-U", "postgres",
                                "-d", database, "-v", "ON_ERROR_STOP=1", "-c", sql, check=check)
        return result.stdout

    def _create_database(self, node):
        self.psql(node, f"CREATE ROLE {USER} LOGIN", database="postgres")
        self.psql(node, f"CREATE DATABASE {DATABASE} OWNER {USER}", database="postgres")

    def _postgres(self, node, *argv, check=True):
        return node.run(["runuser", "-u", "postgres", "--", *map(str, argv)], check=check,
                        timeout=120, env={"LC_ALL": "C"})


class ReplicatedPostgres(LabPostgres):
    """PostgreSQL on every node of `lab`, one primary and streaming standbys, promoted by
    PAF (see module)."""

    @classmethod
    def unavailable_reason(cls):
        if not Path(PAF_AGENT).is_file():
            return (f"PAF is not installed ({PAF_AGENT}): run `apt-get install "
                    "resource-agents-paf` (make setup does)")
        return super().unavailable_reason()

    def __init__(self, lab, primary=None):
        super().__init__(lab, primary)
        self.address = f"{lab.subnet}.{ADDRESS_HOST}"

    @property
    def dsn(self):
        """The libpq connection string of the esrt database on whichever node is primary.
        A connection to a primary whose node died fails within a second when it has data
        on its way (tcp_user_timeout) and within three when idle (keepalives), instead of
        waiting for TCP's retransmissions, which back off to several seconds apart: the next
        attempt reaches the promoted node."""
        return f"host={self.address} port={PORT} user={USER} dbname={DATABASE} {LINK}"

    # -- start -----------------------------------------------------------------------------

    def start(self, timeout=120):
        """Make the instances, hand them to Pacemaker, and wait until the primary serves
        behind the floating address with a synchronous standby."""
        self._make_directories()
        for node in self.lab.nodes:
            (self.directory(node) / "pg-node.conf").write_text(self._node_settings(node))
        primary = self.first_primary
        self._postgres(primary, str(self.bindir / "initdb"), "-D", self.data_dir(primary),
                       "--data-checksums", "-U", "postgres", "--auth=trust", "-E", "UTF8",
                       "--locale=C")
        with open(self.data_dir(primary) / "postgresql.conf", "a") as settings:
            settings.write(self._shared_settings())
        (self.data_dir(primary) / "pg_hba.conf").write_text(self._access_rules())
        # No standby yet: commits must not wait for one.
        self._pg_ctl(primary, "start", "-o", "-c synchronous_standby_names=")
        self._create_database(primary)
        for node in self.lab.nodes:
            if node is not primary:
                self._postgres(node, str(self.bindir / "pg_basebackup"), "-h", primary.address,
                               "-p", str(PORT), "-U", "postgres", "-D", self.data_dir(node),
                               "-X", "stream", "-c", "fast")
        # PAF starts every instance as a standby and promotes the one shut down as a primary.
        self._pg_ctl(primary, "stop")
        for resource in self._resources_xml():
            self.lab.configure("resources", resource)
        for constraint in self._constraints_xml():
            self.lab.configure("constraints", constraint)
        self.wait_primary(on=primary, timeout=timeout)
        return self

    def rejoin(self, node, timeout=120):
        """Bring back `node`, powered off with its instance (after a failover): its data made
        anew from the primary's, then the node switched on; returns once its standby can take
        over again. A copy, not the old data: PAF leaves an instance that crashed to the one
        who knows why, and one that was the primary may hold WAL the promoted standby never
        had, which it could not follow."""
        if node.powered:
            raise LabError(f"{node.name} is on: power it off (esrt.testing.faults) first")
        primary = self.wait_primary(not_on=node, timeout=timeout, standbys_ready=False)
        # As root: the directory is the postgres account's, and what a crash left in it may
        # not be.
        shutil.rmtree(self.data_dir(node))
        self._postgres(primary, str(self.bindir / "pg_basebackup"), "-h", primary.address,
                       "-p", str(PORT), "-U", "postgres", "-D", self.data_dir(node),
                       "-X", "stream", "-c", "fast")
        # PAF keeps a node's promotion score for ever, through its death: the one it had then
        # (a primary's 1001, if it was one) would make it the next failover's first choice
        # before its standby even runs, and wait_primary take it for ready. Without one, the
        # primary's next monitor gives it a score once it streams.
        self.lab.crm("crm_attribute", "--node", node.name, "--name", f"master-{INSTANCE}",
                     "--lifetime", "forever", "--delete")
        self.lab.power_on(node)
        self.wait_primary(on=primary, timeout=timeout)
        return node

    def _node_settings(self, node):
        # Outside the data directory, so that pg_basebackup and rebuilds keep it per node.
        return (f"unix_socket_directories = '{self.socket_dir(node)}'\n"
                f"primary_conninfo = 'host={self.address} port={PORT} user=postgres "
                f"application_name={node.name} {LINK}'\n")

    def _shared_settings(self):
        names = ", ".join(node.name for node in self.lab.nodes)
        settings = dict(self.session_settings(),
                        synchronous_standby_names=f"ANY 1 ({names})",
                        recovery_target_timeline="latest")
        lines = "".join(f"{name} = '{value}'\n" for name, value in settings.items())
        return ("\n# esrt.testing.pgha: the same on every node (pg_basebackup copies it)\n"
                f"{lines}include_if_exists = '../pg-node.conf'\n")

    def _access_rules(self):
        return (f"local all all trust\n"
                # A standby never replicates from itself through the floating address.
                f"host replication all {self.address}/32 reject\n"
                f"host replication all {self.lab.subnet}.0/24 trust\n"
                f"host all all {self.lab.subnet}.0/24 trust\n")

    def _per_node_xml(self, resource, **params):
        """Instance attributes of `resource` for each node: `params` maps a parameter name to
        a function of the node giving its value there."""
        return "".join(
            f'<instance_attributes id="{resource}-{node.name}" score="{len(self.lab.nodes) - i}">'
            f'<rule id="{resource}-{node.name}-rule" score="INFINITY">'
            f'<expression id="{resource}-{node.name}-expr" attribute="#uname" operation="eq" '
            f'value="{node.name}"/></rule>'
            + "".join(f'<nvpair id="{resource}-{node.name}-{name}" name="{name}" '
                      f'value="{value(node)}"/>' for name, value in params.items())
            + '</instance_attributes>'
            for i, node in enumerate(self.lab.nodes))

    def _resources_xml(self):
        """The promotable clone of the instances, the floating address, and the clone that
        makes the standbys follow the address (ocf:esrt:pgfollow)."""
        per_node = self._per_node_xml(INSTANCE, pgdata=self.data_dir, pghost=self.socket_dir)
        operations = "".join(
            f'<op id="{INSTANCE}-{name}" name="{action}" interval="{interval}" '
            f'timeout="{timeout}"{role}/>'
            for name, action, interval, timeout, role in (
                ("start", "start", "0s", "60s", ""), ("stop", "stop", "0s", "60s", ""),
                ("promote", "promote", "0s", "30s", ""), ("demote", "demote", "0s", "120s", ""),
                ("notify", "notify", "0s", "60s", ""),
                # PAF's own advice; the intervals must differ. Losing a node needs no
                # monitor: the membership tells.
                ("monitor-promoted", "monitor", "15s", "10s", ' role="Promoted"'),
                ("monitor-unpromoted", "monitor", "16s", "10s", ' role="Unpromoted"')))
        return (
            f'<clone id="{CLONE}"><meta_attributes id="{CLONE}-meta">'
            f'<nvpair id="{CLONE}-promotable" name="promotable" value="true"/>'
            f'<nvpair id="{CLONE}-notify" name="notify" value="true"/>'
            f'<nvpair id="{CLONE}-promoted-max" name="promoted-max" value="1"/>'
            f'<nvpair id="{CLONE}-clone-node-max" name="clone-node-max" value="1"/>'
            f'</meta_attributes>'
            f'<primitive id="{INSTANCE}" class="ocf" provider="heartbeat" type="pgsqlms">'
            f'{per_node}<instance_attributes id="{INSTANCE}-common" score="0">'
            f'<nvpair id="{INSTANCE}-bindir" name="bindir" value="{self.bindir}"/>'
            f'<nvpair id="{INSTANCE}-pgport" name="pgport" value="{PORT}"/>'
            f'<nvpair id="{INSTANCE}-user" name="system_user" value="postgres"/>'
            f'</instance_attributes><operations>{operations}</operations></primitive></clone>',
            f'<primitive id="{ADDRESS}" class="ocf" provider="heartbeat" type="IPaddr2">'
            f'<instance_attributes id="{ADDRESS}-params">'
            f'<nvpair id="{ADDRESS}-ip" name="ip" value="{self.address}"/>'
            f'<nvpair id="{ADDRESS}-mask" name="cidr_netmask" value="24"/>'
            f'<nvpair id="{ADDRESS}-nic" name="nic" value="lan0"/></instance_attributes>'
            f'<operations><op id="{ADDRESS}-monitor" name="monitor" interval="2s" '
            f'timeout="20s"/></operations></primitive>',
            f'<clone id="{FOLLOW_CLONE}"><primitive id="{FOLLOW}" class="ocf" provider="esrt" '
            f'type="pgfollow">{self._per_node_xml(FOLLOW, pgdata=self.data_dir)}'
            f'<operations><op id="{FOLLOW}-monitor" name="monitor" interval="30s" '
            f'timeout="10s"/></operations></primitive></clone>')

    @staticmethod
    def _constraints_xml():
        # The address stays up while the primary is demoted, so that the standbys receive its
        # shutdown checkpoint; it follows the primary once one is promoted.
        return (
            f'<rsc_colocation id="{ADDRESS}-with-primary" rsc="{ADDRESS}" with-rsc="{CLONE}" '
            'with-rsc-role="Promoted" score="INFINITY"/>',
            f'<rsc_order id="{ADDRESS}-after-promote" first="{CLONE}" first-action="promote" '
            f'then="{ADDRESS}" then-action="start" kind="Mandatory" symmetrical="false"/>',
            f'<rsc_order id="{ADDRESS}-stop-after-demote" first="{CLONE}" '
            f'first-action="demote" then="{ADDRESS}" then-action="stop" kind="Mandatory" '
            'symmetrical="false"/>',
            # Restarted (so the standbys reconnect) whenever the address starts somewhere.
            f'<rsc_order id="{FOLLOW}-after-address" first="{ADDRESS}" first-action="start" '
            f'then="{FOLLOW_CLONE}" then-action="start" kind="Mandatory"/>')

    # -- state -----------------------------------------------------------------------------

    def primary(self, standbys_ready=True):
        """(node name of the promoted instance or None, is the address started with it (and,
        with `standbys_ready`, every other online node's instance ready to be promoted)?)."""
        root = ET.fromstring(self.lab.crm("crm_mon", "-1", "-A", "--output-as=xml",
                                          timeout=20))
        promoted, address_on = None, None
        for resource in root.iter("resource"):
            nodes = [n.get("name") for n in resource.iter("node")]
            if resource.get("id") == INSTANCE and resource.get("role") in ("Promoted", "Master") \
                    and resource.get("active") == "true" and nodes:
                promoted = nodes[0]
            if resource.get("id") == ADDRESS and resource.get("active") == "true" and nodes:
                address_on = nodes[0]
        # The primary's monitor gives each standby that streams from it a promotion score;
        # until then, losing the primary would promote nobody.
        online = {n.get("name") for n in root.iter("node") if n.get("online") == "true"}
        scores = {node.get("name"): int(attribute.get("value"))
                  for node in root.iter("node") for attribute in node.iter("attribute")
                  if attribute.get("name") == f"master-{INSTANCE}"}
        promotable = not standbys_ready or all(
            scores.get(name, -1) > 0 for name in online if name != promoted)
        return promoted, promoted is not None and address_on == promoted and promotable

    def _where_to_look(self):
        return f"`crm_mon -1` and {super()._where_to_look()}"

    # -- running things --------------------------------------------------------------------

    def _pg_ctl(self, node, action, *options):
        log = self.directory(node) / "pg_ctl.log"
        # -l: the server's output goes to a file, never to our pipe (which would stay open).
        self._postgres(node, str(self.bindir / "pg_ctl"), "-D", self.data_dir(node), "-l", log,
                       "-w", "-t", "60", *(("-m", "fast") if action == "stop" else ()),
                       *options, action)
