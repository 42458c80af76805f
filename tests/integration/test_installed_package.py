"""esrt installed from a wheel, away from its source tree: the wheel holds every native part
(the extensions, libesfh.so with its header, the failchk preload), so the CBLAPP01 flow runs
with no compiler step of esrt's own and no checkout on the path."""

import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import EXAMPLES, ROOT, Node
from ha_helpers import free_port


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A fresh virtualenv outside the checkout with esrt's wheel installed; its bin dir."""
    work = tmp_path_factory.mktemp("installed")
    wheels = work / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels),
                    str(ROOT)], check=True, timeout=600, cwd=work)
    wheel, = wheels.glob("esrt-*.whl")
    environment = work / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    # esrt's dependencies are those of the running interpreter: a path line (not a site dir),
    # so the editable install of the checkout there stays out of sight.
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], check=True, capture_output=True, text=True)
    (Path(site.stdout.strip()) / "esrt-test-dependencies.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, timeout=300, cwd=work)
    return environment / "bin"


def test_the_wheel_carries_every_native_part(installed):
    where = subprocess.run(
        [str(installed / "python"), "-c",
         "import esrt, esrt.native as n; from esrt.cobol import esfh_build as b; "
         "print(esrt.__file__); "
         "print(all(n.built(m) for m in ('_codec', '_frames', '_callpath', '_frontdoor'))); "
         "print(b.esfh_library()); print(b.failchk_preload_library()); print(b.esfh_header())"],
        check=True, capture_output=True, text=True, cwd=installed.parent, timeout=60,
        env={"PATH": "/usr/bin:/bin"}).stdout.split()
    package = Path(where[0]).parent
    assert package.is_relative_to(installed.parent) and not package.is_relative_to(ROOT)
    assert where[1] == "True"
    assert [Path(p) for p in where[2:]] == [package / "lib" / "libesfh.so",
                                            package / "lib" / "libesfh_failchk.so",
                                            package / "lib" / "esfh.h"]


def test_the_wheel_carries_esrt_faultfs_when_libfuse3_is_there(installed):
    """The failing disk of esrt.testing ships built, like the other native parts; without
    libfuse3-dev the wheel is still built, only without it."""
    if subprocess.run(["pkg-config", "--exists", "fuse3"]).returncode != 0:
        pytest.skip("libfuse3-dev is not installed: esrt is built without esrt-faultfs")
    binary = subprocess.run(
        [str(installed / "python"), "-c",
         "from esrt.testing import faultfs; print(faultfs.faultfs_binary())"],
        check=True, capture_output=True, text=True, cwd=installed.parent, timeout=60,
        env={"PATH": "/usr/bin:/bin"}).stdout.strip()
    assert Path(binary).parent.name == "lib" and not Path(binary).is_relative_to(ROOT)
    usage = subprocess.run([binary], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "esrt-faultfs [-f] [-o OPTIONS] SOURCE_DIR" in usage.stderr


def test_the_wheel_carries_the_resource_agents(installed, tmp_path):
    root = tmp_path / "resource.d"
    subprocess.run([str(installed / "esrt"), "ha", "install-agent", "--root", str(root)],
                   check=True, capture_output=True, text=True, cwd=installed.parent, timeout=60,
                   env={"PATH": "/usr/bin:/bin"})
    for name in ("region", "pgfollow"):
        meta = subprocess.run([str(root / "esrt" / name), "meta-data"], capture_output=True,
                              text=True, timeout=60)
        assert meta.returncode == 0 and f'<resource-agent name="{name}"' in meta.stdout


def test_cblapp01_flow_runs_from_the_installed_package(installed, tmp_path):
    demo = tmp_path / "cblapp01"
    shutil.copytree(EXAMPLES, demo)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": f"{installed}:/usr/bin:/bin", "DEMO_HOME": str(home),
           "DEMO_MFDS_PORT": str(free_port()), "DEMO_PORT": str(free_port()),
           "TMPDIR": str(tmp_path)}
    try:
        result = subprocess.run(["bash", str(demo / "demo.sh")], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=600)
    finally:
        Node(home).stop_everything()
    assert result.returncode == 0, result.stdout + result.stderr
    counters = [line.split()[-1] for line in result.stdout.splitlines()
                if "CBLAPP01" in line and line.split()[-1].isdigit()]
    assert counters == [str(n) for n in range(10)], result.stdout
