"""Several regions serving one set of files in PostgreSQL (the server setting `store`).

Two regions on this node share one database: every call of CBLAPP01, through either, counts on
the same counter, and an idempotency key used on one is honoured by the other.
"""

import contextlib
import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest

from esrt.client import Client, ServiceError

from esrt.testing.postgres import PostgresCluster

from conftest import (SERVICES, CallLoad, database_of, over_tcp, run_esrt,
                      start_cblapp01_region, start_second_region, wait_for)

CALLERS_EACH = 3
CALLS_EACH = 150

pytestmark = pytest.mark.postgresql


def test_two_regions_on_one_store_count_on_one_counter(node, srv01_car, pg_store):
    first = start_cblapp01_region(node, srv01_car, name="ESSRV01", extra=("--store", pg_store))
    # The second region deploys the same package; the file is already there (counter 0).
    node.esrt("server", "create", "ESSRV02", "--seps", "2", "--listener",
              "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01",
              "--store", pg_store)
    node.esrt("casstart", "-r", "ESSRV02", "--wait")
    node.esrt("deploy", str(srv01_car), "--server", "ESSRV02")
    second_url = "http://" + node.region_status("ESSRV02")["listeners"][0]["address"]
    counters, errors, lock = [], [], threading.Lock()

    def caller(url):
        with Client(url) as client:
            for _ in range(CALLS_EACH):
                try:
                    value = client.call("srv01.CBLAPP01")["LK-COUNTER"]
                except Exception as exc:  # noqa: BLE001 - collected: asserted empty below
                    errors.append(repr(exc))
                    continue
                with lock:
                    counters.append(value)

    threads = [threading.Thread(target=caller, args=(url,))
               for url in (first.url, second_url) for _ in range(CALLERS_EACH)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    total = 2 * CALLERS_EACH * CALLS_EACH
    assert sorted(counters) == list(range(total))
    with Client(first.url) as one, Client(second_url) as other:
        assert one.call("srv01.CBLAPP01")["LK-COUNTER"] == total
        assert other.call("srv01.CBLAPP01")["LK-COUNTER"] == total + 1


def test_an_idempotency_key_holds_across_regions(node, srv01_car, pg_store):
    first = start_cblapp01_region(node, srv01_car, name="ESSRV01", extra=("--store", pg_store))
    node.esrt("server", "create", "ESSRV02", "--listener", "Web Services=127.0.0.1:*",
              "--env", "DD_APPFILE01=APPFILE01", "--store", pg_store)
    node.esrt("casstart", "-r", "ESSRV02", "--wait")
    node.esrt("deploy", str(srv01_car), "--server", "ESSRV02")
    second_url = "http://" + node.region_status("ESSRV02")["listeners"][0]["address"]
    key = str(uuid.uuid4())
    with Client(first.url) as one, Client(second_url) as other:
        answered = one.call("srv01.CBLAPP01", idempotency_key=key)
        # The client's retry reached the other region: the first call's reply, not a second run.
        again = other.call("srv01.CBLAPP01", idempotency_key=key)
        assert again["LK-COUNTER"] == answered["LK-COUNTER"] == 0
        assert other.call("srv01.CBLAPP01")["LK-COUNTER"] == 1


def test_a_server_moves_its_files_to_postgresql_with_its_replies(node, srv01_car, pg_store):
    region = start_cblapp01_region(node, srv01_car)
    key = str(uuid.uuid4())
    with Client(region.url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 0
        assert client.call("srv01.CBLAPP01", idempotency_key=key)["LK-COUNTER"] == 1
    node.esrt("casstop", "-r", region.name)
    copied = node.esrt("file", "copy", "--server", region.name, "--to-store", pg_store).stdout
    assert "copied APPFILE01: 1 record" in copied and "stored replies" in copied
    node.esrt("server", "set", region.name, f"store={pg_store}")
    node.esrt("casstart", "-r", region.name, "--wait")
    url = "http://" + node.region_status(region.name)["listeners"][0]["address"]
    with Client(url) as client:
        # The retry of the call made before the move finds its reply in the new store.
        assert client.call("srv01.CBLAPP01", idempotency_key=key)["LK-COUNTER"] == 1
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 2
    console = (node.home / "servers" / region.name / "logs" / "console.log").read_text()
    assert "PostgreSQL store" in console


def test_regions_carry_on_after_the_database_restarts(node, srv01_car, pg_store, postgres):
    """A restart of PostgreSQL between calls ends every SEP's session: the next call connects
    again and runs, nobody sees an error."""
    region = start_cblapp01_region(node, srv01_car, extra=("--store", pg_store))
    with Client(region.url) as client:
        assert [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(4)] == [0, 1, 2, 3]
        postgres.restart()
        assert [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(4)] == [4, 5, 6, 7]


def test_a_client_of_two_regions_moves_on_when_one_is_killed(node, srv01_car, pg_store):
    """Client([url, url]): calls go to the first region until it is killed outright, then to
    the second, with their idempotency keys: none lost, none applied twice."""
    first = start_cblapp01_region(node, srv01_car, extra=("--store", pg_store))
    second_url = start_second_region(node, srv01_car, pg_store)
    load = CallLoad([first.url, second_url])
    try:
        wait_for(lambda: len(load.counters) >= 200, "calls through the first region")
        killed = time.monotonic()
        node.esrt("casstop", "-r", first.name, "--force")
        wait_for(lambda: load.answered_since(killed + 0.5) >= 200,
                 "calls through the second region")
    finally:
        load.stop()
    assert load.errors == []
    assert sorted(load.counters) == list(range(len(load.counters)))
    print(f"Client of two regions, one killed: longest call {load.longest_call():.3f} s "
          f"over {len(load.counters)} calls")
    with Client(second_url) as client:
        assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == len(load.counters)


SCAN_INPUTS = ("LK-MODE", "LK-KEY", "LK-COUNT", "LK-WAIT-MS")


@pytest.fixture(scope="module")
def scanner_car(tmp_path_factory):
    """Package scan: SCANNER (tests/cobol/services/scanner.cbl)."""
    work = tmp_path_factory.mktemp("scan")
    home = tmp_path_factory.mktemp("scan-home")
    shutil.copy(SERVICES / "scanner.cbl", work / "scanner.cbl")
    run_esrt(["imtk", "defmap", "--src", "scanner.cbl", "--service", "scan"], home, cwd=work)
    mapping = work / "scan.mapping.json"
    document = json.loads(mapping.read_text())
    for parameter in document["programs"][0]["parameters"]:
        parameter["direction"] = "in" if parameter["name"] in SCAN_INPUTS else "out"
    mapping.write_text(json.dumps(document, indent=2))
    run_esrt(["imtk", "generate", "--service", "scan"], home, cwd=work)
    return work / "scan.car"


def table_locks(dsn, table, mode):
    """How many sessions hold lock `mode` on esfh.`table` of `dsn`'s database."""
    import psycopg
    with psycopg.connect(dsn) as connection:
        return connection.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND n.nspname = 'esfh' AND c.relname = %s AND l.mode = %s AND l.granted",
            (table, mode)).fetchone()[0]


@pytest.fixture
def scan_url(node, scanner_car, pg_store):
    """A region of SCANNER on the PostgreSQL store, SCANFILE loaded with records 1 to 10
    (SC-TAG ten times the key); its URL."""
    node.esrt("server", "create", "ESSCAN", "--seps", "2", "--listener",
              "Web Services=127.0.0.1:*", "--env", "DD_SCANFILE=SCANFILE", "--store", pg_store)
    node.esrt("casstart", "-r", "ESSCAN", "--wait")
    node.esrt("deploy", str(scanner_car), "--server", "ESSCAN")
    url = "http://" + node.region_status("ESSCAN")["listeners"][0]["address"]
    with Client(url) as client:
        assert client.call("scan.SCANNER", {"LK-MODE": "L", "LK-COUNT": 10})["LK-STATUS"] == "00"
    return url


@contextlib.contextmanager
def another_call_holding(url, pg_store, request):
    """Another call makes SCANNER `request` (one that changes a record, then waits 2 s
    before it commits) and holds its row lock while the block runs; it must succeed."""
    replies = []

    def call():
        with Client(url) as other:
            replies.append(other.call("scan.SCANNER", dict(request, **{"LK-WAIT-MS": 2000})))

    holding = threading.Thread(target=call)
    holding.start()
    try:
        wait_for(lambda: table_locks(pg_store, "SCANFILE", "RowExclusiveLock"),
                 "the change of the other call")
        yield
    finally:
        holding.join(30)
    assert [reply["LK-STATUS"] for reply in replies] == ["00"]


@pytest.mark.parametrize("mode, start, deleted, then", [("S", 1, 2, 3), ("P", 10, 9, 8)],
                         ids=["read-next", "read-previous"])
def test_a_scan_moves_past_a_record_another_call_deleted(scan_url, pg_store, mode, start,
                                                         deleted, then):
    """READ NEXT (PREVIOUS) on a file opened I-O meets a record that another call (on any
    region) is deleting: it waits for that call, then reads the record after it, as on
    Berkeley DB, not status 23. (PostgreSQL still shows the record being deleted to the scan,
    which then waits to lock it and finds it gone.)"""
    with another_call_holding(scan_url, pg_store, {"LK-MODE": "X", "LK-KEY": deleted}), \
            Client(scan_url) as client:
        scan = client.call("scan.SCANNER", {"LK-MODE": mode, "LK-KEY": start, "LK-WAIT-MS": 0})
    assert (scan["LK-FIRST"], scan["LK-SECOND"], scan["LK-STATUS"]) == (start, then, "00")


def test_a_scan_by_alternate_key_moves_past_a_record_whose_key_another_call_changed(
        scan_url, pg_store):
    """A READ NEXT on an alternate key meets a record whose key another call is changing
    (record 2, SC-TAG 20 -> 999): it waits for that call and reads record 3 (SC-TAG 30) next,
    not record 2 out of the key's order."""
    with another_call_holding(scan_url, pg_store,
                              {"LK-MODE": "M", "LK-KEY": 2, "LK-COUNT": 999}), \
            Client(scan_url) as client:
        scan = client.call("scan.SCANNER", {"LK-MODE": "A", "LK-KEY": 10, "LK-WAIT-MS": 0})
    assert (scan["LK-FIRST"], scan["LK-SECOND"], scan["LK-STATUS"]) == (1, 3, "00")


def test_a_scan_after_start_reads_the_record_that_took_over_the_key_it_started_at(
        scan_url, pg_store):
    """START at SC-TAG 20 finds record 2, which another call is handing SC-TAG 20 to record 5
    (record 2 takes 25): the READ NEXT that follows waits for that call, then reads record 5
    under 20, and record 2 under 25 next."""
    with another_call_holding(scan_url, pg_store,
                              {"LK-MODE": "W", "LK-KEY": 2, "LK-COUNT": 5}), \
            Client(scan_url) as client:
        scan = client.call("scan.SCANNER", {"LK-MODE": "A", "LK-KEY": 20, "LK-WAIT-MS": 0})
    assert (scan["LK-FIRST"], scan["LK-SECOND"], scan["LK-STATUS"]) == (5, 2, "00")


def test_a_read_by_alternate_key_does_not_give_a_record_that_lost_the_key(scan_url, pg_store):
    """A READ by SC-TAG 20 while another call gives record 2 another SC-TAG: it waits for
    that call, and then no record has SC-TAG 20 (status 23), rather than record 2 with its
    new one."""
    with another_call_holding(scan_url, pg_store,
                              {"LK-MODE": "M", "LK-KEY": 2, "LK-COUNT": 999}), \
            Client(scan_url) as client:
        gone = client.call("scan.SCANNER", {"LK-MODE": "K", "LK-KEY": 20})
    assert gone["LK-STATUS"] == "23"


def test_a_program_idle_in_its_transaction_too_long_gets_an_error_naming_the_setting(
        scan_url, pg_store, postgres):
    """A program that computes longer between two file operations than the server's
    idle_in_transaction_session_timeout loses its transaction every time: the call answers
    500 transaction_timeout (not a 503 that clients would retry forever) with the setting to
    raise, after one more try; nothing of it stays locked and the next calls are served."""
    database = database_of(pg_store)
    postgres.psql(f"ALTER DATABASE {database} SET idle_in_transaction_session_timeout = "
                  "'200ms'")
    # Sessions take the setting when they begin: the SEPs connect again.
    postgres.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                  f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")
    with Client(scan_url) as client:
        with pytest.raises(ServiceError) as failed:
            client.call("scan.SCANNER", {"LK-MODE": "S", "LK-KEY": 1, "LK-WAIT-MS": 600})
        assert "idle_in_transaction_session_timeout" in failed.value.message
        assert (failed.value.status, failed.value.code) == (500, "transaction_timeout")
        for _ in range(3):
            scan = client.call("scan.SCANNER", {"LK-MODE": "S", "LK-KEY": 1, "LK-WAIT-MS": 0})
            assert (scan["LK-FIRST"], scan["LK-SECOND"], scan["LK-STATUS"]) == (1, 2, "00")


@pytest.fixture
def silent_store():
    """The port of a listener that accepts connections and never answers: a store whose
    network went quiet (a cut link, a node gone without closing its connections)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted = []
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in accepted:
            connection.close()
        listener.close()


CONNECT_ONLY = """
import sys
from esrt.cobol.esfh_build import esfh_library
from esrt.isam import Esfh, EsfhError
try:
    Esfh(esfh_library()).store_open(sys.argv[1])
except EsfhError as exc:
    print(exc)
"""


def _open_silent(port, options, env=None):
    """Open the store at `port` with `options` in a process of its own (`env` added to its
    environment): (what `ss` showed of its connection's keepalive timer once established,
    what the process said when the open failed)."""
    process = subprocess.Popen([sys.executable, "-c", CONNECT_ONLY,
                                f"host=127.0.0.1 port={port} dbname=esrt {options}"],
                               stdout=subprocess.PIPE, text=True,
                               env=dict(os.environ, **(env or {})))

    def keepalive_timer():
        shown = subprocess.run(["ss", "-tnoH", "state", "established", "dst",
                                f"127.0.0.1:{port}"], capture_output=True, text=True).stdout
        found = re.search(r"timer:\(keepalive,([^,]+),", shown)
        return found.group(1) if found else None

    try:
        timer = wait_for(keepalive_timer, "the store connection to be established", limit=30)
        return timer, process.communicate(timeout=120)[0]
    finally:
        process.kill()
        process.wait()


def test_a_store_that_never_answers_is_given_up_not_waited_for(silent_store, tmp_path):
    # Without timeouts in the connection string, ESFH's own: a silent connection is probed
    # after seconds (ss shows the keepalive timer in seconds; libpq's default waits for the
    # system's two hours), and connecting gives up instead of waiting forever.
    timer, said = _open_silent(silent_store, "")
    assert "min" not in timer, f"keepalive probes only after {timer}"
    assert "cannot connect to the PostgreSQL store" in said and "timeout expired" in said
    # What the connection string says wins over ESFH's defaults...
    timer, said = _open_silent(silent_store, "keepalives_idle=600 connect_timeout=5")
    assert "min" in timer, f"keepalive probes after {timer}, not the 10 min asked for"
    assert "timeout expired" in said
    # ...and so does a service file it names, where such settings are often kept.
    services = tmp_path / "pg_service.conf"
    services.write_text("[quiet]\nkeepalives_idle=600\nconnect_timeout=5\n")
    timer, said = _open_silent(silent_store, "service=quiet",
                               env={"PGSERVICEFILE": str(services)})
    assert "min" in timer, f"keepalive probes after {timer}, not the service's 10 min"
    assert "timeout expired" in said


def test_the_file_tools_give_up_on_a_store_that_never_answers(silent_store, tmp_path,
                                                              monkeypatch):
    # esrt file connects as ESFH does: with no timeout in the string, a clear error in seconds
    # (psycopg's own default: 130 s).
    result = run_esrt(["file", "count", "APPFILE01", "--store",
                       f"host=127.0.0.1 port={silent_store} dbname=esrt"], tmp_path,
                      check=False, timeout=120)
    assert result.returncode != 0
    assert "cannot connect to the PostgreSQL store" in result.stderr
    assert "timeout expired" in result.stderr
    # A service's connect timeout holds too (psycopg would not read it: 130 s).
    services = tmp_path / "pg_service.conf"
    services.write_text(f"[quiet]\nhost=127.0.0.1\nport={silent_store}\nconnect_timeout=3\n")
    monkeypatch.setenv("PGSERVICEFILE", str(services))
    result = run_esrt(["file", "count", "APPFILE01", "--store", "service=quiet dbname=esrt"],
                      tmp_path, check=False, timeout=100)
    assert result.returncode != 0
    assert "timeout expired" in result.stderr, result.stderr


class DeafeningProxy:
    """A TCP forwarder to the store that can go deaf the way a failed-over address is until its
    new owner has it: the connections it carried are gone, and the first packet (SYN) of a new
    connection is dropped (its one-connection accept queue is kept full), until hear(). Or it
    can lead to another server from now on (move_to)."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.listener.settimeout(0.02)
        self.port = self.listener.getsockname()[1]
        self.accepting = threading.Event()
        self.accepting.set()
        self.stopping = threading.Event()
        # Held while accepting: deafen() waits for an accept under way to end.
        self.turn = threading.Lock()
        self.carried = []
        self.filler = None
        self.thread = threading.Thread(target=self._accept)
        self.thread.start()

    def _accept(self):
        while not self.stopping.is_set():
            client = None
            with self.turn:
                if self.accepting.is_set():
                    with contextlib.suppress(OSError):
                        client, _ = self.listener.accept()
                if client is not None and self.filler is not None:
                    client.close()  # the connection that kept the queue full
                    self.filler = None
                    continue
                if client is not None:
                    # Under the turn: a move_to meanwhile would not see this one to cut it.
                    try:
                        server = socket.create_connection(("127.0.0.1", self.target_port))
                    except OSError:
                        client.close()  # nothing there: as a refused connection
                        continue
                    self.carried += [client, server]
            if client is None:
                time.sleep(0.005)
                continue
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._copy, args=(source, sink), daemon=True).start()

    @staticmethod
    def _copy(source, sink):
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_RDWR)

    def _cut(self):
        for connection in self.carried:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.carried = []

    def deafen(self):
        with self.turn:
            self.accepting.clear()
            self._cut()
        self.filler = socket.create_connection(("127.0.0.1", self.port))

    def move_to(self, port, cut=True):
        """New connections go to the server at `port`; with `cut`, those carried so far end
        (as an address that moves to another node), else they stay with the old server."""
        with self.turn:
            self.target_port = port
            if cut:
                self._cut()

    def hear(self):
        self.accepting.set()

    def close(self):
        self.stopping.set()
        self.thread.join()
        self.listener.close()
        for connection in self.carried:
            connection.close()


