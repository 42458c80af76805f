"""The region process: `python -m esrt.region NAME [--home DIR] [--definition FILE.json]`.

One Twisted process per server: it reads the server definition (from a file or from mfds),
writes its pid files, rotates the console log, starts the SEPs (supervisor) and the listeners,
and keeps run/status.json and mfds informed until SIGTERM/SIGINT stops it in order.
"""

import argparse
import atexit
import os
import resource
import signal
import sys
import time

from twisted.internet import defer

from esrt.home import Home, write_json_atomic
from esrt.node.audit import audit
from esrt.node.definitions import RegionFileError, read_region_file, server_definition
from esrt.node.mfds_client import MfdsError, MfdsUnavailable, read_node_token
from esrt.node.runs import HISTORY_FILE
from esrt.node.sdnotify import notify, stderr_is_journal, take_socket
from esrt.paths import RegionPaths, program_environment
from esrt.procs import process_alive, process_start_time
from esrt.region.console import ConsoleLog
from esrt.region.dispatcher import Dispatcher
from esrt.region.admission import Admission
from esrt.region.callers import CallerDirectory, ListenerGuard
from esrt.region.history import History
from esrt.region.http import Listener, ServicesResource
from esrt.region.observer import Observers, SupervisorObserver
from esrt.region.httpserver import ServicesFactory
from esrt.region.membership import Membership
from esrt.region.metrics import RegionMetrics
from esrt.region.services import ServiceTable
from esrt.region.status import StatusReporter, iso_time, server_status
from esrt.region.supervisor import Supervisor
from esrt.region.txstore import ReplyStore
from esrt.region.wire_listener import WireFactory
from esrt.settings import SettingError, validate_server
from esrt.states import ExitCode, ListenerStatus, ServerStatus


class RegionError(Exception):
    """The region cannot start; `exit_code` says how it should exit."""

    def __init__(self, message, exit_code=ExitCode.BOOT_FAILED):
        super().__init__(message)
        self.exit_code = exit_code


def load_definition(name, home, definition_file=None):
    """Return (clean definition, where it came from) or raise RegionError.

    `definition_file` is a region file (casstart writes one); without it the definition comes
    from the node's mfds.
    """
    if definition_file:
        try:
            definition = read_region_file(definition_file)
        except RegionFileError as exc:
            raise RegionError(f"{name}: {exc}") from None
        source = definition_file
    else:
        try:
            data = server_definition(name, home)
        except MfdsUnavailable as exc:
            raise RegionError(f"{name}: cannot retrieve the configuration from mfds: {exc}; "
                              "start mfds (`esrt mfds`) or pass --definition FILE.json") from None
        except MfdsError as exc:
            raise RegionError(f"{name}: mfds refused the configuration request: {exc}") from None
        source = "mfds"
        try:
            definition = validate_server(data)
        except SettingError as exc:
            raise RegionError(f"{name}: the server definition from mfds is invalid: {exc}; "
                              "correct it and start again") from None
    if definition["name"] != name:
        raise RegionError(f"{name}: the definition from {source} is for server "
                          f"{definition['name']!r}; start that name or use the right file")
    for listener in definition["listeners"]:
        if listener["conversation"] not in ("web-services", "esrt"):
            raise RegionError(
                f"{name}: listener \"{listener['name']}\" has conversation type "
                f"{listener['conversation']!r}, which this version of esrt cannot serve; "
                "use conversation type web-services or esrt")
    return definition, source


