"""Fixtures that start real esrt processes (mfds, regions) in throwaway homes.

Everything started here is stopped in a finalizer, even when the test fails: regions with
casstop --force (only their own recorded processes), then mfds.
"""

import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

# Our own failover tests use the lab fixtures users get from esrt.testing.
pytest_plugins = ["esrt.testing.plugin"]

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "cblapp01"
SERVICES = ROOT / "tests" / "cobol" / "services"


# What a program run with a sanitized libesfh.so needs (make test-sanitized): libasan first in
# the process and the sanitizers' options.
SANITIZER_VARIABLES = ("ESRT_SANITIZE", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS")


def program_environ(**variables):
    """A minimal environment for a COBOL program (PATH, plus `variables`), keeping the sanitizer
    variables when the tests run against the sanitized build."""
    environ = {"PATH": "/usr/bin:/bin"}
    if os.environ.get("ESRT_SANITIZE", "") not in ("", "0"):
        environ.update({name: os.environ[name] for name in SANITIZER_VARIABLES
                        if name in os.environ})
    environ.update(variables)
    return environ


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "postgresql: runs on the PostgreSQL store (ESFH's C and PostgreSQL, no "
        "Python twin: `make test` runs it once, not again in the pure-Python pass)")


@pytest.fixture(scope="session")
def postgres():
    """One PostgreSQL cluster for the whole run (esrt.testing.postgres), stopped at its end."""
    from esrt.testing.postgres import PostgresCluster
    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture
def ocf_root():
    """A world-traversable OCF root for esrt's resource agents: ocf-tester runs meta-data as
    user nobody, who cannot enter pytest's private tmp directories."""
    root = Path(tempfile.mkdtemp(prefix="esrt-ocf-"))
    os.chmod(root, 0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


_databases = iter(range(1, 1_000_000))


@pytest.fixture
def pg_store(postgres):
    """A fresh database of the session's cluster: the libpq connection string of a new,
    empty PostgreSQL store."""
    return postgres.create_database(f"store{next(_databases)}")


def database_of(store):
    """The database a pg_store connection string names."""
    return store.rsplit("dbname=", 1)[1].split()[0]


def over_tcp(store, port):
    """The database of `store` reached through TCP at 127.0.0.1:`port` (a standby of its
    cluster, a proxy in front of it, or nothing at all)."""
    from esrt.testing.postgres import USER
    return f"host=127.0.0.1 port={port} user={USER} dbname={database_of(store)}"


def wait_for(predicate, what, limit=60.0):
    """Return predicate()'s first true value, polling; fail naming `what` after `limit` seconds.

    The limit guards against hanging forever; it is never a performance threshold.
    """
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def compile_preload(source, directory):
    """Build the fault-injecting LD_PRELOAD library `source` (tests/cobol/faults) into
    `directory`; return its path."""
    library = Path(directory) / (Path(source).stem + ".so")
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(source), "-ldl"],
                   check=True)
    return library


def openssl(*args, cwd):
    """Run the openssl command line tool as a user making certificates would."""
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"openssl {' '.join(args)}:\n{result.stderr}"
    return result.stdout


