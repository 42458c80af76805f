"""esrt.testing: failover tests of esrt regions on a real Pacemaker + Corosync lab.

Load the pytest plugin with `pytest_plugins = ["esrt.testing.plugin"]` to get the `lab` and
`lab_factory` fixtures; or use `Lab` directly as a context manager. Root is needed.
"""

from esrt.testing.lab import Lab, LabError, Node, lab_unavailable_reason

__all__ = ["Lab", "LabError", "Node", "lab_unavailable_reason"]
