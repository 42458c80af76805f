"""The region's console log (CASROOT/console.log), in Enterprise Server's line shape
(esrt.node.console, which mfds writes too).

At every start the previous console.log becomes console.bak (replacing the older one), so that
after a failover the new node shows the failed node's log as console.bak.
"""

import os
import sys
import time

from esrt.messages import format_message
from esrt.node.console import format_line


class ConsoleLog:
    """Append-only console log of one region; every line is flushed at once.

    Flushing each line costs a write() per message, which is fine for a console (messages are
    about life-cycle events, not requests) and means a crash never loses the last words.
    """

    def __init__(self, log_path, bak_path, server, pid=None, clock=time.time, echo=None):
        self.log_path = log_path
        self.bak_path = bak_path
        self.server = server
        self.pid = os.getpid() if pid is None else pid
        self._clock = clock
        self._echo = echo
        self._file = None
        # Why the last write failed (None: it did not): lines then go to stderr too.
        self._broken = None

    def open(self):
        """Rotate console.log to console.bak and start a new console.log."""
        os.makedirs(os.path.dirname(str(self.log_path)) or ".", exist_ok=True)
        if os.path.exists(self.log_path):
            os.replace(self.log_path, self.bak_path)
        self._file = open(self.log_path, "a", encoding="utf-8", errors="replace")
        return self

    def log(self, message_id, **fields):
        """Write message `message_id` from esrt.messages with its fields; return the text."""
        text = format_message(message_id, **fields)
        self.write_line(message_id, text)
        return text

    def write_line(self, message_id, text):
        """Write one line with an explicit text (e.g. a SEP's own output).

        A console that cannot be written (its disk is full) must not take the region down:
        the line goes to stderr (run/region.out) instead, and the file is reopened for the
        next line, so that the console resumes once there is space."""
        line = format_line(self._clock(), self.pid, self.server, message_id, text)
        if self._file is None and self._broken is not None:
            self._reopen()
        if self._file is not None:
            try:
                self._file.write(line + "\n")
                self._file.flush()
            except OSError as exc:
                self._write_failed(exc)
        if self._broken is not None:
            print(line, file=sys.stderr, flush=True)
        elif self._echo is not None:  # (stderr may be the echo's stream: the line once)
            self._echo(line)

    def _write_failed(self, exc):
        if self._broken is None:
            print(f"esrt: cannot write {self.log_path} ({exc.strerror or exc}); console lines "
                  "go here until it can be written again", file=sys.stderr, flush=True)
        self._broken = exc
        try:
            self._file.close()
        except OSError:
            pass  # what it still buffered is lost; the lines are on stderr
        self._file = None

    def _reopen(self):
        try:
            self._file = open(self.log_path, "a", encoding="utf-8", errors="replace")
            self._broken = None
        except OSError as exc:
            self._broken = exc

    def close(self):
        """Close the file; later messages are dropped (or only echoed)."""
        self._broken = None
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None