def make_certificates(directory, server_names=("IP:127.0.0.1", "DNS:localhost"),
                      clients=("alice",), prefix=""):
    """A CA, a server certificate for `server_names` and client certificates signed by it,
    made with openssl in `directory`; returns {"ca", "server.crt", "server.key",
    "<client>.crt", "<client>.key"} paths (names start with `prefix`)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files = {"ca": directory / f"{prefix}ca.crt"}
    ca_key = directory / f"{prefix}ca.key"
    # The extensions Python 3.13 checks strictly (VERIFY_X509_STRICT): a CA says what its key
    # may do, a certificate names the key it was signed with.
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", ca_key, "-out", files["ca"], "-days", "2", "-subj",
            f"/CN={prefix}esrt test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)

    def issue(name, subject, extensions):
        key, request, certificate = (directory / f"{prefix}{name}.{kind}"
                                     for kind in ("key", "csr", "crt"))
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", key, "-out", request, "-subj", subject, cwd=directory)
        extension_file = directory / f"{prefix}{name}.ext"
        extension_file.write_text(extensions + "basicConstraints=critical,CA:FALSE\n"
                                  "keyUsage=critical,digitalSignature\n"
                                  "subjectKeyIdentifier=hash\n"
                                  "authorityKeyIdentifier=keyid,issuer\n")
        openssl("x509", "-req", "-in", request, "-CA", files["ca"], "-CAkey", ca_key,
                "-CAcreateserial", "-out", certificate, "-days", "2", "-extfile",
                extension_file, cwd=directory)
        files[f"{name}.crt"], files[f"{name}.key"] = certificate, key

    issue("server", "/CN=esrt test server",
          f"subjectAltName={','.join(server_names)}\nextendedKeyUsage=serverAuth\n")
    for client in clients:
        issue(client, f"/CN={client}", "extendedKeyUsage=clientAuth\n")
    return files


def scrape_metrics(url):
    """(content type, {(sample name, sorted labels): value}) from a region's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families
    host, port = url[len("http://"):].rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read().decode()
        assert response.status == 200, body
        content_type = response.getheader("content-type")
    finally:
        connection.close()
    values = {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
              for family in text_string_to_metric_families(body) for sample in family.samples}
    return content_type, values


