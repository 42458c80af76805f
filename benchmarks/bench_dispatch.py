"""Region <-> SEP dispatch: how much each way of carrying a call to a SEP process costs.

Issue 5 item 3. The region (a Twisted reactor) hands each call to an idle SEP and waits for its
reply; a SEP serves one call at a time. This measures that hop alone, with SEPs that answer at
once, for the ways the hop could be built:

    inline      no hop: the "SEP" is a function in the region (the ceiling; not crash-safe)
    twisted-pipes  a pipe each way, length-prefixed frames, written through Twisted's process
                transport (what the region used to do)
    pipes       the same pipes, written with os.write at once (what the region does)
    socketpair  one AF_UNIX stream socket per SEP, the same frames
    seqpacket   one AF_UNIX SOCK_SEQPACKET socket per SEP: the kernel keeps message boundaries
    shm         a shared-memory mailbox per SEP (one slot each way, since a SEP runs one call at a
                time) with an eventfd each way to wake the other side

The messages are the region's real frames (JSON header + a CBLAPP01-sized JSON body), encoded
and decoded with esrt.sep.protocol, so the costs that stay the same whatever the transport are
counted too. Usage: python benchmarks/bench_dispatch.py [--seconds S] [--seps N] [--json FILE]
"""

import argparse
import json
import subprocess
import mmap
import os
import socket
import struct
import sys
import time

from twisted.internet import protocol as tx_protocol, reactor

from esrt.sep import protocol as frames

HEADER = {"id": 1, "op": "call", "service": "srv01.CBLAPP01", "key": "r:" + "0" * 32,
          "idempotent": False, "ttl": 600}
BODY = b'{"lk_datetime":"","lk_pgmname":"","lk_hostname":"","lk_counter":0}'
REPLY_BODY = (b'{"lk_datetime":"26/11/25 23:10:00.00","lk_pgmname":"CBLAPP01",'
              b'"lk_hostname":"node1","lk_counter":1234}')
SHM_SIZE = 64 * 1024
SLOT = struct.Struct("=I")


def reply_frame(header):
    return frames.encode_frame({"id": header["id"], "status": 200, "rc": 0, "ms": 0.01},
                               REPLY_BODY)


# --- the SEP side: a child process running one of these loops ------------------------------------

def sep_stream(read_fd, write_fd):
    """Blocking loop over a byte stream (pipes or a stream socket), as the real SEP reads fd 3."""
    reader = os.fdopen(read_fd, "rb", buffering=0)
    while True:
        frame = frames.read_frame(reader)
        if frame is None:
            return
        data = reply_frame(frame[0])
        while data:
            data = data[os.write(write_fd, data):]


def sep_seqpacket(fd):
    sock = socket.socket(fileno=fd)
    while True:
        message = sock.recv(SHM_SIZE)
        if not message:
            return
        header, _ = frames._split(message)
        sock.send(reply_frame(header)[4:])


def sep_shm(shm_fd, to_sep_fd, to_region_fd):
    area = mmap.mmap(shm_fd, SHM_SIZE)
    half = SHM_SIZE // 2
    while True:
        try:
            os.eventfd_read(to_sep_fd)
        except OSError:
            return
        (size,) = SLOT.unpack_from(area, 0)
        if size == 0:
            return
        header, _ = frames._split(area[4:4 + size])
        reply = reply_frame(header)[4:]
        SLOT.pack_into(area, half, len(reply))
        area[half + 4:half + 4 + len(reply)] = reply
        os.eventfd_write(to_region_fd, 1)


def fork_sep(target, *args, child_ends=()):
    """Fork a SEP running target(*args); `child_ends` are its fds, which the region closes.

    The child closes every other descriptor, so it never holds the region's ends open (it
    would then never see end of file when the region closes them).
    """
    pid = os.fork()
    if pid == 0:
        try:
            os.closerange(3, min(fd for fd in child_ends))
            for fd in range(min(child_ends), 1024):
                if fd not in child_ends:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            target(*args)
        finally:
            os._exit(0)
    for fd in child_ends:
        os.close(fd)
    return pid


# --- the region side: one channel per SEP, driven by the reactor ---------------------------------

class Channel:
    """One SEP as the region sees it: send(frame bytes), and on_reply(header, body) when it
    answers."""

    on_reply = None

    def close(self):
        pass


class InlineChannel(Channel):
    def send(self, data):
        header, body = frames._split(data[4:])
        reply = reply_frame(header)
        reactor.callLater(0, self.on_reply, *frames._split(reply[4:]))


