"""The README's esrt.testing example, run as written: a user's first failover test must work.

The code block is taken from README.md itself, so the example cannot drift from what runs.
"""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example():
    text = README.read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    (example,) = [block for block in blocks if "def test_power_failure(lab)" in block]
    namespace = {}
    exec(compile(example, f"{README}:esrt.testing example", "exec"), namespace)
    return namespace["test_power_failure"]


def test_the_readme_failover_example_passes(lab, capsys):
    readme_example()(lab)
    outage = float(capsys.readouterr().out.split("outage", 1)[1].split()[0])
    # The client saw the takeover end: a measured outage, not None.
    assert outage > 0
