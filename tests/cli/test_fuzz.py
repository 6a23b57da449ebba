"""Fuzzing the command line: no broken file or request crashes, hangs, or costs an input.

Each campaign copies real fixtures (``../shared/fixtures/real``, skipped when
absent) and simulated files into a fresh folder, breaks one thing (truncation,
byte flips, an MRC or SPIDER header word, a STAR token, label or column, a
``.cs`` field's dtype, shape or values, a FIFO or symbolic-link loop in place
of a file, a bad option value, an output path that is an input) and runs the
real command in-process, checking for every run what
:func:`helpers.fuzz.run_checked` lists: exit status 0 or 2, no traceback, at
most 3 lines on error, nothing left on error, every input's checksum
unchanged, no warning.  The runs are seeded: a failure names its seed and run
so that it can be replayed.

``SPECTOOLS_FUZZ_RUNS=K`` multiplies the number of runs (a longer campaign),
``SPECTOOLS_FUZZ_SEED`` changes the seed, ``SPECTOOLS_FUZZ_VERBOSE=1`` prints
every run (with ``pytest -s``).  Memory estimates are tested
against a machine of 2 GB here (and the address space is capped a few GB
above the process's size), so a request that slips past them fails fast
instead of loading the machine.
"""
import os
import shutil
import time
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from helpers import fuzz
from helpers.fixtures import SHARED_REAL
from spectools.cli.main import main
from spectools.io import memory
from spectools.io.spiderimage import write_spider

RUNS = int(os.environ.get("SPECTOOLS_FUZZ_RUNS", "1"))
SEED = int(os.environ.get("SPECTOOLS_FUZZ_SEED", "0"))
#: Print every run (with ``pytest -s``).
VERBOSE = bool(os.environ.get("SPECTOOLS_FUZZ_VERBOSE"))
#: The machine the memory estimates are checked against in these runs.
FUZZ_MEMORY_BYTES = 2 << 30
#: Real fixtures used: (folder, files), each a dataset of its own.
REAL = {
    "relion31": ("cryodrgn", ["relion31.star", "relion31.v2.star", "relion31.mrcs"]),
    "empiar": ("cryodrgn", ["empiar_10076_7.cs", "empiar_10076_7.star", "empiar_10076_7.mrc"]),
    "j2": ("cryodrgn", ["cryosparc_J2_particles_exported.cs"]),
    "relion5": ("cryodrgn", ["relion5.star"]),
    "aspire": ("ASPIRE-Python", ["sample_particles_relion31.star",
                                 "sample_particles_relion30.star", "sample.mrcs"]),
    "spider": ("SPIDER", ["apsh_ali_doc.dat", "apref_ali_doc.dat", "apshc_ali_doc.dat",
                          "apshc2_ali_doc.dat", "sav_align_doc.dat", "sav_nat_part_stk.mrcs"]),
    "starfile": ("starfile", ["empty_loop.star", "one_loop.star", "rln3.1_data_style.star",
                              "two_single_line_loop_blocks.star"]),
    "tiff": ("cylindra", ["13pf_MT.tif"]),
    "ctf": ("topaz", ["ctf_params.star"]),
}


# ---------------------------------------------------------------------- the datasets


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """One folder per dataset, built once: simulated particles and micrographs, real fixtures."""
    root = tmp_path_factory.mktemp("fuzz_base")
    code = main(["simulate", "-o", str(root / "sim"), "--n", "4", "--box", "32",
                 "--stack-size", "4", "--helix", "rise=15,twist=50", "--helix",
                 "rise=20,twist=-30", "--noise", "0.5"])
    assert code == 0
    _micrographs(root / "mics")
    available = {}
    for name, (folder, files) in REAL.items():
        if all((SHARED_REAL / folder / f).is_file() for f in files):
            (root / name).mkdir()
            for f in files:
                shutil.copy(SHARED_REAL / folder / f, root / name / f)
            available[name] = root / name
    if "spider" in available:
        data = mrcfile.read(available["spider"] / "sav_nat_part_stk.mrcs")
        write_spider(available["spider"] / "stk.spi", data.astype(np.float32), pixel_size_a=2.0,
                     stack=True)
    return {"root": root, "real": available}


