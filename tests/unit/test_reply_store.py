"""Replies stored with their transaction: visible only once committed, expire, are purged."""

import errno

from esrt.cobol.esfh_build import esfh_library


def run_in_child(home, code):
    """Run `code` with `e` = an Esfh on a fresh environment in `home`, in a child process:
    ESFH allows one environment handle per process."""
    import subprocess
    import sys
    script = ("import sys, time\nfrom esrt.isam import Esfh\n"
              f"e = Esfh({str(esfh_library())!r})\ne.recover({str(home)!r})\n"
              f"e.env_open({str(home)!r}, 'sync', 4)\n" + code)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_a_reply_exists_only_if_its_transaction_committed(tmp_path):
    out = run_in_child(tmp_path, """
e.begin(); e.reply_put(b"r:1", b"kept", time.time() + 60); e.commit()
e.begin(); e.reply_put(b"r:2", b"lost", time.time() + 60); e.abort()
print(e.reply_get(b"r:1", time.time()), e.reply_get(b"r:2", time.time()))
""")
    assert out == ["b'kept'", "None"]


def test_expired_replies_are_not_returned_and_are_purged(tmp_path):
    out = run_in_child(tmp_path, """
now = time.time()
e.begin(); e.reply_put(b"old", b"a", now - 1); e.reply_put(b"new", b"b", now + 60); e.commit()
print(e.reply_get(b"old", now), e.reply_purge(now), e.reply_get(b"new", now))
""")
    assert out == ["None", "1", "b'b'"]


def test_a_negative_length_is_refused_not_used_to_size_a_buffer(tmp_path):
    out = run_in_child(tmp_path, """
e.begin()
code = e.lib.esfh_reply_put(b"r:1", 3, b"reply", -1, int(time.time()) + 60)
print(code, e.reply_get(b"r:1", time.time()))
e.abort()
""")
    assert out == [str(errno.EINVAL), "None"]


def test_purges_go_on_where_the_last_one_stopped_so_every_expired_reply_goes(tmp_path):
    # 30 live replies sort first ("a..."), 30 expired ones after them ("z..."). Purges that
    # look at 10 entries each used to start from the first key every time: they saw only live
    # replies, and the expired ones stayed for ever.
    out = run_in_child(tmp_path, """
now = time.time()
e.begin()
for n in range(30):
    e.reply_put(b"a%02d" % n, b"live", now + 600)
    e.reply_put(b"z%02d" % n, b"expired", now - 1)
e.commit()
print(sum(e.reply_purge(now, 10) for _ in range(6)))
print(sum(e.reply_get(b"a%02d" % n, now) == b"live" for n in range(30)))
""")
    assert out == ["30", "30"]


def test_a_recovery_that_dies_of_sigbus_fails_without_taking_the_region_down(tmp_path):
    # Recovery rebuilds memory-mapped region files: on a full disk, touching one can kill the
    # process with SIGBUS. The region recovers in a child process, so that is a failed
    # recovery (tried again later), not a dead region. Here the child is a stand-in that dies.
    import subprocess
    import sys
    script = f"""
from twisted.internet import task
from esrt.region.txstore import ReplyStore

class Console:
    def log(self, message_id, **fields):
        print(message_id, fields.get("problem", ""))

# (Without the sanitizers' preload of make test-sanitized: it would catch the signal.)
dying = ["env", "-u", "LD_PRELOAD", "{sys.executable}", "-c",
         "import os, signal; os.kill(os.getpid(), signal.SIGBUS)"]

async def main(reactor):
    store = ReplyStore.load({str(tmp_path)!r}, "sync", 4, Console())
    print("loaded needs_recovery", store.needs_recovery)
    ReplyStore.recovery_command = dying
    print("recover", await store.recover(reactor), store.problem)
    ReplyStore.recovery_command = None
    print("recover", await store.recover(reactor), store.problem)

task.react(lambda reactor: __import__("twisted.internet.defer").internet.defer.ensureDeferred(
    main(reactor)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "loaded needs_recovery True"
    assert lines[1].startswith("recover False recovery failed: ESFH: the recovery of")
    assert "died of SIGBUS: its data disk is full or failing" in lines[1]
    assert lines[-1] == "recover True None"
    assert [line.split()[0] for line in lines[2:-1]] == ["ESDB0001I", "ESDB0003I"]


def test_a_damaged_stored_reply_makes_the_outcome_unknown_not_not_committed(tmp_path):
    """Taken for "not committed", the call would run a second time."""
    import pytest

    from esrt.region.txstore import OutcomeUnknown, ReplyStore

    class Damaged:
        def reply_get(self, key, now):
            return b"\x01\x00"

    class Console:
        def __init__(self):
            self.lines = []

        def log(self, message_id, **fields):
            self.lines.append((message_id, fields))

    console = Console()
    store = ReplyStore(Damaged(), tmp_path, console)
    with pytest.raises(OutcomeUnknown, match="damaged"):
        store.committed("i:k1")
    assert console.lines[0][0] == "ESDB0005W"


def test_the_recovery_process_is_known_while_it_runs_so_that_it_can_be_killed(tmp_path):
    """A recovery stuck on a frozen disk must not outlive a forced stop: its pid goes into
    run/processes.json (through `started`), and kill_recovery ends it."""
    import subprocess
    import sys
    script = f"""
import os
from twisted.internet import defer, task
from esrt.region.txstore import ReplyStore

class Console:
    def log(self, message_id, **fields):
        pass

ReplyStore.recovery_command = ["env", "-u", "LD_PRELOAD", "{sys.executable}", "-c",
                               "import time; time.sleep(60)"]

async def main(reactor):
    store = ReplyStore.load({str(tmp_path)!r}, "sync", 4, Console())
    pids = []
    def started(pid):
        pids.append(pid)
        assert store.recovery_pid == pid
        os.kill(pid, 0)   # alive
        reactor.callLater(0.2, store.kill_recovery)
    ok = await store.recover(reactor, started)
    print("recovered", ok, len(pids), store.recovery_pid, store.problem)

task.react(lambda reactor: defer.ensureDeferred(main(reactor)))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    # Killed, tried once more without the old region files (a death by signal), killed again.
    assert result.stdout.startswith("recovered False 2 None recovery failed:"), result.stdout
    assert "died of SIGKILL" in result.stdout


def test_casstop_force_acts_on_a_recorded_recovery_process_too(tmp_path):
    import json

    from esrt.node.runs import recorded_pids
    (tmp_path / "processes.json").write_text(json.dumps(
        {"region": 100, "seps": {"1": 101}, "recovery": 102, "started": {}}))
    assert recorded_pids(tmp_path)[1] == [100, 101, 102]