def run_esrt(args, home, cwd=None, check=True, timeout=180, command="esrt"):
    """Run the esrt CLI (or an alias script) as a user would; return the CompletedProcess."""
    environ = dict(os.environ, ESRT_HOME=str(home))
    if command == "esrt":
        argv = [sys.executable, "-m", "esrt"] + list(args)
    else:
        argv = [str(Path(sys.executable).parent / command)] + list(args)
    result = subprocess.run(argv, cwd=cwd, env=environ, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


class Node:
    """A throwaway ESRT_HOME with a running mfds."""

    def __init__(self, home):
        self.home = Path(home)

    def esrt(self, *args, **kwargs):
        return run_esrt(args, self.home, **kwargs)

    @property
    def mfds_url(self):
        return json.loads((self.home / "mfds.json").read_text())["url"]

    def region_status(self, name):
        from esrt.node.runs import read_json, recorded_run_dir
        from esrt.home import Home
        return read_json(recorded_run_dir(Home(self.home), name) / "status.json") or {}

    def stop_everything(self):
        from esrt.home import Home
        from esrt.mfds import daemon
        from esrt.node.control import stop_region
        home = Home(self.home)
        for record in sorted((self.home / "run").glob("*.json")):
            try:
                stop_region(record.stem, home=home, force=True)
            except Exception as exc:  # noqa: BLE001 - keep going: mfds must be stopped whatever happened
                print(f"cleanup of {record.stem} failed: {exc}", file=sys.stderr)
        daemon.stop_daemon(home)


def _running_node(home):
    from esrt.home import Home
    from esrt.mfds import daemon
    home.mkdir()
    node = Node(home)
    daemon.start_daemon(Home(home), "127.0.0.1:0")
    return node


@pytest.fixture
def node(tmp_path):
    node = _running_node(tmp_path / "home")
    try:
        yield node
    finally:
        node.stop_everything()


@pytest.fixture
def other_node(tmp_path):
    """A second node on this machine: its own ESRT_HOME and mfds (servers of the same name
    as `node`'s do not collide)."""
    node = _running_node(tmp_path / "other-home")
    try:
        yield node
    finally:
        node.stop_everything()


@pytest.fixture(scope="session")
def srv01_car(tmp_path_factory):
    """srv01.car holding CBLAPP01 with every parameter an output, built with the real tools."""
    from esrt.testing.apps import build_car
    return build_car("CBLAPP01", workdir=tmp_path_factory.mktemp("srv01"))


@pytest.fixture(scope="session")
def tst_car(tmp_path_factory):
    """Package tst: ECHOPARM (inputs of several kinds) and ABENDER (abends on request)."""
    work = tmp_path_factory.mktemp("tst")
    home = tmp_path_factory.mktemp("tst-home")
    for name in ("echoparm.cbl", "abender.cbl"):
        shutil.copy(SERVICES / name, work / name)
    run_esrt(["imtk", "defmap", "--src", "echoparm.cbl", "--src", "abender.cbl",
              "--service", "tst"], home, cwd=work)
    mapping = work / "tst.mapping.json"
    document = json.loads(mapping.read_text())
    for program in document["programs"]:
        for parameter in program["parameters"]:
            parameter["direction"] = "out" if parameter["name"] in (
                "LK-OUT-GREETING", "LK-OUT-TOTAL", "LK-RESULT") else "in"
    mapping.write_text(json.dumps(document, indent=2))
    run_esrt(["imtk", "generate", "--service", "tst"], home, cwd=work)
    return work / "tst.car"


class Region:
    """A running region of a Node, with the URL of its "Web Services" listener."""

    def __init__(self, node, name, status):
        self.node = node
        self.name = name
        self.status = status
        address = status["listeners"][0]["address"]
        self.url = f"http://{address}"


def start_cblapp01_region(node, car, name="ESSRV01", seps=2, extra=()):
    node.esrt("server", "create", name, "--seps", str(seps),
              "--listener", "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01", *extra)
    node.esrt("casstart", "-r", name, "--wait")
    node.esrt("deploy", str(car), "--server", name)
    node.esrt("batch", "run", str(EXAMPLES / "initfile1.cbl"), "--server", name)
    return Region(node, name, node.region_status(name))


def start_second_region(node, car, store, name="ESSRV02"):
    """Another region serving CBLAPP01 from the files of `store` (a PostgreSQL store that
    a first region initialised): its listener's URL."""
    node.esrt("server", "create", name, "--seps", "2", "--listener",
              "Web Services=127.0.0.1:*", "--env", "DD_APPFILE01=APPFILE01", "--store", store)
    node.esrt("casstart", "-r", name, "--wait")
    node.esrt("deploy", str(car), "--server", name)
    return "http://" + node.region_status(name)["listeners"][0]["address"]


class CallLoad:
    """Callers calling CBLAPP01 through `url` (one URL, or a list for a FailoverClient) with
    an idempotency key each (retried for `retry_for` seconds) until stop(): the counters they
    got, the errors, and when each call began and ended."""

    def __init__(self, url, callers=4, retry_for=15.0):
        import threading
        self.url, self.retry_for = url, retry_for
        self.counters, self.errors, self.calls = [], [], []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._caller) for _ in range(callers)]
        for thread in self._threads:
            thread.start()

    def _caller(self):
        from esrt.client import Client
        with Client(self.url) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    value = client.call("srv01.CBLAPP01", retry_for=self.retry_for)["LK-COUNTER"]
                except Exception as exc:  # noqa: BLE001 - collected: tests assert there are none
                    with self._lock:
                        self.errors.append(repr(exc))
                    continue
                with self._lock:
                    self.counters.append(value)
                    self.calls.append((began, time.monotonic()))

    def answered_since(self, moment):
        with self._lock:
            return sum(1 for began, _ in self.calls if began > moment)

    def stop(self):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def longest_call(self):
        """The longest time a caller waited for one answer (what a fault costs a caller)."""
        return max(ended - began for began, ended in self.calls)


@pytest.fixture
def esrt_region(node, srv01_car):
    """Region ESSRV01 with srv01 deployed and APPFILE01 initialised (counter 0)."""
    return start_cblapp01_region(node, srv01_car)


def call_outcome(client, service="srv01.CBLAPP01"):
    """(outcome, counter) of one call of CBLAPP01 for tests that call under a fault: outcome is
    "ok", "RETURN-CODE n" (the program could not count and changed nothing), the error's
    status, code and text, or "no answer: ..."; counter is LK-COUNTER of a call that counted."""
    from esrt.client import ConnectionFailed, ServiceError
    try:
        reply = client.call(service)
    except ServiceError as exc:
        return f"{exc.status} {exc.code}: {exc.message}", None
    except ConnectionFailed as exc:
        return f"no answer: {exc}", None
    if reply.return_code != 0:
        return f"RETURN-CODE {reply.return_code}", None
    return "ok", reply["LK-COUNTER"]
