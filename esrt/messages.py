"""Console message catalogue: one table of message IDs, severities and text templates.

Standard library only, so that the region, the CLI and log readers can all import it. The IDs are
modelled on Enterprise Server's (CASCD0102I -> ESCD0102I ...) so that people who grep console logs
for the originals find the same shape: a component code, a number and a severity letter.
"""

import enum


class Severity(str, enum.Enum):
    """The last letter of a message ID."""

    INFO = "I"
    WARNING = "W"
    ERROR = "E"
    SEVERE = "S"


# ID -> text template (str.format fields). The severity is the ID's last letter.
MESSAGES = {
    # region daemon
    "ESCD0102I": "daemon initialized; region process pid {pid}",
    "ESCD0103I": "server definition read from {source}",
    "ESCD0104E": "{server}: cannot start: {problem}",
    "ESCD0105I": "took over stale pid file {path} (process {pid} is gone)",
    "ESCD0106I": "server {server} started: {listeners}",
    "ESCD0107E": "{server} failed: {problem}",
    "ESCD0110I": "{server} is a standby: data environment closed and no SEPs until "
                 "`esrt server activate {server}`",
    "ESCD0111I": "{server} activated: data environment {path} open, {seps} SEP(s) starting",
    "ESCD0112I": "{server} deactivated: SEPs stopped, data environment closed; standing by",
    "ESCD0113E": "{server} cannot be activated: {problem}",
    # server manager and SEPs
    "ESSI1000I": "server manager initialization completed: {seps} SEP(s), "
                 "request timeout {timeout} s",
    "ESSI1600I": "SEP {sep:04d} initialization completed (pid {pid})",
    "ESSI1601I": "SEP {sep:04d} starting",
    "ESSI1700W": "SEP {sep:04d} abended (pid {pid}): {cause}",
    "ESSI1701I": "SEP {sep:04d} restarted (restart {restarts}, after {delay:.1f} s)",
    "ESSI1702E": "SEP {sep:04d} failed to start {failures} time(s) in a row ({cause}); it is not "
                 "restarted: fix the cause (see the lines above) and restart the server",
    "ESSI1703W": "SEP {sep:04d} ran {service} for longer than {timeout} s; killing it (pid {pid})",
    "ESSI1708W": "SEP {sep:04d} did not finish a batch of {calls} calls within {timeout} s a "
                 "call; killing it (pid {pid}); each unanswered call runs again alone",
    "ESSI1704E": "no SEP is left to serve requests; every call is refused with 503 until the "
                 "server is restarted",
    "ESSI1705W": "SEP {sep:04d} sent a bad frame ({problem}); replacing it",
    "ESSI1706W": "SEP {sep:04d} was killed from outside while running {service}; the call was "
                 "rolled back and is run again",
    "ESSI1707I": "SEP {sep:04d} died after committing {service}; the committed reply is returned",
    # data environment (ESFH on Berkeley DB)
    "ESDB0001I": "data environment {path} recovered",
    "ESDB0002W": "data environment {path} not recovered: {problem}",
    "ESDB0003I": "data environment {path} open ({durability} commits)",
    "ESDB0004E": "data environment {path} cannot be opened: {problem}",
    "ESDB0005W": "cleanup after a SEP died failed: {problem}",
    "ESDB0006W": "a SEP died inside the data environment; stopping every SEP to recover it "
                 "(calls in flight are settled after recovery)",
    "ESDB0007E": "data environment {path} cannot be recovered: {problem}; calls are refused "
                 "until it is (free space on the data disk, or check it); next try in "
                 "{delay:g} s",
    "ESDB0008W": "data environment {path} has been recovering for more than {seconds:g} s (a "
                 "slow or failing data disk?); calls are refused until the recovery ends",
    "ESSI1800I": "SEP {sep:04d}: {text}",
    "ESSI1801W": "SEP {sep:04d} stderr: {text}",
    # communications
    "ESCS5003I": "communications interface initialized",
    "ESCS5004I": "listener \"{listener}\" started on {address} ({conversation})",
    "ESCS5005E": "{server}: listener \"{listener}\" cannot bind {address}: {problem}",
    "ESCS5006I": "listener \"{listener}\" stopped",
    "ESCS5007E": "internal error while serving {what}: {problem}",
    "ESCS5008W": "{server}: listener \"{listener}\" cannot bind {address}: address not on this "
                 "host (waiting)",
    "ESCS5009E": "{server}: listener \"{listener}\" cannot use its TLS files: {problem}",
    "ESCS5010W": "listener \"{listener}\" refused {peer}: it sent plain text ({data!r}) to a "
                 "TLS port; the client must connect with {scheme}://",
    "ESCS5011W": "listener \"{listener}\": client {peer}: {problem}",
    "ESCS5012I": "listener \"{listener}\" reloaded its certificate from {file} ({certificate}); "
                 "new connections use it",
    "ESCS5020W": "{conversation} call of {service} by {caller} refused ({status}): {reason}",
    "ESCS5021W": "{count} more call(s) refused for who made them in the last second, not "
                 "logged one by one (at most {limit} a second); see esrt_refused_total",
    "ESCS5022W": "cannot get the accounts, tokens and call rules from mfds ({problem}); calls "
                 "are checked with the last copy until it answers again",
    "ESCS5023I": "the accounts, tokens and call rules come from mfds again",
    "ESCS5024W": "cannot write this region's heartbeat in its store ({problem}); the other "
                 "members and the admin UI show it lost until the store answers again",
    "ESCS5025I": "this region's heartbeat reaches its store again",
    "ESCS5013E": "listener \"{listener}\": the changed TLS files cannot be used: {problem}; "
                 "the previous certificate stays in use",
    # deployment
    "ESDP0001I": "packages loaded from {deploy}: {count} service(s): {services}",
    "ESDP0002W": "package {package}: {problem}; its services are not offered",
    "ESDP0003I": "deploy directory rescanned (SIGHUP): {count} service(s): {services}",
    # shutdown
    "ESST0005I": "shutdown starting ({reason})",
    "ESST0006I": "shutdown complete",
    "ESST0007W": "{count} request(s) still running after {grace} s; stopping the SEPs anyway",
    "ESKC0003I": "SEP {sep:04d} shutdown complete",
    "ESKC0004W": "SEP {sep:04d} did not stop within {delay} s of SIGTERM; killing it",
}


def severity(message_id):
    """Return the Severity of a message ID from its last letter."""
    return Severity(message_id[-1])


def format_message(message_id, **fields):
    """Return the text of message `message_id` with its fields filled in.

    Raises KeyError naming the ID when it is not in the table, so a typo fails loudly in tests.
    """
    try:
        template = MESSAGES[message_id]
    except KeyError:
        raise KeyError(f"message ID {message_id!r} is not in esrt.messages.MESSAGES; "
                       "add it to the table") from None
    return template.format(**fields)
