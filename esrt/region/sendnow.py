"""Writing to a Twisted transport at once, instead of on the reactor's next turn.

Twisted's transports queue every write and send it when the reactor next polls: one more
trip round the loop and two epoll changes (start writing, stop writing) per reply. For a
region answering thousands of small calls a second that is a large share of its work, so
replies and SEP requests are written straight away when nothing is queued before them; what
the kernel does not take at once (a full socket or pipe buffer) is handed to the transport,
which then sends it in order as usual, and so do errors, which the transport reports itself.
"""

import os

from twisted.internet import tcp


def nothing_unsent(descriptor):
    """Whether a Twisted file descriptor (TCP connection, process pipe) has no bytes queued."""
    return (len(descriptor.dataBuffer) == descriptor.offset and not descriptor._tempDataLen
            and not descriptor.disconnecting)


def send_now(transport, data):
    """Send `data` on a TCP transport: at once if nothing is queued, the rest through it.

    Only a plain TCP connection is written to directly. A TLS connection passes attribute
    lookups through to the socket under it (Twisted's ProtocolWrapper), so asking it for its
    socket would get one that sends the bytes unencrypted.
    """
    if (isinstance(transport, tcp.Connection) and transport.connected
            and not transport.TLS and nothing_unsent(transport)):
        try:
            data = data[transport.socket.send(data):]
        except OSError:  # would block, or broken: the transport takes over either way
            pass
        if not data:
            return
    transport.write(data)


def write_child_now(process, fd, data):
    """Write `data` to a child process's pipe `fd`: at once if nothing is queued there."""
    writer = process.pipes.get(fd)
    if writer is not None and nothing_unsent(writer):
        try:
            data = data[os.write(writer.fileno(), data):]
        except OSError:
            pass
        if not data:
            return
    process.writeToChild(fd, data)