def _micrographs(folder):
    """A micrograph, a 4-frame movie, a gain and a dark, 128 px at 1.2 A (CTF-like rings)."""
    folder.mkdir()
    rng = np.random.default_rng(1)
    y, x = np.mgrid[-64:64, -64:64]
    rings = 1 + 0.3 * np.cos(0.02 * (x ** 2 + y ** 2))
    frames = (rng.poisson(5, size=(4, 128, 128)) * rings).astype(np.float32)
    for name, data in (("m.mrc", frames.sum(0)), ("movie.mrc", frames),
                       ("gain.mrc", np.ones((128, 128), np.float32) * 1.1),
                       ("dark.mrc", np.zeros((128, 128), np.float32) + 0.1)):
        with mrcfile.new(folder / name) as mrc:
            mrc.set_data(data)
            mrc.voxel_size = 1.2


@pytest.fixture(scope="module", autouse=True)
def small_machine():
    """Memory estimates against a 2 GB machine; the address space capped above our size."""
    original = memory.available_memory_bytes

    def capped():
        real = original()
        return FUZZ_MEMORY_BYTES if real is None else min(real, FUZZ_MEMORY_BYTES)

    memory.available_memory_bytes = capped
    limit = _cap_address_space(8 << 30)
    yield
    memory.available_memory_bytes = original
    if limit is not None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, limit)


def _cap_address_space(extra):
    """Cap the virtual memory at its current size + ``extra`` (a slipped request fails fast)."""
    try:
        import resource
        with open("/proc/self/statm") as fh:
            size = int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        old = resource.getrlimit(resource.RLIMIT_AS)
        cap = size + extra
        if old[1] != resource.RLIM_INFINITY:
            cap = min(cap, old[1])
        resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
        return old
    except (ImportError, OSError, ValueError):
        return None


# ---------------------------------------------------------------------- the campaign


def campaign(base, tmp_path, family, runs, make_case):
    """Run ``runs`` seeded cases; fail with every broken promise found.

    ``make_case(rng, work)`` copies what it needs into ``work``, breaks
    something, and returns ``(argv, description)`` or ``(argv, description,
    inputs)`` to name the run's inputs (default: every file in ``work``).
    """
    failures, codes = [], {}
    started = time.perf_counter()
    for run in range(runs * RUNS):
        rng = np.random.default_rng([SEED, family, run])
        work = tmp_path / f"run{run}"
        work.mkdir()
        argv, what, *inputs = make_case(rng, work)
        outcome = fuzz.run_checked(argv, work, *inputs)
        codes[outcome.code] = codes.get(outcome.code, 0) + 1
        if VERBOSE:
            print(f"[{family}.{run}] {what} | {' '.join(outcome.argv)} -> {outcome.code} "
                  f"{outcome.first_line()[:200]}")
        if outcome.problems:
            failures.append(f"seed {SEED} family {family} run {run}: {what}; spectools "
                            f"{' '.join(outcome.argv)} -> {outcome.code}: {outcome.problems} "
                            f"{outcome.first_line()[:300]}")
        shutil.rmtree(work)
    seconds = time.perf_counter() - started
    print(f"fuzz family {family}: {runs * RUNS} runs in {seconds:.1f} s, exit codes {codes}, "
          f"{len(failures)} broken")
    assert not failures, f"{len(failures)} of {runs * RUNS} runs broke the contract:\n" + \
        "\n".join(failures[:12])
    return codes


def copy(dataset, work):
    """Copy a dataset folder's files into ``work``."""
    for item in Path(dataset).iterdir():
        shutil.copy(item, work / item.name)