class _StreamProtocol(tx_protocol.Protocol):
    def __init__(self, channel):
        self.channel = channel
        self.decoder = frames.FrameDecoder()

    def dataReceived(self, data):
        for header, body in self.decoder.feed(data):
            self.channel.on_reply(header, body)


class _Reader:
    """A minimal IReadDescriptor: calls `read()` when `fd` is readable."""

    def __init__(self, fd, read):
        self._fd, self.doRead = fd, read

    def fileno(self):
        return self._fd

    def connectionLost(self, reason):
        pass

    def logPrefix(self):
        return "bench"


class _SEPProcess(tx_protocol.ProcessProtocol):
    def __init__(self, channel):
        self.channel = channel
        self.decoder = frames.FrameDecoder()

    def childDataReceived(self, fd, data):
        for header, body in self.decoder.feed(data):
            self.channel.on_reply(header, body)


class TwistedPipeChannel(Channel):
    """Today's region: spawnProcess with fds 3 and 4, writes through the process transport."""

    def __init__(self):
        argv = [sys.executable, __file__, "--sep-process"]
        self.transport = reactor.spawnProcess(
            _SEPProcess(self), argv[0], argv, env=os.environ,
            childFDs={0: "w", 1: 1, 2: 2, frames.REQUEST_FD: "w", frames.REPLY_FD: "r"})
        self.pid = self.transport.pid

    def send(self, data):
        self.transport.writeToChild(frames.REQUEST_FD, data)

    def close(self):
        # The reactor has stopped: close the request pipe by hand so the SEP sees end of file.
        os.close(self.transport.pipes[frames.REQUEST_FD].fileno())


class PipeChannel(Channel):
    """The same pipes, written with os.write at once instead of through the reactor."""

    def __init__(self):
        to_sep_r, self.to_sep = os.pipe()
        self.from_sep, from_sep_w = os.pipe()
        self.pid = fork_sep(sep_stream, to_sep_r, from_sep_w, child_ends=(to_sep_r, from_sep_w))
        self.decoder = frames.FrameDecoder()
        self.reader = _Reader(self.from_sep, self._readable)
        reactor.addReader(self.reader)

    def _readable(self):
        for header, body in self.decoder.feed(os.read(self.from_sep, 65536)):
            self.on_reply(header, body)

    def send(self, data):
        os.write(self.to_sep, data)

    def close(self):
        reactor.removeReader(self.reader)
        os.close(self.to_sep)
        os.close(self.from_sep)


class SocketpairChannel(Channel):
    def __init__(self):
        region_end, sep_end = socket.socketpair()
        sep_fd = sep_end.detach()
        sep_write_fd = os.dup(sep_fd)
        self.pid = fork_sep(sep_stream, sep_fd, sep_write_fd, child_ends=(sep_fd, sep_write_fd))
        self.protocol = None
        reactor.adoptStreamConnection(region_end.fileno(), socket.AF_UNIX, _Factory(self))
        # adoptStreamConnection works on a duplicate: this end is closed once adopted.
        region_end.close()

    def send(self, data):
        self.protocol.transport.write(data)

    def close(self):
        # The reactor is no longer running, so loseConnection would never get to close it.
        self.protocol.transport.socket.shutdown(socket.SHUT_RDWR)


class _Factory(tx_protocol.Factory):
    def __init__(self, channel):
        self.channel = channel

    def buildProtocol(self, addr):
        self.channel.protocol = _StreamProtocol(self.channel)
        return self.channel.protocol


class SeqpacketChannel(Channel):
    def __init__(self):
        self.sock, sep_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.setblocking(False)
        sep_fd = sep_end.detach()
        self.pid = fork_sep(sep_seqpacket, sep_fd, child_ends=(sep_fd,))
        self.reader = _Reader(self.sock.fileno(), self._readable)
        reactor.addReader(self.reader)

    def _readable(self):
        message = self.sock.recv(SHM_SIZE)
        header, body = frames._split(message)
        self.on_reply(header, body)

    def send(self, data):
        self.sock.send(data[4:])

    def close(self):
        reactor.removeReader(self.reader)
        self.sock.close()