RECONNECT = """
import sys
from esrt.cobol.esfh_build import esfh_library
from esrt.isam import Esfh, EsfhError
esfh = Esfh(esfh_library())
esfh.store_open(sys.argv[1])
esfh.reply_get(b"nothing", 0)
print("connected", flush=True)
sys.stdin.readline()
while True:
    try:
        esfh.reply_get(b"nothing", 0)  # on a connection made again: the store's was lost
        break
    except EsfhError as exc:
        print("failed:", exc, flush=True)
print("connected again", flush=True)
sys.stdin.readline()
"""


def test_a_store_whose_address_comes_back_is_reached_without_waiting_for_tcp(postgres):
    # A failover: the store's address had no owner for a while (longer than a connect
    # timeout: the first call's connection gives up), and a new connection's first packet went
    # nowhere. TCP sends it again a second later; ESFH, which has seen the store answer in
    # microseconds, makes a new attempt within 250 ms, so the connection that gets through
    # needed no retransmission (ss shows none).
    proxy = DeafeningProxy(postgres.port)
    process = subprocess.Popen(
        [sys.executable, "-c", RECONNECT, f"host=127.0.0.1 port={proxy.port} user=esrt "
                                          "dbname=esrt connect_timeout=2"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    try:
        assert lines.get(timeout=60) == "connected\n"
        proxy.deafen()
        process.stdin.write("go\n")
        process.stdin.flush()
        said = lines.get(timeout=60)
        assert said.startswith("failed:") and "timeout expired" in said, said
        time.sleep(0.4)  # the next connection's first packet is dropped; then it answers
        proxy.hear()
        said = lines.get(timeout=60)
        assert said == "connected again\n", said
        shown = subprocess.run(["ss", "-tinH", "state", "established", "dst",
                                f"127.0.0.1:{proxy.port}"], capture_output=True,
                               text=True).stdout
        assert shown.strip(), "the new connection is not there"
        assert "retrans:" not in shown, f"the connection waited for TCP to resend: {shown}"
    finally:
        process.kill()
        process.communicate()
        proxy.close()


def test_a_region_whose_store_address_leads_to_a_standby_answers_retry_later(
        node, srv01_car, pg_store, postgres):
    # During a failover the store's address can lead to a standby for a moment (two nodes
    # answering for it, the old primary back as a standby). A call there is not failed for
    # good: 503 store_unavailable, which the client retries with its idempotency key, and it
    # runs once when the address leads to the primary again.
    proxy = DeafeningProxy(postgres.port)
    try:
        with PostgresCluster(standby_of=postgres) as standby:
            store = over_tcp(pg_store, proxy.port)
            region = start_cblapp01_region(node, srv01_car, extra=("--store", store))
            with Client(region.url) as client:
                assert [client.call("srv01.CBLAPP01")["LK-COUNTER"] for _ in range(2)] == [0, 1]
                proxy.move_to(standby.port)
                with pytest.raises(ServiceError) as refused:
                    client.call("srv01.CBLAPP01")
                assert refused.value.status == 503, refused.value
                assert refused.value.code == "store_unavailable", refused.value
                assert "read-only" in refused.value.message, refused.value.message
                # The file tools refuse it the same way, saying what to check.
                tool = run_esrt(["file", "count", "APPFILE01", "--store", store], node.home,
                                check=False)
                assert tool.returncode != 0
                assert "read-only" in tool.stderr and "the primary" in tool.stderr, tool.stderr
                key = str(uuid.uuid4())
                retried = threading.Timer(1.0, proxy.move_to, args=(postgres.port,))
                retried.start()
                try:
                    again = client.call("srv01.CBLAPP01", idempotency_key=key, retry_for=60)
                finally:
                    retried.cancel()
                    retried.join()
                assert again["LK-COUNTER"] == 2
                assert client.call("srv01.CBLAPP01", idempotency_key=key)["LK-COUNTER"] == 2
                assert client.call("srv01.CBLAPP01")["LK-COUNTER"] == 3
    finally:
        proxy.close()


# Store a reply in a transaction of its own, argv[2] times, in the store argv[1]; say how each
# went (written, lost: ESFH_STORE_LOST, failed) and wait for a line on stdin after each.
WRITE_AGAIN = """
import sys
from esrt.cobol.esfh_build import esfh_library
from esrt.isam import ESFH_STORE_LOST, Esfh, EsfhError
esfh = Esfh(esfh_library())
esfh.store_open(sys.argv[1])
for attempt in range(int(sys.argv[2])):
    esfh.begin()
    try:
        esfh.reply_put(b"key%d" % attempt, b"written", 2**40)
        esfh.commit()
        print("written", flush=True)
    except EsfhError as exc:
        esfh.abort()
        print("lost" if exc.code == ESFH_STORE_LOST else "failed", exc, flush=True)
    sys.stdin.readline()
"""


@pytest.mark.parametrize("allowed_by", ["string", "environment"])
def test_a_session_on_a_server_that_refuses_writes_is_replaced(postgres, pg_store, allowed_by):
    # A store that allows any server (target_session_attrs=any in the string, or
    # PGTARGETSESSIONATTRS: a pooler in front) reached a standby: the refused write is a store
    # lost for now (retried), not a failed call, and the next transaction starts on a new
    # session, which reaches the primary once the address does.
    proxy = DeafeningProxy(postgres.port)
    store = over_tcp(pg_store, proxy.port)
    environment = dict(os.environ)
    if allowed_by == "string":
        store += " target_session_attrs=any"
    else:
        environment["PGTARGETSESSIONATTRS"] = "any"
    try:
        with PostgresCluster(standby_of=postgres) as standby:
            # The replies table, made on the primary, is on the standby once it has replayed.
            subprocess.run([sys.executable, "-c", WRITE_AGAIN, pg_store, "1"], input="\n",
                           text=True, check=True, capture_output=True)
            wait_for(lambda: standby.psql("SELECT to_regclass('esfh.__esrt_replies') IS NOT NULL",
                                          dsn=over_tcp(pg_store, standby.port)).strip() == "t",
                     "the standby to replay")
            proxy.move_to(standby.port)
            process = subprocess.Popen(
                [sys.executable, "-c", WRITE_AGAIN, store, "2"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=environment)
            lines = queue.Queue()
            threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                             daemon=True).start()
            try:
                said = lines.get(timeout=60)
                assert said.startswith("lost") and "accepts no writes" in said, said
                proxy.move_to(postgres.port, cut=False)
                process.stdin.write("\n")
                process.stdin.flush()
                said = lines.get(timeout=60)
                assert said == "written\n", said
            finally:
                process.kill()
                process.communicate()
    finally:
        proxy.close()


def test_a_reply_store_a_standby_cannot_make_is_a_store_lost_not_a_failure(postgres, pg_store):
    # ESFH makes its tables on a connection of its own; on a server that accepts no writes
    # that is the store out of reach for now (503, retried), as for the call's own writes.
    with PostgresCluster(standby_of=postgres) as standby:
        # The standby's copy, taken now, has the database, and no reply store yet.
        on_standby = over_tcp(pg_store, standby.port)
        run = subprocess.run([sys.executable, "-c", WRITE_AGAIN,
                              on_standby + " target_session_attrs=any", "1"], input="\n",
                             text=True, capture_output=True, timeout=120)
        said = run.stdout
        assert said.startswith("lost") and "cannot create the reply store" in said, (
            said, run.stderr)