def particle_command(rng, meta, stack=None, extra=(), kind=None):
    """A particle job on ``meta`` (random unless ``kind``): info, convert, stack, avgps, index."""
    kind = kind or str(rng.choice(["info", "convert", "stack", "avgps", "avgps", "index"]))
    argv = [kind, meta]
    if stack:
        argv += ["--stack", stack]
    if kind == "convert":
        argv += ["-o", f"out/converted{rng.choice(['.star', '.cs', '.dat'])}"]
        argv += ["--allow-missing"] * int(rng.integers(2))
    elif kind == "stack":
        argv += ["-o", f"out/aligned{rng.choice(['.mrcs', '.spi'])}", "--threads", "1"]
    elif kind == "avgps":
        argv += ["-o", "out/ps.mrc", "--threads", str(rng.choice(["1", "2"]))]
        argv += ["--per-class"] * int(rng.integers(2))
        # measuring the axis angle is the slow part of these small runs; fuzz it rarely
        argv += ["--axis-angle", "0"] if rng.random() < 0.8 else []
    elif kind == "refine":
        argv += ["-o", f"out/refined{rng.choice(['.star', '.cs'])}", "--class-averages",
                 "canonical.mrcs", "--threads", "1"]
    elif kind == "index":
        argv += ["-o", "out/candidates.csv", "--diameter", str(rng.choice(["60", "90"])),
                 "--threads", "1", "--axis-angle", "0"]
    if kind != "info" and rng.random() < 0.3:
        argv += ["--pixel-size", "2"]
    return argv + list(extra)


def real_dataset(base, rng, names):
    """A real fixture dataset (skips when ``../shared`` is absent)."""
    present = [n for n in names if n in base["real"]]
    if not present:
        pytest.skip(f"real fixtures {names} not available ({SHARED_REAL} is absent)")
    return base["real"][str(rng.choice(present))]


# ---------------------------------------------------------------------- the families


STAR_SOURCES = ["relion31", "aspire", "empiar", "relion5", "starfile"]


def metadata_in(base, rng, work, suffix, real_names):
    """Copy the simulated dataset or a real one into ``work``; one of its ``suffix`` files."""
    if rng.random() < 0.5:
        copy(base["root"] / "sim", work)
        return f"particles{suffix}"
    copy(real_dataset(base, rng, real_names), work)
    return str(rng.choice(sorted(p.name for p in work.glob(f"*{suffix}"))))


def test_broken_star_files(base, tmp_path):
    def case(rng, work):
        meta = metadata_in(base, rng, work, ".star", STAR_SOURCES)
        if rng.random() < 0.25:
            label = str(rng.choice(["rlnVoltage", "rlnImagePixelSize", "rlnImageSize",
                                    "rlnImageDimensionality", "rlnClassNumber", "rlnAnglePsi",
                                    "rlnOpticsGroup", "rlnAmplitudeContrast", "rlnDefocusU"]))
            what = fuzz.set_star_value(rng, work / meta, label, fuzz.TOKENS)
        else:
            what = fuzz.mutate_text(rng, work / meta)
        return particle_command(rng, meta), f"{meta}: {what}"
    campaign(base, tmp_path, 1, 30, case)


def test_broken_cs_files(base, tmp_path):
    def case(rng, work):
        meta = metadata_in(base, rng, work, ".cs", ["empiar", "j2"])
        if rng.random() < 0.3:  # a broken passthrough file joined to an intact dataset
            shutil.copy(work / meta, work / "passthrough.cs")
            what = fuzz.mutate_cs(rng, work / "passthrough.cs")
            return particle_command(rng, meta, extra=["--passthrough", "passthrough.cs"]), \
                f"passthrough of {meta}: {what}"
        what = fuzz.mutate_cs(rng, work / meta)
        return particle_command(rng, meta), f"{meta}: {what}"
    campaign(base, tmp_path, 2, 24, case)


