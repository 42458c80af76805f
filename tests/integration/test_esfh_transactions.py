"""ESFH transactions with real processes: COBOL module CNTAPP (tests/conformance/cntapp.cbl)
called through cffi from worker processes, each request inside esfh_begin/esfh_commit, on
both stores (a Berkeley DB environment, a PostgreSQL database).

Every worker is a child process talking line by line over pipes; the fixture kills and reaps
all of them, even when a test fails.
"""

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from esrt.cobol.compile import compile_module
from esrt.cobol.esfh_build import build_esfh, esfh_program_args

ROOT = Path(__file__).resolve().parents[2]
CNTAPP = ROOT / "tests" / "conformance" / "cntapp.cbl"
KEY = "K00001"

# The worker: commands on stdin, one reply line each on stdout.
#   recover | open | begin | commit | abort | failchk | call OP | loop N OP | exit
#   get KEY (the stored reply, or "none") | put KEY DATA (kept until 2000) | purge NOW
# "call" replies "<counter> <file status> <doomed 0/1>"; "loop" runs N requests, re-running a
# request whose transaction was doomed, and replies with the counters it saw.
WORKER = textwrap.dedent('''
    import os, sys
    from esrt.isam import Esfh, EsfhError
    from esrt.cobol.runtime import CobolRuntime
    lib, module, data, store = sys.argv[1:5]
    esfh = Esfh(lib)
    os.environ["ESRT_DATA_DIR"] = data
    os.environ["COB_FILE_PATH"] = data
    runtime = CobolRuntime()
    program = runtime.load(module, "CNTAPP", 4)
    op, key, counter, status = (bytearray(b"A"), bytearray(b"%-6s" % sys.argv[5].encode()),
                                bytearray(10), bytearray(2))
    call = program.bind([op, key, counter, status])

    def run(which):
        op[0:1] = which.encode()
        call()
        return int(counter), status.decode(), int(esfh.doomed())

    def reply(text):
        sys.stdout.write(text + "\\n")
        sys.stdout.flush()

    for line in sys.stdin:
        words = line.split()
        try:
            if words[0] == "open":
                if store:
                    esfh.store_open(store)
                else:
                    esfh.env_open(data, max_procs=8)
                reply("ok")
            elif words[0] == "begin":
                esfh.begin(); reply("ok")
            elif words[0] == "commit":
                esfh.commit(); reply("ok")
            elif words[0] == "abort":
                esfh.abort(); reply("ok")
            elif words[0] == "failchk":
                esfh.failchk(); reply("ok")
            elif words[0] == "get":
                stored = esfh.reply_get(words[1].encode(), 1000)
                reply(stored.decode() if stored is not None else "none")
            elif words[0] == "purge":
                reply(str(esfh.reply_purge(int(words[1]))))
            elif words[0] == "put":
                esfh.reply_put(words[1].encode(), words[2].encode(), 2000); reply("ok")
            elif words[0] == "call":
                reply("%d %s %d" % run(words[1]))
            elif words[0] == "loop":
                seen = []
                for _ in range(int(words[1])):
                    while True:
                        esfh.begin()
                        value, st, doomed = run(words[2])
                        if doomed:
                            esfh.abort()
                            continue
                        if st != "00":
                            raise RuntimeError("status " + st)
                        esfh.commit()
                        seen.append(value)
                        break
                reply(" ".join(map(str, seen)))
            elif words[0] == "exit":
                reply("bye")
                break
        except EsfhError as exc:
            reply("error " + str(exc).replace("\\n", " "))
''')


