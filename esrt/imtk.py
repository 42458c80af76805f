"""Interface Mapping Toolkit: `defmap` writes an editable mapping, `generate` builds the .car.

The MF-style spelling `imtkmake -defmap src=cblapp01.cbl service=srv01` and esrt's
`esrt imtk defmap --src cblapp01.cbl --service srv01` both end up here.
"""

import tempfile
from pathlib import Path

from esrt.mapping import car
from esrt.mapping.parser import defmap, load_mapping, write_mapping


def mapping_path_for(service, directory="."):
    return Path(directory) / car.mapping_file_name(service)


def define_mapping(sources, service, copy_dirs=(), out_dir="."):
    """Read the sources' interfaces and write <service>.mapping.json; return (path, document)."""
    for source in sources:
        if not Path(source).is_file():
            raise FileNotFoundError(f"COBOL source {source} not found")
    document = defmap([str(s) for s in sources], service, copy_dirs=tuple(copy_dirs))
    path = mapping_path_for(service, out_dir)
    write_mapping(document, path)
    return path, document


def generate_package(service, mapping_file=None, out_dir=".", copy_dirs=(), cobc_args=()):
    """Compile every program of the mapping and write <service>.car; return (path, manifest).

    Programs are compiled with -fcallfh=ESFH: their indexed and relative files go through
    esrt's transactional file handler, which the SEP loads before the module.
    """
    from esrt.cobol import compile as cobol_compile
    from esrt.cobol.esfh_build import esfh_program_args
    mapping_file = Path(mapping_file) if mapping_file else mapping_path_for(service)
    if not mapping_file.is_file():
        raise FileNotFoundError(
            f"mapping {mapping_file} not found: run `esrt imtk defmap --src PROGRAM.cbl "
            f"--service {service}` first")
    document = load_mapping(mapping_file)
    if document["service"] != service:
        raise ValueError(f"{mapping_file} maps service {document['service']!r}, not {service!r}")
    modules = {}
    with tempfile.TemporaryDirectory(prefix="esrt-imtk-") as build:
        for program in document["programs"]:
            source = Path(program["source"])
            if not source.is_absolute():
                source = mapping_file.parent / source
            modules[program["program"]] = cobol_compile.compile_module(
                source, build, copy_dirs=tuple(copy_dirs) + (str(source.parent),),
                extra_args=(*esfh_program_args(), *cobc_args))
        out = Path(out_dir) / f"{service}.car"
        manifest = car.build_car(document, mapping_file, modules, out,
                                 cobc_version=cobol_compile.cobc_version())
    return out, manifest