def test_broken_spider_docs_and_images(base, tmp_path):
    def case(rng, work):
        copy(real_dataset(base, rng, ["spider"]), work)
        docs = sorted(p.name for p in work.glob("*_doc.dat"))
        doc = str(rng.choice(docs))
        stack = str(rng.choice(["sav_nat_part_stk.mrcs", "stk.spi"]))
        if rng.random() < 0.5:
            what = fuzz.mutate_text(rng, work / doc)
        else:
            what = fuzz.mutate_spider_image(rng, work / "stk.spi") if stack == "stk.spi" else \
                fuzz.mutate_mrc(rng, work / stack)
        return particle_command(rng, doc, stack=stack, extra=["--pixel-size", "2"]), \
            f"{doc} with {stack}: {what}"
    campaign(base, tmp_path, 3, 16, case)


def test_broken_referenced_stacks(base, tmp_path):
    def case(rng, work):
        if rng.random() < 0.6:
            copy(base["root"] / "sim", work)
            meta = str(rng.choice(["particles.star", "particles.cs"]))
            stacks = ["segments_001.mrcs", "segments_002.mrcs", "canonical.mrcs"]
        else:
            copy(real_dataset(base, rng, ["relion31", "aspire", "empiar"]), work)
            meta = str(rng.choice(sorted(p.name for p in work.iterdir()
                                         if p.suffix in (".star", ".cs"))))
            stacks = sorted(p.name for p in work.iterdir() if p.suffix in (".mrcs", ".mrc"))
        averages = "canonical.mrcs" in stacks and rng.random() < 0.3
        stack = "canonical.mrcs" if averages else str(rng.choice(
            [s for s in stacks if s != "canonical.mrcs"]))
        if rng.random() < 0.25:
            what = fuzz.special_file(rng, work / stack)
        else:
            what = fuzz.mutate_mrc(rng, work / stack)
        argv = particle_command(rng, meta, kind="avgps" if averages else None)
        if averages:  # broken class averages
            argv += ["--class-averages", "canonical.mrcs"]
        if argv[0] in ("stack", "avgps") and rng.random() < 0.3:
            argv += ["--skip-missing"]
        return argv, f"{meta}, {stack}: {what}"
    campaign(base, tmp_path, 4, 30, case)


def thon_command(rng, inputs):
    argv = ["thon", *inputs, "-o", str(rng.choice(["out", "."])), "--tile", "64", "--box", "64",
            "--threads", "1"]
    if rng.random() < 0.3:
        argv += ["--defocus", "12000"]
    return argv


def test_broken_micrographs_and_references(base, tmp_path):
    def case(rng, work):
        copy(base["root"] / "mics", work)
        if "tiff" in base["real"]:
            copy(base["real"]["tiff"], work)
        names = sorted(p.name for p in work.iterdir())
        target = str(rng.choice(names))
        choice = rng.random()
        if choice < 0.2:
            what = fuzz.special_file(rng, work / target)
        elif target.endswith(".mrc"):
            what = fuzz.mutate_mrc(rng, work / target)
        else:
            what = fuzz.truncate(rng, work / target) if rng.random() < 0.5 else \
                fuzz.flip_bytes(rng, work / target)
        inputs = [str(rng.choice(["m.mrc", "movie.mrc", "13pf_MT.tif"] if "tiff" in base["real"]
                                 else ["m.mrc", "movie.mrc"]))]
        argv = thon_command(rng, inputs)
        if rng.random() < 0.5:
            argv += ["--gain", "gain.mrc"]
        if rng.random() < 0.3:
            argv += ["--dark", "dark.mrc"]
        if inputs[0].endswith(".tif"):
            argv += ["--pixel-size", "10.5"]
        return argv, f"{target}: {what}"
    campaign(base, tmp_path, 5, 6, case)


