"""A SEP's housekeeping between batches: expired replies purged, the environment checkpointed
(SEP 1 only), each on its own interval; a checkpoint that fails is reported, not fatal,
unless the environment itself is broken."""

from esrt.isam import DB_RUNRECOVERY, EsfhError
from esrt.sep.worker import (CHECKPOINT_KBYTES, LOG_CHECK_INTERVAL, PURGE_BATCH, PURGE_BUDGET,
                              PURGE_INTERVAL, Transactions)


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

    def checkpoint(self, remove_logs, kbytes):
        if kbytes:
            self.log.append(f"checkpoint if {kbytes} KB")
            return 0
        self.log.append(f"checkpoint remove_logs={remove_logs}")
        if self.failure is not None:
            raise self.failure
        return 2


def test_checkpoints_come_every_interval_or_log_file_and_purges_every_few_seconds():
    clock, esfh = Clock(), RecordingEsfh()
    transactions = Transactions(esfh, checkpoint_interval=30, monotonic=clock)
    transactions.between_batches()
    # Not due yet: only one if a log file's worth was written since the last checkpoint.
    assert esfh.log == [f"checkpoint if {CHECKPOINT_KBYTES} KB"]
    for _ in range(4):
        clock.now += 30
        transactions.between_batches()
    assert esfh.log.count("checkpoint remove_logs=True") == 4
    # One purge per between_batches here: each came more than PURGE_INTERVAL after the last.
    assert esfh.log.count("purge") == 4 and PURGE_INTERVAL < 30


def test_the_log_is_measured_at_most_every_log_check_interval_however_many_batches_come():
    clock, esfh = Clock(), RecordingEsfh()
    transactions = Transactions(esfh, checkpoint_interval=30, monotonic=clock)
    for _ in range(5):  # five batches in the same instant: one look at the log
        transactions.between_batches()
    assert esfh.log == [f"checkpoint if {CHECKPOINT_KBYTES} KB"]
    clock.now += LOG_CHECK_INTERVAL
    transactions.between_batches()
    transactions.between_batches()
    assert esfh.log == [f"checkpoint if {CHECKPOINT_KBYTES} KB"] * 2


class BacklogEsfh(RecordingEsfh):
    """A store with `backlog` expired replies."""

    def __init__(self, backlog, clock):
        super().__init__()
        self.backlog = backlog
        self.clock = clock

    def reply_purge(self, now, limit):
        deleted = min(limit, self.backlog)
        self.backlog -= deleted
        self.clock.now += 0.001
        return deleted


def test_a_purge_works_through_a_backlog_within_its_time_budget():
    clock = Clock()
    esfh = BacklogEsfh(PURGE_BATCH * 100, clock)
    transactions = Transactions(esfh, monotonic=clock)
    # About PURGE_BUDGET's worth of batches, not the whole backlog.
    batches = PURGE_BUDGET / 0.001
    assert PURGE_BATCH * (batches - 2) <= transactions.purge() <= PURGE_BATCH * (batches + 2)
    small = BacklogEsfh(PURGE_BATCH + 10, clock)
    assert Transactions(small, monotonic=clock).purge() == PURGE_BATCH + 10


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
        "disk (tried again after the next calls)" in capsys.readouterr().err
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
