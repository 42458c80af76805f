"""Shared vocabulary: server, listener and SEP states, exit codes.

Standard library only, so that every process (mfds, region, SEP, CLI, OCF agent) can import it
cheaply. The string values are the ones ES users and HA scripts know (mfServerStatus,
mfListenerStatus) and must stay stable.
"""

import enum


class ServerStatus(str, enum.Enum):
    """mfServerStatus of a region as mfds and mdump report it."""

    STOPPED = "Stopped"
    STARTING = "Starting"
    STARTED = "Started"
    STOPPING = "Stopping"
    FAILED = "Failed"


class ListenerStatus(str, enum.Enum):
    """mfListenerStatus of one listener."""

    STOPPED = "Stopped"
    STARTING = "Starting"
    STARTED = "Started"
    WAITING = "Waiting for address"
    FAILED = "Failed"


class SEPState(str, enum.Enum):
    """Life cycle of one service execution process."""

    STARTING = "Starting"
    IDLE = "Idle"
    BUSY = "Busy"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    BACKOFF = "Backoff"
    FATAL = "Fatal"


class ExitCode(enum.IntEnum):
    """Exit codes of esrt commands and processes.

    0, 1 and 7 follow OCF so that `esrt server status` can serve as a cluster monitor.
    """

    OK = 0
    ERROR = 1
    USAGE = 2
    NOT_INSTALLED = 5
    NOT_CONFIGURED = 6
    NOT_RUNNING = 7
    # A region or SEP that cannot even start (bad definition, missing libcob) exits with this,
    # so its supervisor stops restarting it instead of looping.
    BOOT_FAILED = 3
    # A SEP that cannot load the program it was asked for.
    LOAD_FAILED = 4
    # A SEP whose commits could not be made durable: it gave up the data environment, which
    # its region must recover from the disk before any SEP uses it again.
    ENVIRONMENT_LOST = 10
    # `esrt casstart --foreground` of a server that already runs (started otherwise): its
    # systemd unit must not restart it again and again (RestartPreventExitStatus).
    ALREADY_RUNNING = 11
