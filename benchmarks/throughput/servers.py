"""The servers bench_throughput.py measures, each started and always stopped by a context manager.

* `esrt_region`: mfds plus one region with an HTTP and an "esrt" (binary) listener, the null
  service (examples/null) and CBLAPP01 (examples/cblapp01, durable through ESFH) deployed.
* `echo_server`: the bare Twisted framing server of echo_server.py (the transport limit).
* `gunicorn_server`: gunicorn sync workers running gunicorn_app.py, which calls the same
  programs through ctypes, compiled for GnuCOBOL's own file handler (what users run instead).

Every server is started from this process and inherits its CPU affinity, so pinning the
benchmark script to one core pins the servers there too. Ports are always free ones: the
servers bind port 0, or are handed a socket bound to port 0.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from esrt.client import Client, ConnectionFailed
from esrt.cobol.compile import compile_executable, compile_module
from esrt.home import Home
from esrt.mfds import daemon
from esrt.node.control import start_region, stop_region
from esrt.testing.apps import build_car

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CBLAPP01_DIR = ROOT / "examples" / "cblapp01"
NULL_DIR = ROOT / "examples" / "null"
ACCOUNTS_DIR = ROOT / "examples" / "accounts"
REGION_NAME = "BENCHTP"
# The same server on each node of the many-records benchmark.
ACCOUNTS_REGION = "BENCHACCT"
# The account whose password the HTTPS Basic listener checks.
BENCH_USER, BENCH_PASSWORD = "bench", "bench password 1"
NULL_SERVICE = "null.NULLSVC"
CBLAPP01_SERVICE = "srv01.CBLAPP01"
# The inputs every benchmark call of the null service sends, and what it must answer.
NULL_PARAMS = {"LK-IN-NAME": "bench", "LK-IN-AMOUNT": 42}
NULL_REPLY = {"LK-OUT-NAME": "bench", "LK-OUT-AMOUNT": 42}
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0


class ServerError(RuntimeError):
    """A server the benchmark needs did not start or answered wrongly; the message says which."""


def _esrt(home, *args, cwd=None):
    environ = dict(os.environ, ESRT_HOME=str(home))
    result = subprocess.run([sys.executable, "-m", "esrt", *args], cwd=cwd, env=environ,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ServerError(f"`esrt {' '.join(args)}` failed (exit {result.returncode}):\n"
                          f"{result.stdout}{result.stderr}")
    return result.stdout


def build_null_car(work, home):
    """examples/null's NULLSVC with its shipped mapping -> null.car; return its path."""
    pkg = work / "pkg-null"
    pkg.mkdir()
    for name in ("nullsvc.cbl", "null.mapping.json"):
        shutil.copy(NULL_DIR / name, pkg)
    _esrt(home, "imtk", "generate", "--service", "null", cwd=pkg)
    return pkg / "null.car"


def build_cblapp01_car(work):
    """CBLAPP01 with every parameter an output -> srv01.car, as the lab builds it."""
    return build_car("CBLAPP01", workdir=work / "pkg-srv01")


def mapping_parameters(mapping_file):
    """The parameter list of the first program of an esrt mapping file."""
    return json.loads(Path(mapping_file).read_text())["programs"][0]["parameters"]


@contextlib.contextmanager
def esrt_region(work, seps, cars, store=None):
    """Yield {"http", "binary", "https", "https_basic": "HOST:PORT"} of a running region (the
    last two with TLS, the last one with auth=basic for BENCH_USER); stop it after.

    Runs mfds and a region with `seps` SEPs in a throwaway home under `work`, deploys `cars`
    (build_null_car, build_cblapp01_car) and creates APPFILE01 (counter 0) with INITFILE1;
    with `store` (a PostgreSQL connection string) the region's files are kept there.
    """
    cert, key = make_certificate(work / "tls")
    tls = f"tls_cert={cert},tls_key={key}"
    with _node(work, REGION_NAME) as home:
        _esrt(home.root, "mfds", "user", "add", BENCH_USER, "--password", BENCH_PASSWORD,
              "--role", "operator")
        _esrt(home.root, "server", "create", REGION_NAME, "--seps", str(seps),
              "--listener", "Web Services=127.0.0.1:*",
              "--listener", "Binary=127.0.0.1:*,esrt",
              "--listener", f"HTTPS=127.0.0.1:*,web-services,{tls}",
              "--listener", f"HTTPS Basic=127.0.0.1:*,web-services,{tls},auth=basic",
              "--env", "DD_APPFILE01=APPFILE01", *(("--store", store) if store else ()))
        status = start_region(REGION_NAME, home=home, timeout=START_TIMEOUT_S)
        for car in cars:
            _esrt(home.root, "deploy", str(car), "--server", REGION_NAME)
        _esrt(home.root, "batch", "run", str(CBLAPP01_DIR / "initfile1.cbl"),
              "--server", REGION_NAME)
        kinds = {"Web Services": "http", "Binary": "binary", "HTTPS": "https",
                 "HTTPS Basic": "https_basic"}
        addresses = {kinds[listener["CN"]]: listener["address"]
                     for listener in status["listeners"]}
        yield dict(addresses, tls_cert=str(cert))


@contextlib.contextmanager
def accounts_region(work, seps, car, store, accounts=None):
    """Yield the binary listener's HOST:PORT of a region serving examples/accounts' XFER from
    PostgreSQL store `store`, in a throwaway node (home and mfds) under `work`; stop it after.
    With `accounts`, ACCTINIT first creates that many accounts (a second region on the same
    store leaves it out)."""
    with _node(work, ACCOUNTS_REGION) as home:
        _esrt(home.root, "server", "create", ACCOUNTS_REGION, "--seps", str(seps),
              "--listener", "Binary=127.0.0.1:*,esrt", "--env", "DD_ACCOUNTS=ACCOUNTS",
              "--env", f"ACCOUNTS_COUNT={accounts or 1}", "--store", store)
        status = start_region(ACCOUNTS_REGION, home=home, timeout=START_TIMEOUT_S)
        _esrt(home.root, "deploy", str(car), "--server", ACCOUNTS_REGION)
        if accounts:
            _esrt(home.root, "batch", "run", str(ACCOUNTS_DIR / "acctinit.cbl"),
                  "--server", ACCOUNTS_REGION)
        yield status["listeners"][0]["address"]