#: Bad (and some good) option values per command, tried one or two at a time.
OPTION_POOLS = {
    "avgps": {"--pad": ["1", "3", "0", "-1", "1000", "abc"], "--mask": ["circle", "none", "x"],
              "--tube-diameter": ["40", "1e6", "0", "nan"],
              "--axis-angle": ["30", "nan", "inf", "1e20", "auto"],
              "--ctf": ["wiener", "none"], "--wiener-constant": ["0", "-1", "1e30"],
              "--overlay": ["twist=10,rise=5", "twist=nan,rise=1", "rise=0,twist=1", "junk",
                            "twist=1,rise=1e-9"],
              "--resolution-marks": ["10,5", "0", "abc", "1e-30"],
              "--classes": ["1", "0", "1-3", "5-1", "1-100000000000", "-1", "abc", "7"],
              "--top-classes": ["1", "0", "100"], "--min-posterior": ["0.5", "1.5", "nan"],
              "--threads": ["0", "-1", "3"], "--pixel-size": ["0", "-2", "1e-30", "1e30"],
              "--class-averages": ["segments_001.mrcs", "nowhere.mrcs", "particles.star"],
              "--angles": ["filament", "alignment", "x"],
              "--group-by": ["class", "filament", "micrograph", "rlnNothing", "", "a b"],
              "--min-group": ["1", "0", "-3", "1000", "abc"]},
    "refine": {"--refine-psi": ["5", "0", "-1", "90", "abc", "1e-9"],
               "--refine-shift": ["2", "-1", "1e9", "nan"],
               "--min-correlation": ["0.5", "2", "nan", "-5"],
               "--class-averages": ["nowhere.mrcs", "particles.star", "segments_001.mrcs"],
               "--tube-diameter": ["1e6", "0", "nan"], "--classes": ["1", "7", "abc"]},
    "stack": {"--box": ["16", "48", "100000", "1", "0"], "--fill": ["noise", "zero", "x"],
              "--axis": ["vertical", "x"], "--seed": ["-1", str(2 ** 70), "abc"],
              "--metadata": ["star,cs,doc", "bad", ""], "--voltage": ["nan", "0", "-300"],
              "--cs": ["-1", "inf"], "--amplitude-contrast": ["1", "2", "-0.5"],
              "--interpolation": ["linear", "cubic"], "--threads": ["0", "1000000"]},
    "convert": {"--to": ["relion", "cryosparc", "spider", "x"],
                "--relion-version": ["3.0", "5", "9"], "--box": ["0", "-1", "100000000000"]},
    "thon": {"--pixel-size": ["0", "nan", "1e-30", "1e30"], "--frames": ["1:", "5:2", "abc", ":0"],
             "--group": ["2", "0", "100"], "--gain-rot": ["1", "4"], "--gain-flip": ["2", "3"],
             "--hot-sigma": ["3", "0", "-1"], "--method": ["whole", "x"],
             "--tile": ["32", "1", "2", "16", "100000"], "--overlap": ["0.99", "1", "-0.1"],
             "--target-apix": ["1.4", "1e9", "1e-9", "0", "1e-3"],
             "--box": ["1", "2", "100000", "4"], "--min-res": ["0", "1e-9", "1e9"],
             "--max-res": ["1e9", "1e-9", "0.1"], "--defocus": ["0", "1e12", "1e-12", "-5"],
             "--defocus-v": ["1e12"], "--defocus-angle": ["nan", "1e30"],
             "--voltage": ["0", "1e-9", "1e9"], "--cs": ["nan", "-1", "1e9"],
             "--amplitude-contrast": ["2", "0.99"], "--ctf-from": ["ctf.star", "m.mrc", "none"]},
    "simulate": {"--n": ["0", "-1", "1000000000", "1e9"], "--box": ["15", "100000", "0"],
                 "--rise": ["1e-9", "1e9", "0"], "--twist": ["nan", "1e30"],
                 "--radius": ["1e9", "-1"], "--csym": ["0", "1000000"],
                 "--sigma": ["1e-9", "1e9"], "--pixel-size": ["1e-9", "1e9", "0"],
                 "--noise": ["-1", "1e30"], "--shift-sigma": ["1e9", "-1"],
                 "--mirror-fraction": ["2", "0.5", "-1"], "--defocus": ["1e12", "1e-12"],
                 "--astigmatism": ["1e9"], "--stack-size": ["0", "1"],
                 "--helix": ["rise=0", "junk", "csym=0.5", "rise=1e-9"]},
}


