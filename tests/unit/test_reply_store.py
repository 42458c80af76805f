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