def claim_pid_file(paths, name):
    """Write region.pid; return the pid of a stale file taken over (or None).

    Refuses (RegionError) when the file names another live process.
    """
    stale = None
    try:
        old = int(paths.pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        old = None
    if old and old != os.getpid():
        if process_alive(old):
            raise RegionError(f"{name} is already running (pid {old}, {paths.pid_file}); stop it "
                              f"with `esrt casstop -r {name}` first", ExitCode.ERROR)
        stale = old
    paths.pid_file.write_text(f"{os.getpid()}\n")
    return stale


class Region(SupervisorObserver):
    """Everything one running region holds, wired together on one reactor."""

    # Seconds that requests in flight may take to finish at shutdown before SEPs are stopped.
    grace = 10.0

    def __init__(self, reactor, definition, paths, console, sep_command=None, mfds_url=None,
                 environ=None, store=None, mfds_token=None, mfds_cert=None, home=None):
        self.reactor = reactor
        self.definition = definition
        self.name = definition["name"]
        self.paths = paths
        self.console = console
        self.pid = os.getpid()
        self.started = time.time()
        self.exit_code = ExitCode.OK
        self.message = "starting"
        self._explicit = ServerStatus.STARTING
        self._stopping = None
        self.services = ServiceTable(paths.deploy, warn=lambda package, problem: console.log(
            "ESDP0002W", package=package, problem=problem))
        if environ is None:
            environ = program_environment(definition, paths)
        self.store = store
        # A standby region runs its listeners (waiting for their address) but neither opens
        # the data environment nor starts SEPs until activate(): the environment lives on a
        # shared disk that only the active node may hold.
        self.standby = bool(definition.get("standby"))
        self.active = not self.standby
        # Standing down from active to standby (deactivate), and the Deferred of that.
        self._standing_down = False
        self._switching = None
        supervisor_reports = Observers()
        self.supervisor = Supervisor(reactor, definition, paths, console, environ, sep_command,
                                     store=store, observer=supervisor_reports)
        # Prometheus metrics (GET /metrics) and the per-service statistics of the status.
        self.metrics = RegionMetrics(self.name)
        self.metrics.watch(self.supervisor)
        self.metrics.watch_region(lambda: self.active and not self._standing_down)
        self.dispatcher = Dispatcher(reactor, self.supervisor,
                                     idempotency_ttl=definition["idempotency_ttl"],
                                     metrics=self.metrics)
        # Who hears what of the supervisor: the dispatcher (a SEP is free, none can serve), the
        # metrics (restarts, transactions, recoveries), this region (status, process record).
        for observer in (self.dispatcher, self.metrics, self):
            supervisor_reports.add(observer)
        # The graphs of Monitor & Control: the last hour's figures, read by mfds from run/.
        self.history = History(reactor, self.metrics, self.dispatcher, self.supervisor,
                               paths.run / HISTORY_FILE,
                               interval=definition.get("history_interval", 5),
                               on_problem=lambda problem: console.log(
                                   "ESCS5007E", what="the graphs' history", problem=problem))
        self._standing_by(not self.active)
        def report_error(what, problem):
            console.log("ESCS5007E", what=what, problem=problem)

        # Who may call: the node's accounts, tokens and rules, kept up to date from mfds.
        self.home = home
        self.callers = CallerDirectory(
            reactor, paths.run, mfds_url, mfds_token, mfds_cert,
            on_reach=lambda ok, problem: console.log("ESCS5023I") if ok else console.log(
                "ESCS5022W", problem=problem))
        self._denial_second, self._denials_written, self._denials_dropped = 0, 0, 0
        # Every listener's calls come in through this one door.
        self.admission = Admission(self.name, self.services, self.dispatcher,
                                   definition["max_body"], metrics=self.metrics,
                                   callers=self.callers, on_denied=self._denied)
        root = ServicesResource(self.admission, self.health, report_error)
        # A factory per listener: each has its own authentication and exposure settings.
        self.factories = []
        self.listeners = []
        for config in definition["listeners"]:
            guard = ListenerGuard(config, self.callers)
            if config["conversation"] == "esrt":
                factory = WireFactory(self.admission, reactor, report_error, guard, config)
            else:
                factory = ServicesFactory(root, definition["max_body"], reactor, guard, config)
            self.factories.append(factory)
            self.listeners.append(Listener(reactor, config, factory, self.name, console,
                                           self._changed))
        self.reporter = StatusReporter(reactor, paths.status_file, self.name, self.status_document,
                                       mfds_url, token=mfds_token, mfds_cert=mfds_cert)
        # Regions sharing a PostgreSQL store know each other by their heartbeats there.
        self.membership = None
        if definition.get("store"):
            self.membership = Membership(
                reactor, definition["store"], self.name,
                home.root if home is not None else paths.run, self._member_now, console,
                self.reporter.changed)

    # Denials written to the console and audit logs per second at most; a flood beyond that
    # is counted (and still in the metrics) but not written line by line.
    denials_per_second = 20

    def _denied(self, conversation, caller, service, status, reason):
        """A call refused for who made it: console log, audit log (the metric is counted by
        Admission)."""
        second = int(time.monotonic())
        if second != self._denial_second:
            if self._denials_dropped:
                self.console.log("ESCS5021W", count=self._denials_dropped,
                                 limit=self.denials_per_second)
            self._denial_second, self._denials_written, self._denials_dropped = second, 0, 0
        if self._denials_written >= self.denials_per_second:
            if not self._denials_dropped:
                # Said when the next second's first denial comes, or in a second anyway.
                self.reactor.callLater(1.0, self._denied_flush, second)
            self._denials_dropped += 1
            return
        self._denials_written += 1
        who = caller.name if caller.known else "an unknown caller"
        self.console.log("ESCS5020W", conversation=conversation, service=service, caller=who,
                         status=status, reason=reason)
        if self.home is not None:
            try:
                audit(self.home, caller.name or "unknown", "call", f"{self.name}/{service}",
                      "denied", f"{status}: {reason}")
            except OSError as exc:
                self.console.log("ESCS5007E", what="the audit log",
                                 problem=f"cannot be written: {exc}")

    def _denied_flush(self, second):
        if self._denial_second == second and self._denials_dropped:
            self.console.log("ESCS5021W", count=self._denials_dropped,
                             limit=self.denials_per_second)
            self._denials_dropped = 0

    # -- start -----------------------------------------------------------------------------

    def start(self):
        """Start services, SEPs and listeners; on a bind failure, fail and stop."""
        try:
            self._start()
        except Exception as exc:  # noqa: BLE001 - a bug here must fail the region, not hang it
            self.fail(f"internal error during start: {type(exc).__name__}: {exc}")

    def _start(self):
        self.console.log("ESCD0102I", pid=self.pid)
        self.write_processes()
        self.reporter.start()
        self.history.start()
        if self.membership is not None:
            self.membership.start()
        if any(factory.guard.checks for factory in self.factories):
            # Only a region that checks its callers fetches (and keeps) the accounts.
            self.callers.start()
        if self.active:
            self._start_serving()
        else:
            self.console.log("ESCD0110I", server=self.name)
        self.console.log("ESCS5003I")
        for listener in self.listeners:
            if not listener.start():
                self.fail(listener.problem)
                return
        self._changed()

    def _start_serving(self):
        names = self.services.scan()
        self.console.log("ESDP0001I", deploy=self.paths.deploy, count=len(names),
                         services=", ".join(names) or "none")
        self.supervisor.start()
        self.console.log("ESSI1000I", seps=len(self.supervisor.seps),
                         timeout=self.definition["request_timeout"])

    # -- standby ---------------------------------------------------------------------------

    def activate(self):
        """A standby takes over (SIGUSR1): recover and open the data environment, start SEPs."""
        if self._switching is not None:
            # Still standing down from an earlier deactivation: take over once that is done.
            self._switching.addBoth(lambda _: self.activate())
            return
        if self.active or self._stopping is not None:
            return
        try:
            self._activate()
        except Exception as exc:  # noqa: BLE001 - a bug here must fail the region, not hang it
            self.fail(f"internal error during activation: {type(exc).__name__}: {exc}")

    def _activate(self):
        try:
            for path in (self.paths.data, self.paths.deploy):
                path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self.console.log("ESCD0113E", server=self.name,
                             problem=f"{exc}; is the shared disk mounted here?")
            return
        store = ReplyStore.load(self.paths.data, self.definition["durability"],
                                max_procs=self.definition["seps"] + 8, console=self.console,
                                store=self.definition.get("store"))
        if store is None:
            # Serving without transactions could lose or repeat committed work. (An environment
            # that cannot be recovered yet is no reason: the supervisor keeps trying.)
            self.console.log("ESCD0113E", server=self.name, problem="ESFH, which manages its "
                             f"data environment {self.paths.data}, could not be loaded "
                             "(see above)")
            return
        self.store = self.supervisor.store = store
        self.active = True
        self.metrics.activated()
        self._standing_by(False)
        self.console.log("ESCD0111I", server=self.name, path=self.paths.data,
                         seps=len(self.supervisor.seps))
        # Started again once every SEP is ready (_changed), so `esrt server activate` returns
        # when the region really serves.
        if self._explicit == ServerStatus.STARTED:
            self._explicit = ServerStatus.STARTING
        self._start_serving()
        self._changed()

    def _standing_by(self, standing_by):
        self.dispatcher.inactive_reason = (
            f"{self.name} is a standby that is not active on this node (its data is served "
            "where it is active); retry: a takeover activates it" if standing_by else None)

    def deactivate(self):
        """Back to standby (SIGUSR2): finish calls in flight, stop SEPs, close the environment,
        so that the other node can take the shared disk. The listeners stay."""
        if not self.active or not self.standby or self._standing_down \
                or self._stopping is not None:
            return defer.succeed(None)
        self._standing_down = True
        switching = defer.ensureDeferred(self._deactivate())
        if not switching.called:
            self._switching = switching
        return switching

    async def _drain(self):
        """Wait (at most `grace` seconds) for the calls in flight to finish."""
        drained = self.dispatcher.drain()
        drained.addTimeout(self.grace, self.reactor)
        try:
            await drained
        except defer.TimeoutError:
            self.console.log("ESST0007W", count=self.dispatcher.active, grace=self.grace)

    async def _deactivate(self):
        try:
            # New calls get 503 (their clients retry, and reach the node taking over); the
            # calls in flight finish first.
            self._standing_by(True)
            await self._drain()
            # SEPs going away while standing down is not a failure (see _changed); the
            # status says inactive only once the environment is closed, so that the cluster
            # unmounts the disk after that, not before.
            await self.supervisor.stop()
            if self.store is not None:
                self.store.close()
            self.store = self.supervisor.store = None
            self.active = False
            self.console.log("ESCD0112I", server=self.name)
        finally:
            self._standing_down = False
            self._switching = None
            self._changed()

    def fail(self, problem):
        """Go to Failed with `problem` and stop the region with a non-zero exit code."""
        if self._explicit == ServerStatus.FAILED:
            return
        self.console.log("ESCD0107E", server=self.name, problem=problem)
        self._explicit = ServerStatus.FAILED
        self.message = problem
        self.exit_code = ExitCode.ERROR
        self.reporter.changed()
        self.reactor.callLater(0, self._stop_reactor)

    def _stop_reactor(self):
        if self._stopping is None and getattr(self.reactor, "running", True):
            self.reactor.stop()

    def _changed(self):
        started = False
        if self._explicit == ServerStatus.STARTING and self._now_status() == ServerStatus.STARTED:
            self._explicit = ServerStatus.STARTED
            self.message = self._serving_message()
            self.console.log("ESCD0106I", server=self.name, listeners=self.message)
            started = True
        if self.active and not self._standing_down \
                and self._explicit in (ServerStatus.STARTING, ServerStatus.STARTED) \
                and not self.supervisor.can_serve():
            causes = "; ".join(f"SEP {sep.number:04d}: {sep.cause}" for sep in self.supervisor.seps
                               if sep.cause)
            self.fail(f"no SEP can run: {causes or 'all SEPs failed'}")
        if started and self._explicit == ServerStatus.STARTED:
            # Under systemd (esrt.node.units) the unit counts as started now, not at exec;
            # what it then runs finds the status saying so.
            self.reporter.publish()
            notify("READY=1", f"STATUS={self.message}")
        else:
            self.reporter.changed()

    # -- reports of the supervisor (SupervisorObserver) -------------------------------------

    def changed(self):
        self._changed()

    def processes_changed(self):
        self.write_processes()

    def _serving_message(self):
        if not self.listeners:
            return "started (no listeners)"
        return "serving on " + ", ".join(
            f"\"{lst.name}\" {lst.address}" if lst.address else
            f"\"{lst.name}\" (waiting for {lst.requested})" for lst in self.listeners)

    def _now_status(self):
        # A listener waiting for its address (a standby) does not hold the region back.
        listeners_started = all(lst.state in (ListenerStatus.STARTED, ListenerStatus.WAITING)
                                for lst in self.listeners)
        # An inactive standby has no SEPs to wait for.
        seps_ready = self.supervisor.all_ready() if self.active else True
        if self.supervisor.unrecoverable and self._explicit in (ServerStatus.STARTING,
                                                                ServerStatus.STARTED):
            # Failed to its monitors while its data cannot be recovered, so that a cluster can
            # move it; it keeps trying and reports Started again once recovery works.
            return ServerStatus.FAILED
        return server_status(self._explicit, listeners_started, seps_ready)

    def health(self):
        """(ok, detail) for GET /health."""
        status = self._now_status()
        return status == ServerStatus.STARTED and self.supervisor.can_serve(), status.value

    def rescan(self):
        """SIGHUP: re-read the deploy directory."""
        names = self.services.scan()
        self.console.log("ESDP0003I", count=len(names), services=", ".join(names) or "none")
        self.reporter.changed()

    # -- files -----------------------------------------------------------------------------

    def write_processes(self):
        """run/processes.json: exactly the pids casstop --force may kill."""
        seps = self.supervisor.pids()
        recovery = self.supervisor.recovery_pid()
        # Start times let casstop --force tell these processes from later ones reusing a pid.
        started = {str(pid): process_start_time(pid)
                   for pid in [self.pid, *seps.values(), recovery] if pid}
        record = {"region": self.pid, "seps": seps, "recovery": recovery, "started": started}
        try:
            write_json_atomic(self.paths.processes_file, record)
        except OSError:
            pass

    def status_document(self):
        status = self._now_status()
        if status == ServerStatus.STARTED and not self.active:
            self.message = "standby: data environment closed, no SEPs; " \
                           f"`esrt server activate {self.name}` takes over"
        if status == ServerStatus.STARTING:
            ready = sum(1 for sep in self.supervisor.seps if sep.state.value in ("Idle", "Busy"))
            self.message = (f"starting: {ready} of {len(self.supervisor.seps)} SEP(s) ready, "
                            f"{sum(lst.state == ListenerStatus.STARTED for lst in self.listeners)}"
                            f" of {len(self.listeners)} listener(s) started")
        # While recovery keeps failing, the status says why (self.message is what it says
        # again once the region serves).
        message = self.message
        if status == ServerStatus.FAILED and self.supervisor.unrecoverable:
            message = self.supervisor.unrecoverable
        return {"name": self.name, "mfServerStatus": status.value, "pid": self.pid,
                "started": iso_time(self.started), "message": message,
                "listeners": [lst.snapshot() for lst in self.listeners],
                "seps": self.supervisor.snapshot(), "stats": self.dispatcher.stats(),
                "services_stats": self.metrics.services_stats(),
                "services": self.services.names(), "standby": self.standby,
                "active": self.active, **self._members_document()}

    def _member_now(self):
        """What this region's heartbeat says of it."""
        return (self._now_status().value, self.pid, [lst.snapshot() for lst in self.listeners],
                self.started)

    def _members_document(self):
        if self.membership is None:
            return {}
        return {"members": self.membership.members, "members_problem": self.membership.problem}

    # -- stop ------------------------------------------------------------------------------

    def shutdown(self, reason="stop requested"):
        """Stop in order; the Deferred fires when everything is down (reactor 'before shutdown')."""
        if self._stopping is None:
            self._stopping = defer.ensureDeferred(self._shutdown(reason))
            # Twisted does not report a failed shutdown trigger before the process exits: say it
            # here, and make sure no SEP outlives us.
            self._stopping.addErrback(self._shutdown_failed)
        return self._stopping

    def _shutdown_failed(self, failure):
        self.console.log("ESCS5007E", what="shutdown", problem=failure.getTraceback())
        self.exit_code = ExitCode.ERROR
        self.kill_children()

    async def _shutdown(self, reason):
        failed = self._explicit == ServerStatus.FAILED
        if not failed:
            self._explicit = ServerStatus.STOPPING
            self.message = f"stopping ({reason})"
        notify("STOPPING=1", f"STATUS={self.message}")
        self.console.log("ESST0005I", reason=reason if not failed else self.message)
        self.reporter.changed()
        await defer.DeferredList([lst.stop() for lst in self.listeners], consumeErrors=True)
        await self._drain()
        await defer.DeferredList([factory.close_connections() for factory in self.factories],
                                 consumeErrors=True)
        self.callers.stop()
        self.history.stop()
        if self.membership is not None:
            # Its listeners are closed: the others' lists no longer show it as serving.
            await self.membership.stop()
        await self.supervisor.stop()
        if not failed:
            self._explicit = ServerStatus.STOPPED
            self.message = f"{self.name} stopped"
        self.reporter.stop()
        await self.reporter.flush()
        try:
            self.paths.pid_file.unlink()
        except OSError:
            pass
        self.console.log("ESST0006I")

    def kill_children(self):
        """Last resort (crash of our own code): SIGKILL every SEP still alive."""
        self.supervisor.kill_all()


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m esrt.region",
                                     description="Run one esrt region (server) in the foreground.")
    parser.add_argument("name", help="server name, e.g. ESSRV01")
    parser.add_argument("--home", help="node home directory (default $ESRT_HOME or ~/.esrt)")
    parser.add_argument("--definition", metavar="FILE.json",
                        help="read the server definition from this file instead of mfds")
    # For tests: run this Python script as the SEP instead of `python -m esrt.sep`.
    parser.add_argument("--sep-script", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def preload_failchk_fix(argv):
    """Re-execute this region with native/failchk_preload.c preloaded, once.

    Without it, cleaning up after a SEP that was killed while waiting for a lock hangs the
    region (glibc's pthread_cond_destroy waits for the dead waiter forever).
    """
    try:
        from esrt.cobol.esfh_build import failchk_preload_library
        library = str(failchk_preload_library())
    except Exception:  # noqa: BLE001 - no compiler here: run on; only that cleanup case is affected
        return
    preloaded = os.environ.get("LD_PRELOAD", "").split()
    if library in preloaded:
        return
    environ = dict(os.environ, LD_PRELOAD=" ".join(preloaded + [library]))
    os.execve(sys.executable, [sys.executable, "-m", "esrt.region", *argv], environ)


def _echo_to_journal(line):
    # The journal going away must not fail whatever logged the line.
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def run(argv=None):
    """Run a region until it is stopped; return the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    preload_failchk_fix(argv)
    args = parse_args(argv)
    home = Home(args.home)
    try:
        definition, source = load_definition(args.name, home, args.definition)
        paths = RegionPaths(definition, home).create(standby=definition.get("standby", False))
    except RegionError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"{args.name}: cannot create the region's directories: {exc}; check the root, "
              "data_dir, deploy_dir and casroot settings", file=sys.stderr)
        return ExitCode.BOOT_FAILED
    try:
        stale = claim_pid_file(paths, args.name)
    except RegionError as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code

    # Started by systemd (esrt.node.units), the console's lines go to the journal as well.
    echo = _echo_to_journal if stderr_is_journal() else None
    take_socket()
    console = ConsoleLog(paths.console_log, paths.console_bak, args.name, echo=echo).open()
    try:
        import setproctitle
        setproctitle.setproctitle(f"{args.name} region")
    except ImportError:
        pass
    if stale:
        console.log("ESCD0105I", path=paths.pid_file, pid=stale)
    console.log("ESCD0103I", source=source)

    # Each client connection is a descriptor: use all the system lets this process have (a
    # listener's max_connections bounds them), not the shell's default soft limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    from esrt.region.reactor import install
    reactor = install()
    from twisted.logger import globalLogBeginner, textFileLogObserver
    # Twisted's own reports (unhandled errors in Deferreds) go to stderr, which casstart keeps
    # in run/region.out.
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)

    info = home.read_mfds_info() or {}
    sep_command = [sys.executable, args.sep_script] if args.sep_script else None
    # The data environment's handle: the supervisor recovers it before any SEP runs, and it
    # cleans up after SEPs that die.
    store = None if definition.get("standby") else ReplyStore.load(
        paths.data, definition["durability"], max_procs=definition["seps"] + 8, console=console,
        store=definition.get("store"))
    region = Region(reactor, definition, paths, console, sep_command=sep_command,
                    mfds_url=info.get("url"), store=store, mfds_token=read_node_token(home),
                    mfds_cert=info.get("tls_cert"), home=home)
    atexit.register(region.kill_children)
    # The handler only schedules: the rescan runs on the reactor thread, between requests.
    signal.signal(signal.SIGHUP, lambda signum, frame: reactor.callFromThread(region.rescan))
    # `esrt server activate/deactivate` of a standby region.
    signal.signal(signal.SIGUSR1, lambda signum, frame: reactor.callFromThread(region.activate))
    signal.signal(signal.SIGUSR2,
                  lambda signum, frame: reactor.callFromThread(region.deactivate))
    reactor.addSystemEventTrigger("before", "shutdown", region.shutdown)
    reactor.callWhenRunning(region.start)
    try:
        reactor.run()
    finally:
        region.kill_children()
        console.close()
    return int(region.exit_code)


def main():
    sys.exit(run())
