"""Build and install esrt.

Native parts live in native/: the hot-path extensions (each with a pure-Python twin) and two
shared libraries that are not Python extensions, ESFH (libesfh.so, with its header) and the
region's failchk preload, built into esrt/lib with the extensions, so that an installed esrt
needs no compiler. A source checkout rebuilds them when their sources change.
"""

import importlib.util
from pathlib import Path

from setuptools import Extension, find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = Path(__file__).resolve().parent


def _esfh_build():
    """esrt/cobol/esfh_build.py, loaded by its path: esrt itself is not importable yet."""
    spec = importlib.util.spec_from_file_location(
        "_esrt_esfh_build", HERE / "esrt" / "cobol" / "esfh_build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildNative(build_ext):
    """The extensions, then libesfh.so, its header and the failchk preload into esrt/lib (of
    the build, or of the tree for an editable install)."""

    def build_extensions(self):
        esfh_build = _esfh_build()
        flags = esfh_build.native_flags()
        for extension in self.extensions:
            extension.extra_compile_args = [*extension.extra_compile_args, *flags]
            extension.extra_link_args = [*extension.extra_link_args, *flags]
        # setuptools rebuilds an extension only when a source is newer than it: after a switch
        # of ESRT_SANITIZE it would keep the modules of the other kind of build.
        record = Path(self.build_temp) / "esrt-native-flags"
        if not record.is_file() or record.read_text() != " ".join(flags):
            self.force = self.compiler.force = True
        super().build_extensions()
        record.parent.mkdir(parents=True, exist_ok=True)
        record.write_text(" ".join(flags))

    def run(self):
        super().run()
        out = (HERE if self.inplace else Path(self.build_lib)) / "esrt" / "lib"
        esfh_build = _esfh_build()
        esfh_build.build_esfh(out, HERE / "native")
        esfh_build.build_failchk_preload(out, HERE / "native")
        _build_faultfs(out)


def _build_faultfs(out):
    """esrt-faultfs, the fault-injecting disk of esrt.testing: optional, since it needs
    libfuse3-dev, which a region does not."""
    spec = importlib.util.spec_from_file_location(
        "_esrt_faultfs", HERE / "esrt" / "testing" / "faultfs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.build_faultfs(out, HERE / "native")
    except module.FaultFSError as exc:
        print(f"warning: esrt-faultfs not built, its tests will be skipped: {exc}")

setup(
    name="esrt",
    version="0.1.0",
    description=("Run GnuCOBOL programs as transactional network services, like an Enterprise "
                 "Server"),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["esrt", "esrt.*"]),
    # The OCF agent is a shell script template installed by `esrt ha install-agent`.
    package_data={"esrt.ha.agent": ["region", "pgfollow"]},
    # Hot paths: the field codec, frame splitting, the HTTP front door's common case and the
    # SEP's call path. Each has a pure-Python twin, used when these were not built
    # (esrt/native.py loads them).
    cmdclass={"build_ext": BuildNative},
    ext_modules=[Extension("esrt._codec", ["native/_codec.c"],
                           depends=["native/cobol_display.h"]),
                 Extension("esrt._frames", ["native/_frames.c"]),
                 Extension("esrt._frontdoor", ["native/_frontdoor.c"]),
                 Extension("esrt._callpath", ["native/_callpath.c", "native/_callpath_in.c",
                                                "native/_callpath_out.c"],
                           depends=["native/_callpath.h", "native/cobol_display.h"])],
    install_requires=[
        # TLS on every listener is Twisted's own (pyOpenSSL, service_identity); certificates
        # and keys are read and checked with cryptography (multi-certificate PEM files,
        # UTC expiry dates) and handed to pyOpenSSL as cryptography objects, which it takes
        # from 24.3 on.
        "twisted[tls]>=22.10",
        "pyOpenSSL>=24.3",
        "cryptography>=42",
        "cffi>=1.15",
        "bsddb3>=6.2.9",
        # Process titles ("ESSRV01 SEP 0001") need to rewrite argv memory; setproctitle does this
        # portably and is widely used (gunicorn, celery), so we do not write our own.
        "setproctitle>=1.3",
        # mfds account passwords: Argon2id through the reference C implementation's binding,
        # a vetted library, rather than a home-made hash.
        "argon2-cffi>=21.3",
        # Each region serves GET /metrics in the Prometheus text format; the official client
        # gives correct exposition (escaping, histogram buckets, content type) and per-region
        # registries, so we do not write our own.
        "prometheus_client>=0.16",
        # `esrt file` on a PostgreSQL store (list, load, copy, verify its tables): psycopg is
        # the maintained PostgreSQL driver, on the same libpq as ESFH, so we do not write a
        # protocol client of our own.
        "psycopg>=3.1",
    ],
    extras_require={"test": ["pytest>=7", "hypothesis>=6", "selenium>=4.10", "ruff>=0.5",
                             # make test runs the tests that need no lab in two processes:
                             # pytest's own way to do it, not a runner of ours
                             "pytest-xdist>=3",
                             # lint-imports: the layers of pyproject.toml; its grimp finds
                             # import cycles for tests/unit/test_import_graph.py
                             "import-linter>=2.1",
                             # make bench: the HTTP stack users run instead, and its plots
                             "gunicorn>=20", "matplotlib>=3.5",
                             # make fuzz: coverage-guided fuzzing of the parsers (libFuzzer)
                             "atheris>=2.3"]},
    entry_points={
        "console_scripts": [
            "esrt = esrt.cli.main:run",
            "casstart = esrt.cli.aliases:casstart",
            "casstop = esrt.cli.aliases:casstop",
            "mfds = esrt.cli.aliases:mfds",
            "mdump = esrt.cli.aliases:mdump",
            "mfdepinst = esrt.cli.aliases:mfdepinst",
            "imtkmake = esrt.cli.aliases:imtkmake",
        ],
    },
)
