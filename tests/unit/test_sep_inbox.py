"""The SEP's request pipe: batches arrive in one read, cancels are seen while a call runs."""

import os

from esrt.sep.protocol import encode_frame
from esrt.sep.worker import Inbox


def call(request_id):
    return encode_frame({"id": request_id, "op": "call", "service": "srv01.CBLAPP01"}, b"{}")


def test_a_batch_arrives_whole_and_a_cancel_reaches_a_call_still_waiting_in_it():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as requests:
        inbox = Inbox(requests)
        os.write(write_end, call(1) + call(2) + call(3))
        assert inbox.wait()
        assert [header["id"] for header, _ in inbox.frames] == [1, 2, 3]
        assert inbox.next_call()[0]["id"] == 1
        # While call 1 runs, the caller of call 2 goes away.
        os.write(write_end, encode_frame({"id": 2, "op": "cancel"}))
        assert not inbox.cancelled(1)
        assert inbox.cancelled(2)
        assert [inbox.next_call()[0]["id"] for _ in range(2)] == [2, 3]
        assert inbox.next_call() is None
        # The region went away: nothing more to serve, and nobody would read a reply.
        os.close(write_end)
        assert not inbox.wait()
        assert inbox.cancelled(4)


def test_a_frame_split_across_writes_is_served_once_whole():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb", buffering=0) as requests:
        inbox = Inbox(requests)
        frame = call(9)
        os.write(write_end, frame[:7])
        assert not inbox.cancelled(9) and inbox.next_call() is None
        os.write(write_end, frame[7:])
        assert inbox.wait()
        assert inbox.next_call() == ({"id": 9, "op": "call", "service": "srv01.CBLAPP01"}, b"{}")
        os.close(write_end)
