"""Readers and writers that map each package's metadata to and from the particle table.

One module per format: :mod:`.relion` (STAR 3.0 to 5), :mod:`.cryosparc`
(``.cs``), :mod:`.spider` (alignment doc files); beside them :mod:`.paths`
(finding the stacks metadata names), :mod:`.stack_files` (checking those
stacks' headers) and :mod:`.micrograph_ctf` (per-micrograph CTF values).  This
module picks the format from the file name or its contents and passes each
format the options it takes (options of other formats are dropped, unknown
ones refused).
"""
import inspect
from pathlib import Path

from ..errors import SpectoolsError
from ..io.files import regular_file

#: Output format by file extension.
EXTENSIONS = {".star": "relion", ".cs": "cryosparc", ".dat": "spider", ".doc": "spider",
              ".spi": "spider"}
FORMATS = ("relion", "cryosparc", "spider")


def detect_format(path, to=None):
    """The format of ``path``: ``to`` if given, else from its extension.

    An existing file with an unknown extension is recognised by its first
    bytes (numpy magic for ``.cs``, ``data_`` for STAR, a SPIDER doc comment).
    """
    if to:
        if to not in FORMATS:
            raise SpectoolsError(f"unknown format {to!r}; choose one of {', '.join(FORMATS)}")
        return to
    suffix = Path(path).suffix.lower()
    if suffix in EXTENSIONS and suffix != ".spi":
        return EXTENSIONS[suffix]
    if Path(path).is_file():
        with open(path, "rb") as fh:
            head = fh.read(4096)
        if head.startswith((b"\x93NUMPY", b"\x95CSDAT")):
            return "cryosparc"
        text = head.decode("latin-1")
        if "data_" in text and ("loop_" in text or "_rln" in text):
            return "relion"
        if suffix == ".spi" or text.lstrip().startswith(";"):
            return "spider"
    elif suffix == ".spi":
        return "spider"
    raise SpectoolsError(
        f"unknown metadata format (extension {suffix or 'none'!r}); use .star, .cs, "
        ".dat/.doc (SPIDER) or give the format explicitly", path)


def read_particles(path, *, format=None, **options):
    """Read particle metadata into a :class:`~spectools.particles.ParticleTable`.

    Parameters
    ----------
    path : path-like
        A RELION ``.star``, a cryoSPARC ``.cs`` or a SPIDER alignment doc.
    format : {"relion", "cryosparc", "spider"}, optional
        Overrides detection from the extension and contents.
    **options
        Passed to the format's ``read``: e.g. ``passthrough`` and
        ``cs2d_convention`` (cryoSPARC), ``stack`` and ``registers``
        (SPIDER), ``pixel_size_a`` and ``search_dirs`` (all).
    """
    path = Path(path)
    regular_file(path)
    module = _module(detect_format(path, format))
    return module.read(path, **_applicable(options, "read", module))


def write_particles(table, path, *, format=None, **options):
    """Write a :class:`~spectools.particles.ParticleTable` atomically.

    Parameters
    ----------
    table : ParticleTable
    path : path-like
        Output file; image paths in it are written relative to its folder.
    format : {"relion", "cryosparc", "spider"}, optional
        Overrides detection from the extension.
    **options
        Passed to the format's ``write`` (e.g. ``relion_version``).
    """
    module = _module(detect_format(path, format) if format else _output_format(path))
    return module.write(table, path, **_applicable(options, "write", module))


def _output_format(path):
    suffix = Path(path).suffix.lower()
    if suffix not in EXTENSIONS:
        raise SpectoolsError(
            f"unknown output extension {suffix or 'none'!r}; use .star, .cs or .dat/.doc/.spi "
            "(SPIDER doc), or give the format explicitly", path)
    return EXTENSIONS[suffix]


def _applicable(options, verb, module):
    """The options ``module.verb`` takes; options of other formats are dropped (they do not
    apply, e.g. a cryoSPARC convention for a STAR file), unknown ones refused."""
    accepted = {f: set(inspect.signature(getattr(_module(f), verb)).parameters)
                for f in FORMATS}
    known = set().union(*accepted.values())
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown {verb} option{'s' * (len(unknown) > 1)} "
                        f"{', '.join(unknown)}; known: {', '.join(sorted(known - {'path', 'table'}))}")
    own = set(inspect.signature(getattr(module, verb)).parameters)
    return {k: v for k, v in options.items() if k in own}


def _module(name):
    from . import cryosparc, relion, spider
    return {"relion": relion, "cryosparc": cryosparc, "spider": spider}[name]