def test_bad_option_values(base, tmp_path):
    def case(rng, work):
        # thon draws its pictures in every run: the slowest command, fuzzed less often
        command = str(rng.choice(sorted(OPTION_POOLS), p=[0.2, 0.2, 0.15, 0.15, 0.15, 0.15]))
        pool = OPTION_POOLS[command]
        if command == "thon":
            copy(base["root"] / "mics", work)
            if "ctf" in base["real"]:
                shutil.copy(base["real"]["ctf"] / "ctf_params.star", work / "ctf.star")
            argv = thon_command(rng, ["m.mrc"])
        elif command == "simulate":
            argv = ["simulate", "-o", "sim", "--n", "2", "--box", "16", "--stack-size", "2"]
        else:
            copy(base["root"] / "sim", work)
            argv = particle_command(rng, str(rng.choice(["particles.star", "particles.cs"])),
                                    kind=command)
            if command == "convert":
                argv = _replace_output(argv, str(rng.choice(["out/c.star", "out/c.cs"])))
        chosen = rng.choice(sorted(pool), size=int(rng.integers(1, 3)), replace=False)
        for option in chosen:
            argv += [str(option), str(rng.choice(pool[option]))]
        return argv, f"{command} options {list(chosen)}"
    campaign(base, tmp_path, 6, 36, case)


def _replace_output(argv, output):
    """``argv`` with the value of ``-o`` replaced."""
    argv = list(argv)
    argv[argv.index("-o") + 1] = output
    return argv


def test_outputs_that_are_inputs_or_cannot_be_written(base, tmp_path):
    """Outputs named like an input, a referenced stack, a side file, or in impossible folders."""
    def case(rng, work):
        copy(base["root"] / "sim", work)
        (work / "afile").write_text("not a folder")
        (work / "folder").mkdir()
        (work / "folder" / "keep.txt").write_text("keep")
        os.symlink("loop_b", work / "loop_a")
        os.symlink("loop_a", work / "loop_b")
        meta = str(rng.choice(["particles.star", "particles.cs"]))
        command = str(rng.choice(["stack", "avgps", "convert", "thon"], p=[0.3, 0.3, 0.3, 0.1]))
        names = {"stack": ["segments_001.mrcs", "particles.mrcs", "particles.spi",
                           "afile/x.mrcs", "folder", "loop_a", "out/deep/er/x.mrcs",
                           "segments_002.mrc"],
                 "avgps": ["segments_001.mrc", "particles.mrc", "afile/x.mrc", "folder",
                           "loop_a", "canonical.mrc", "truth.mrc"],
                 "convert": [meta, "particles.star", "segments_001.mrcs", "afile/c.star",
                             "folder", "loop_a", "truth.json"],
                 "thon": [".", "afile", "folder", "loop_a"]}[command]
        output = str(rng.choice(names))
        if command == "thon":
            argv = ["thon", "segments_001.mrcs", "-o", output, "--tile", "16", "--box", "32",
                    "--pixel-size", "2", "--threads", "1"]
            if rng.random() < 0.5:
                # a gain named like the sidecar of the input's spectrum
                shutil.copy(work / "segments_002.mrcs", work / "segments_001.json")
                argv += ["--gain", "segments_001.json"]
        else:
            argv = [command, meta, "-o", output]
            if command == "stack" and rng.random() < 0.5:
                argv += ["--per-class"]
            if command == "avgps" and rng.random() < 0.5:
                argv += ["--per-class", "--threads", "1"]
            if command == "convert" and output in ("segments_001.mrcs", "truth.json"):
                argv += ["--to", "relion"]
        inputs = [meta, "segments_001.mrcs", "segments_002.mrcs", "segments_001.json"]
        return argv, f"{command} -o {output}", inputs
    campaign(base, tmp_path, 7, 24, case)
