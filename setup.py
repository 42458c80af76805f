"""Build and install esrt.

Native parts (the ESFH file handler and the hot-path extension) live in native/ and are added
here as they land; the Python package works without them.
"""

from setuptools import Extension, find_packages, setup

setup(
    name="esrt",
    version="0.1.0",
    description="Run GnuCOBOL programs as transactional network services, like an Enterprise Server",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11",
    packages=find_packages(include=["esrt", "esrt.*"]),
    # The OCF agent is a shell script template installed by `esrt ha install-agent`.
    package_data={"esrt.ha.agent": ["region"]},
    # Hot paths: the field codec, frame splitting and the SEP's call path. Each has a
    # pure-Python twin, used when these were not built (esrt/native.py loads them).
    ext_modules=[Extension("esrt._codec", ["native/_codec.c"],
                           depends=["native/cobol_display.h"]),
                 Extension("esrt._frames", ["native/_frames.c"]),
                 Extension("esrt._callpath", ["native/_callpath.c", "native/_callpath_in.c",
                                                "native/_callpath_out.c"],
                           depends=["native/_callpath.h", "native/cobol_display.h"])],
    install_requires=[
        "twisted>=22.10",
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
    ],
    extras_require={"test": ["pytest>=7", "hypothesis>=6", "selenium>=4.10",
                             # make bench: the HTTP stack users run instead, and its plots
                             "gunicorn>=20", "matplotlib>=3.5"]},
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
