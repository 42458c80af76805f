"""What a region's Supervisor reports, and to whom.

The supervisor reports to the one observer given to its constructor (SupervisorObserver).
The region gives it an Observers, which passes each report on to the dispatcher (a SEP is
free, none can serve), the metrics (restarts, transactions, recoveries) and the region itself
(status and process records); the region's constructor is the one place that wiring is done.
"""


class SupervisorObserver:
    """The reports of a Supervisor; each does nothing here, an observer overrides those it
    acts on."""

    def sep_idle(self, sep):
        """SEP slot `sep` is idle and can take calls."""

    def unavailable(self):
        """No call can run now (every SEP failed or is stopping, or the data environment cannot
        be recovered or is recovering for long): calls still waiting are to be answered."""

    def changed(self):
        """A SEP's life-cycle state changed (other than IDLE <-> BUSY), or recovery's did."""

    def processes_changed(self):
        """A SEP process appeared or went away."""

    def sep_restarted(self, sep):
        """SEP slot `sep` is starting a new process after its last one died."""

    def transaction(self, attempts, committed):
        """A SEP answered a call it ran in `attempts` transactions (deadlock re-runs
        included), the last of which `committed` or not."""

    def recovery_ended(self, ok):
        """A full recovery of the data environment ended (`ok`: it worked)."""


REPORTS = ("sep_idle", "unavailable", "changed", "processes_changed", "sep_restarted",
           "transaction", "recovery_ended")


class Observers(SupervisorObserver):
    """Passes every report on to each observer added, in the order they were added, that
    acts on it (overrides it, or was given it as an attribute before being added)."""

    def __init__(self, *observers):
        # Report -> the bound methods that act on it: some reports come once per call, and
        # most observers leave most reports alone.
        self._acting = {report: [] for report in REPORTS}
        for observer in observers:
            self.add(observer)

    def add(self, observer):
        for report, acting in self._acting.items():
            method = getattr(observer, report)
            if getattr(method, "__func__", None) is not getattr(SupervisorObserver, report):
                acting.append(method)
            # A report only one observer acts on goes straight to it (the instance attribute
            # hides the class's pass_on): some reports come once per call.
            if len(acting) == 1:
                setattr(self, report, acting[0])
            else:
                self.__dict__.pop(report, None)


def _passing_on(report):
    def pass_on(self, *args):
        for method in self._acting[report]:
            method(*args)
    pass_on.__name__ = report
    pass_on.__doc__ = getattr(SupervisorObserver, report).__doc__
    return pass_on


for _report in REPORTS:
    setattr(Observers, _report, _passing_on(_report))