@contextlib.contextmanager
def _node(work, region):
    """A throwaway node under `work` (home and mfds) for region `region`: its Home; the region
    and mfds are stopped after, whatever happened."""
    home = Home(work / "home").ensure()
    daemon.start_daemon(home, "127.0.0.1:0")
    try:
        yield home
    finally:
        try:
            stop_region(region, home=home, force=True)
        except Exception as exc:  # noqa: BLE001 - mfds must still be stopped; the error is shown
            print(f"warning: stopping region {region} failed: {exc}", file=sys.stderr)
        finally:
            daemon.stop_daemon(home)


def make_certificate(directory):
    """A self-signed certificate and key for 127.0.0.1 made with openssl; (cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=esrt bench", "-addext",
                    "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return cert, key


def _stop(process):
    """SIGTERM, then SIGKILL if it does not go within STOP_TIMEOUT_S; always reaped."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def echo_server():
    """Yield "127.0.0.1:PORT" of a running echo_server.py; stop it after."""
    process = subprocess.Popen([sys.executable, str(HERE / "echo_server.py")],
                               stdout=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        if not line.startswith("listening on "):
            raise ServerError(f"the Twisted echo server did not start (said {line!r}, exit "
                              f"status {process.poll()}); run {HERE / 'echo_server.py'} by hand")
        yield f"127.0.0.1:{int(line.split()[-1])}"
    finally:
        _stop(process)
        process.stdout.close()


def build_plain_programs(work):
    """Compile NULLSVC and CBLAPP01 for GnuCOBOL's own file handler (no ESFH), create their
    APPFILE01 with INITFILE1; return (module dir, data dir) for gunicorn and the call loop."""
    modules = work / "plain"
    data = work / "plain-data"
    data.mkdir(parents=True)
    compile_module(NULL_DIR / "nullsvc.cbl", modules)
    compile_module(CBLAPP01_DIR / "cblapp01.cbl", modules)
    initfile = compile_executable(CBLAPP01_DIR / "initfile1.cbl", work / "initfile1-plain")
    subprocess.run([str(initfile)], env=plain_environ(modules, data), cwd=data, check=True,
                   stdout=subprocess.DEVNULL)
    return modules, data


def plain_environ(modules, data):
    """Environment for plain programs: modules on COB_LIBRARY_PATH, APPFILE01 in `data`."""
    return dict(os.environ, COB_LIBRARY_PATH=str(modules),
                DD_APPFILE01=str(Path(data) / "APPFILE01"))


def services_config(work, modules, cblapp01_parameters):
    """Write gunicorn_app's services.json for the two programs; return its path."""
    config = {
        NULL_SERVICE: {"module": str(modules / "NULLSVC.so"), "entry": "NULLSVC",
                       "parameters": mapping_parameters(NULL_DIR / "null.mapping.json")},
        CBLAPP01_SERVICE: {"module": str(modules / "CBLAPP01.so"), "entry": "CBLAPP01",
                           "parameters": cblapp01_parameters},
    }
    path = work / "services.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def cblapp01_parameters(work):
    """CBLAPP01's parameters as the region's mapping has them (built by build_cblapp01_car)."""
    return mapping_parameters(work / "pkg-srv01" / "srv01.mapping.json")


@contextlib.contextmanager
def gunicorn_server(work, workers, modules, data):
    """Yield "127.0.0.1:PORT" of gunicorn (`workers` sync workers) serving gunicorn_app."""
    config = services_config(work, modules, cblapp01_parameters(work))
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    address = f"127.0.0.1:{listener.getsockname()[1]}"
    environ = plain_environ(modules, data)
    environ.update(BENCH_COBOL_SERVICES=str(config),
                   PYTHONPATH=os.pathsep.join(filter(None, (str(ROOT),
                                                           os.environ.get("PYTHONPATH")))))
    log = open(work / "gunicorn.log", "wb")
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-k", "sync", "-w", str(workers), "--backlog", "1024",
               "--bind", f"fd://{listener.fileno()}", "--log-level", "warning",
               "benchmarks.throughput.gunicorn_app:app"]
    process = subprocess.Popen(command, env=environ, cwd=data, pass_fds=(listener.fileno(),),
                               stdout=log, stderr=subprocess.STDOUT)
    listener.close()  # gunicorn holds its own copy
    try:
        _wait_answering(f"http://{address}", process, work / "gunicorn.log")
        yield address
    finally:
        _stop(process)
        log.close()


def _wait_answering(url, process, log_path):
    """Call the null service until it answers (gunicorn's workers load lazily)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"gunicorn exited during start (exit {process.returncode}):\n"
                              f"{Path(log_path).read_text(errors='replace')[-2000:]}")
        try:
            with Client(url, timeout=5) as client:
                reply = client.call(NULL_SERVICE, NULL_PARAMS)
            if dict(reply) != NULL_REPLY:
                raise ServerError(f"gunicorn's {NULL_SERVICE} answered {dict(reply)}, expected "
                                  f"{NULL_REPLY}")
            return
        except ConnectionFailed:
            time.sleep(0.1)
    raise ServerError(f"gunicorn did not answer within {START_TIMEOUT_S:.0f}s; see {log_path}")
