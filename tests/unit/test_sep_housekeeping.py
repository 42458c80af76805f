"""A SEP's housekeeping between batches: expired replies purged, the environment checkpointed
(SEP 1 only), each on its own interval; a checkpoint that fails is reported, not fatal,
unless the environment itself is broken."""

from esrt.isam import DB_RUNRECOVERY, EsfhError
from esrt.sep.worker import PURGE_INTERVAL, Transactions


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class RecordingEsfh:
    def __init__(self, failure=None):
        self.log = []
        self.failure = failure

    def reply_purge(self, now, limit):
        self.log.append("purge")
        return 0

    def checkpoint(self, remove_logs):
        self.log.append(f"checkpoint remove_logs={remove_logs}")
        if self.failure is not None:
            raise self.failure
        return 2


def test_checkpoints_come_every_interval_and_purges_every_minute():
    clock, esfh = Clock(), RecordingEsfh()
    transactions = Transactions(esfh, checkpoint_interval=30, monotonic=clock)
    transactions.between_batches()
    assert esfh.log == []
    for _ in range(4):
        clock.now += 30
        transactions.between_batches()
    assert esfh.log.count("checkpoint remove_logs=True") == 4
    assert esfh.log.count("purge") == 2 == int(120 // PURGE_INTERVAL)


def test_no_checkpoints_without_an_interval_and_kept_logs_are_kept():
    clock, esfh = Clock(), RecordingEsfh()
    transactions = Transactions(esfh, monotonic=clock)
    clock.now += 3600
    transactions.between_batches()
    assert esfh.log == ["purge"]
    kept = Transactions(esfh, checkpoint_interval=1, remove_logs=False, monotonic=clock)
    clock.now += 1
    kept.between_batches()
    assert esfh.log[-1] == "checkpoint remove_logs=False"


def test_a_failed_checkpoint_is_reported_and_tried_again(capsys):
    clock = Clock()
    esfh = RecordingEsfh(EsfhError("ESFH checkpoint failed (28): No space left on device", 28))
    transactions = Transactions(esfh, checkpoint_interval=5, monotonic=clock)
    clock.now += 5
    transactions.between_batches()
    assert not transactions.environment_lost
    assert "No space left on device; the log files it would have removed stay on the data " \
        "disk (tried again in 5 s)" in capsys.readouterr().err
    clock.now += 5
    transactions.between_batches()
    assert esfh.log.count("checkpoint remove_logs=True") == 2


def test_a_checkpoint_that_finds_the_environment_broken_gives_it_up():
    clock = Clock()
    esfh = RecordingEsfh(EsfhError("ESFH checkpoint failed: DB_RUNRECOVERY", DB_RUNRECOVERY))
    transactions = Transactions(esfh, checkpoint_interval=5, monotonic=clock)
    clock.now += 5
    transactions.between_batches()
    assert transactions.environment_lost
