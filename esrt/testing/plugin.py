"""pytest plugin of esrt.testing: the `lab` and `lab_factory` fixtures.

Load it with `pytest_plugins = ["esrt.testing.plugin"]`. Both fixtures skip the test with the
reason (root needed, which Debian packages to install) when a lab cannot run here, and always
tear their labs down, whether the test passed or not.
"""

import pytest

from esrt.testing.lab import Lab, lab_unavailable_reason


def _skip_unless_available():
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def lab_factory():
    """A function `make(nodes=2, **kw) -> Lab` returning started labs, all stopped afterwards."""
    _skip_unless_available()
    labs = []

    def make(nodes=2, **kw):
        lab = Lab(nodes=nodes, **kw)
        labs.append(lab)
        lab.start()
        return lab

    try:
        yield make
    finally:
        for lab in reversed(labs):
            lab.stop()


@pytest.fixture
def lab():
    """A started two-node lab (real corosync + pacemaker, fencing, mfds on each node)."""
    _skip_unless_available()
    with Lab(nodes=2) as started:
        yield started