class ShmChannel(Channel):
    def __init__(self):
        shm_fd = os.memfd_create("esrt-dispatch-bench")
        os.ftruncate(shm_fd, SHM_SIZE)
        self.area = mmap.mmap(shm_fd, SHM_SIZE)
        to_sep = os.eventfd(0)
        self.to_region = os.eventfd(0, os.EFD_NONBLOCK)
        # The SEP's own copies: eventfds are not pipes, so closing the region's copy of
        # `to_sep` would not wake it; the region ends the SEP by writing a zero-length slot.
        self.to_sep = os.dup(to_sep)
        sep_to_region = os.dup(self.to_region)
        self.pid = fork_sep(sep_shm, shm_fd, to_sep, sep_to_region,
                            child_ends=(shm_fd, to_sep, sep_to_region))
        self.reader = _Reader(self.to_region, self._readable)
        reactor.addReader(self.reader)

    def _readable(self):
        try:
            os.eventfd_read(self.to_region)
        except BlockingIOError:
            return
        half = SHM_SIZE // 2
        (size,) = SLOT.unpack_from(self.area, half)
        header, body = frames._split(self.area[half + 4:half + 4 + size])
        self.on_reply(header, body)

    def send(self, data):
        payload = data[4:]
        SLOT.pack_into(self.area, 0, len(payload))
        self.area[4:4 + len(payload)] = payload
        os.eventfd_write(self.to_sep, 1)

    def close(self):
        reactor.removeReader(self.reader)
        SLOT.pack_into(self.area, 0, 0)
        os.eventfd_write(self.to_sep, 1)
        os.close(self.to_sep)
        os.close(self.to_region)


CHANNELS = {"inline": InlineChannel, "twisted-pipes": TwistedPipeChannel, "pipes": PipeChannel,
            "socketpair": SocketpairChannel,
            "seqpacket": SeqpacketChannel, "shm": ShmChannel}


def measure(kind, seps, seconds):
    """Calls per second and median round trip (µs) with `seps` SEPs, one call each at a time."""
    channels = [CHANNELS[kind]() for _ in range(seps)]
    latencies = []
    state = {"id": 0, "done": 0, "measuring": False}

    def send(channel):
        state["id"] += 1
        channel.sent_at = time.perf_counter()
        channel.send(frames.encode_frame(dict(HEADER, id=state["id"]), BODY))

    def make_on_reply(channel):
        def on_reply(header, body):
            json.loads(body)
            if state["measuring"]:
                state["done"] += 1
                latencies.append(time.perf_counter() - channel.sent_at)
            send(channel)
        return on_reply

    def start_measuring():
        state["measuring"] = True
        state["t0"] = time.perf_counter()
        reactor.callLater(seconds, stop_measuring)

    def stop_measuring():
        state["elapsed"] = time.perf_counter() - state["t0"]
        state["measuring"] = False
        reactor.crash()

    for channel in channels:
        channel.on_reply = make_on_reply(channel)
        reactor.callLater(0.05, send, channel)
    reactor.callLater(0.5, start_measuring)  # warm-up: children started, caches hot
    reactor.run(installSignalHandlers=False)
    for channel in channels:
        channel.close()
        if hasattr(channel, "pid"):
            try:
                os.waitpid(channel.pid, 0)
            except ChildProcessError:  # reaped by the reactor's SIGCHLD handling
                pass
    latencies.sort()
    return {"transport": kind, "seps": seps, "calls_per_s": state["done"] / state["elapsed"],
            "p50_us": latencies[len(latencies) // 2] * 1e6 if latencies else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--seps", type=int, default=2)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--only", choices=CHANNELS, help=argparse.SUPPRESS)
    parser.add_argument("--sep-process", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.sep_process:
        sep_stream(frames.REQUEST_FD, frames.REPLY_FD)
        return 0
    if args.only:
        # A reactor runs once per process: each transport is measured in a fresh one.
        print(json.dumps(measure(args.only, args.seps, args.seconds)))
        return 0
    results = []
    print(f"{'transport':<12} {'calls/s':>10} {'p50 µs':>8}   "
          f"({args.seps} SEPs, {args.seconds} s each)")
    for kind in CHANNELS:
        output = subprocess.run(
            [sys.executable, __file__, "--only", kind, "--seps", str(args.seps),
             "--seconds", str(args.seconds)], capture_output=True, text=True, check=True,
            timeout=60 + args.seconds).stdout
        result = json.loads(output.strip().splitlines()[-1])
        results.append(result)
        print(f"{kind:<12} {result['calls_per_s']:>10,.0f} {result['p50_us']:>8.1f}")
    pipes = next(r for r in results if r["transport"] == "pipes")["calls_per_s"]
    for result in results:
        result["vs_pipes"] = result["calls_per_s"] / pipes
    print("vs pipes: " + ", ".join(f"{r['transport']} {r['vs_pipes']:.2f}x" for r in results))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as out:
            json.dump(results, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