class Worker:
    """One worker process running CNTAPP through cffi."""

    def __init__(self, setup, key=KEY):
        environ = dict(os.environ, PYTHONPATH=str(ROOT))
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER, str(setup["lib"]), str(setup["module"]),
             str(setup["data"]), setup["store"], key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=environ, cwd=str(setup["data"]))
        setup["workers"].append(self)

    def send(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()

    def read(self, timeout=60):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("worker did not answer within %s s" % timeout)
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError("worker ended: " + self.process.stderr.read())
        return line.strip()

    def ready(self, timeout):
        return bool(select.select([self.process.stdout], [], [], timeout)[0])

    def ask(self, command, timeout=60):
        self.send(command)
        answer = self.read(timeout)
        assert not answer.startswith("error"), answer
        if command == "exit":
            self.process.stdin.close()  # the worker is ending: stop() waits for it
        return answer

    def call(self, op="A"):
        counter, status, doomed = self.ask("call " + op).split()
        return int(counter), status, int(doomed)

    def stop(self):
        try:
            self.process.wait(timeout=10 if self.process.stdin.closed else 0)
        except subprocess.TimeoutExpired:
            pass
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("esfh-build")
    lib = build_esfh(out)
    module = compile_module(CNTAPP, out, extra_args=esfh_program_args())
    return lib, module


@pytest.fixture(params=["berkeley-db", pytest.param("postgresql", marks=pytest.mark.postgresql)])
def setup(built, tmp_path, request):
    """A fresh data directory (recovered) or PostgreSQL database, initialised; workers stopped
    at the end."""
    store = request.getfixturevalue("pg_store") if request.param == "postgresql" else ""
    yield from prepared(built, tmp_path, store)


@pytest.fixture
def pg_setup(built, tmp_path, pg_store):
    """setup, on a PostgreSQL store only."""
    yield from prepared(built, tmp_path, pg_store)


def prepared(built, tmp_path, store):
    data = tmp_path / "data"
    data.mkdir()
    state = {"lib": built[0], "module": built[1], "data": data, "workers": [], "store": store}
    try:
        init = Worker(state)
        init.ask("exit")  # nothing opened yet: recovery runs below in a process of its own
        init.stop()
        recover = store or subprocess.run(
            [sys.executable, "-c", "import sys; from esrt.isam import Esfh; "
             "Esfh(sys.argv[1]).recover(sys.argv[2])", str(built[0]), str(data)],
            env=dict(os.environ, PYTHONPATH=str(ROOT)), capture_output=True, text=True)
        assert store or recover.returncode == 0, recover.stderr
        init = Worker(state)
        init.ask("open")
        assert init.call("I") == (0, "00", 0)
        init.ask("exit")
        init.stop()
        yield state
    finally:
        for worker in state["workers"]:
            worker.stop()


def test_four_processes_800_calls_give_800_distinct_counters(setup):
    workers = [Worker(setup) for _ in range(4)]
    for worker in workers:
        worker.ask("open")
    for worker in workers:
        worker.send("loop 200 A")
    seen = []
    for worker in workers:
        seen += [int(value) for value in worker.read(timeout=300).split()]
    assert sorted(seen) == list(range(800))
    checker = Worker(setup)
    checker.ask("open")
    assert checker.call("A")[0] == 800


def test_abort_undoes_the_write(setup):
    worker = Worker(setup)
    worker.ask("open")
    worker.ask("begin")
    assert worker.call("A") == (0, "00", 0)
    assert worker.call("A") == (1, "00", 0)
    worker.ask("abort")
    worker.ask("begin")
    assert worker.call("A") == (0, "00", 0)
    worker.ask("commit")
    assert worker.call("A")[0] == 1  # outside a request: auto-commit


def test_killed_worker_does_not_block_others_after_failchk(setup):
    victim, other, doctor = Worker(setup), Worker(setup), Worker(setup)
    for worker in (victim, other, doctor):
        worker.ask("open")
    victim.ask("begin")
    assert victim.call("A") == (0, "00", 0)  # holds the write lock, never commits
    victim.process.send_signal(signal.SIGKILL)
    # Leave it a zombie (not reaped): failchk must still see it as dead.
    stat = Path(f"/proc/{victim.process.pid}/stat")
    while stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        select.select([], [], [], 0.01)
    other.send("loop 1 A")
    if setup["store"]:
        # PostgreSQL ends the dead process's session, its transaction and its row locks with
        # its connection: nothing to run by hand.
        assert other.read() == "0"  # the killed transaction's write was rolled back
        assert other.call("A")[0] == 1
        return
    assert not other.ready(0.5), "the dead worker's lock should block until failchk"
    assert doctor.ask("failchk") == "ok"
    assert other.read() == "0"  # the killed transaction's write was rolled back
    assert other.call("A")[0] == 1


def test_deadlock_victim_is_doomed(setup):
    first, second = Worker(setup), Worker(setup)
    for worker in (first, second):
        worker.ask("open")
        worker.ask("begin")
    assert first.call("A") == (0, "00", 0)
    assert second.call("B") == (0, "00", 0)
    first.send("call B")
    assert not first.ready(0.3)  # waits for second's lock on CNTFILEB
    second.send("call A")       # closes the cycle: the store picks a victim
    ready, _, _ = select.select([first.process.stdout, second.process.stdout], [], [], 60)
    assert ready, "no worker was chosen as deadlock victim"
    answered = first if first.process.stdout in ready else second
    answers = {answered: answered.read().split()[1:]}
    if answers[answered] == ["00", "0"]:
        # The survivor answered first: the victim's locks went with its doomed operation
        # (PostgreSQL), so both answers came at once.
        other = second if answered is first else first
        answers[other] = other.read().split()[1:]
    victims = [worker for worker, answer in answers.items() if answer == ["51", "1"]]
    assert len(victims) == 1, f"one deadlock victim, doomed, expected: {list(answers.values())}"
    victim = victims[0]
    survivor = second if victim is first else first
    counter, status, doomed = victim.call("A")  # every later operation fails fast
    assert (status, doomed) == ("51", 1)
    victim.ask("abort")
    survived = answers.get(survivor) or survivor.read().split()[1:]
    assert survived == ["00", "0"]
    survivor.ask("commit")
    checker = Worker(setup)
    checker.ask("open")
    assert checker.call("A")[0] == 1 and checker.call("B")[0] == 1


def test_a_call_with_the_key_of_a_running_call_waits_for_its_reply(setup):
    """Two calls with one idempotency key, in two processes: the second looks its key up while
    the first runs, waits until the first commits, and then finds the first's reply."""
    first, second = Worker(setup), Worker(setup)
    for worker in (first, second):
        worker.ask("open")
        worker.ask("begin")
    assert first.ask("get K1") == "none"
    second.send("get K1")
    assert not second.ready(0.5), "the second call should wait for the first"
    first.ask("put K1 first-reply")
    first.ask("commit")
    assert second.read() == "first-reply"
    second.ask("commit")


def test_expired_replies_are_purged(setup):
    worker = Worker(setup)
    worker.ask("open")
    for key in ("K1", "K2"):
        worker.ask("begin")
        worker.ask(f"put {key} reply")
        worker.ask("commit")
    assert worker.ask("purge 1500") == "0"   # kept until 2000
    assert worker.ask("get K1") == "reply"
    assert worker.ask("purge 2500") == "2"
    assert worker.ask("get K1") == "none" and worker.ask("get K2") == "none"


@pytest.mark.postgresql
def test_a_commit_cut_off_from_the_database_is_in_doubt_until_its_reply_is_read(pg_setup,
                                                                                   postgres):
    """The connection breaks before COMMIT gets through: the commit answers "in doubt" (not
    "failed"), ESFH has connected again and ended the old session, and the call's stored reply
    (none here) tells that nothing committed."""
    worker = Worker(pg_setup)
    worker.ask("open")
    worker.ask("begin")
    assert worker.call("A") == (0, "00", 0)
    worker.ask("put K1 first-run")
    ended = postgres.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                          f"application_name LIKE 'esfh % {worker.process.pid}'",
                          dsn=pg_setup["store"])
    assert ended.strip() == "1"
    worker.send("commit")
    answer = worker.read()
    assert answer.startswith("error") and "(30600)" in answer and "broke during COMMIT" in answer
    assert worker.ask("get K1") == "none"          # the reply, like the update, is not there
    assert worker.call("A") == (0, "00", 0)        # on the new connection; committed at once
    assert worker.call("A") == (1, "00", 0)
