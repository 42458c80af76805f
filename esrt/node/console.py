"""A region's console log as lines: their shape, and reading the end of the file.

    <yymmdd> <hhmmssxx> [<pid> <SERVER>] <ID> <text> <hh:mm:ss>

The region writes its own lines (esrt.region.console), mfds writes its admin actions into the
same file (ESAD0001I) and shows its end in the admin UI, and casstart shows its last lines
when a start fails: all of them use this module.
"""

import os
import time

# Only the end of a huge console log is read: enough for any tail or search in a browser.
TAIL_READ_BYTES = 4 * 1024 * 1024


def format_line(when, pid, server, message_id, text):
    """Return one console line (without newline) for a message logged at epoch time `when`."""
    # A COBOL DISPLAY or an admin's detail may contain anything; a newline inside would forge
    # a second line.
    text = text.replace("\r", " ").replace("\n", " ")
    local = time.localtime(when)
    hundredths = int((when - int(when)) * 100)
    return (f"{time.strftime('%y%m%d', local)} {time.strftime('%H%M%S', local)}{hundredths:02d} "
            f"[{pid} {server}] {message_id} {text} {time.strftime('%H:%M:%S', local)}")


def tail_lines(path, count=None, search=None, max_bytes=TAIL_READ_BYTES):
    """(the last `count` lines of file `path`, how many lines matched in all).

    With `search`, only the lines containing it (in any case) count. Only the last `max_bytes`
    are read. Raises OSError (FileNotFoundError when there is no such file).
    """
    with open(path, "rb") as log:
        size = log.seek(0, os.SEEK_END)
        log.seek(max(0, size - max_bytes))
        text = log.read().decode("utf-8", "replace")
    found = text.splitlines()
    if size > max_bytes:
        found = found[1:]  # the first one is probably cut
    if search:
        needle = search.lower()
        found = [line for line in found if needle in line.lower()]
    return (found[-count:] if count else found), len(found)
