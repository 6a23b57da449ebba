"""Issue 10's cases, one regression test each: inputs never overwritten, one line for broken files.

Every run goes through the real command (:func:`spectools.cli.main.main`) and
:func:`helpers.fuzz.run_checked`, which also checks that an error leaves no
file or folder behind and that no input changes.
"""
import contextlib
import io
import json
import os
import shutil
import signal
import tracemalloc
import warnings

import mrcfile
import numpy as np
import pytest

from helpers import fuzz
from helpers.fixtures import real_fixture
from spectools.cli.main import main
from spectools.io import memory


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """8 simulated segments (2 classes) in two 32-px stacks, with STAR and .cs metadata."""
    root = tmp_path_factory.mktemp("bad_input")
    assert main(["simulate", "-o", str(root / "sim"), "--n", "4", "--box", "32",
                 "--stack-size", "4", "--helix", "rise=15,twist=50", "--helix",
                 "rise=20,twist=-30"]) == 0
    return root / "sim"


@pytest.fixture
def work(tmp_path, dataset):
    """A fresh copy of the dataset."""
    for item in dataset.iterdir():
        shutil.copy(item, tmp_path / item.name)
    return tmp_path


@pytest.fixture
def no_hang():
    """Fail a test that blocks (e.g. on a FIFO) instead of hanging the suite."""
    def expire(signum, frame):
        raise TimeoutError("the command blocked")
    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def refused(work, *argv, protected=None):
    """Run a command that must fail cleanly; its one-line message."""
    outcome = fuzz.run_checked(argv, work, protected)
    assert outcome.code == 2, (outcome.code, outcome.stderr)
    assert not outcome.problems, outcome.problems
    assert len(outcome.stderr.strip().splitlines()) == 1, outcome.stderr
    return outcome.first_line()


def succeeds(work, *argv):
    outcome = fuzz.run_checked(argv, work)
    assert outcome.code == 0 and not outcome.problems, (outcome.problems, outcome.stderr)
    return outcome


def star_rows(path):
    lines = path.read_text().splitlines()
    return lines, [i for i, line in enumerate(lines) if "@" in line]


def micrograph(path, shape=(128, 128), value=None, pixel_size=1.2):
    data = np.random.default_rng(0).poisson(5, shape).astype(np.float32)
    if value is not None:
        data[...] = value
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(data)
        mrc.voxel_size = pixel_size
    return path


# ------------------------------------------------------------------ inputs overwritten


def test_stack_over_a_referenced_stack_is_refused(work):
    line = refused(work, "stack", "particles.star", "-o", "segments_001.mrcs")
    assert "segments_001.mrcs: output path is also an input (a stack the metadata references" \
        in line and "refusing to overwrite an input" in line


@pytest.mark.parametrize("meta, output", [("particles.star", "particles.mrcs"),
                                          ("particles.star", "particles.spi"),
                                          ("particles.cs", "particles.mrcs")])
def test_side_files_never_replace_the_metadata(work, meta, output):
    line = refused(work, "stack", meta, "-o", output)
    assert line.startswith(f"spectools stack: error: {meta}: output path is also an input "
                           "(the metadata file")


def test_side_doc_never_replaces_the_spider_doc(work):
    doc = real_fixture("SPIDER", "apsh_ali_doc.dat")
    shutil.copy(doc, work / "x_doc.spi")  # the doc the output x.spi would get beside it
    shutil.copy(real_fixture("SPIDER", "sav_nat_part_stk.mrcs"), work / "stk.mrcs")
    line = refused(work, "stack", "x_doc.spi", "--stack", "stk.mrcs", "--pixel-size", "2",
                   "-o", "x.spi")
    assert "x_doc.spi: output path is also an input (the metadata file" in line


def test_per_class_spectra_never_replace_an_input_stack(work):
    os.rename(work / "segments_002.mrcs", work / "o_classes.mrcs")
    star = work / "particles.star"
    star.write_text(star.read_text().replace("segments_002.mrcs", "o_classes.mrcs"))
    line = refused(work, "avgps", "particles.star", "-o", "o.mrc", "--per-class")
    assert "o_classes.mrcs: output path is also an input (a stack the metadata references" \
        in line


def test_thon_never_replaces_its_gain(tmp_path):
    micrograph(tmp_path / "m.mrc")
    micrograph(tmp_path / "m.json", value=1.0)  # an MRC gain named like m.mrc's sidecar
    line = refused(tmp_path, "thon", "m.mrc", "--gain", "m.json", "-o", ".", "--tile", "64")
    assert "m.json: output path is also an input (the gain reference" in line


def test_two_thon_inputs_of_one_name_are_refused(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        micrograph(tmp_path / folder / "m.mrc")
    line = refused(tmp_path, "thon", "a/m.mrc", "b/m.mrc", "-o", "t", "--tile", "64")
    assert line.endswith("t/m_ps.mrc: two outputs of this run would share this path (the "
                         "spectrum of a/m.mrc and the spectrum of b/m.mrc); nothing written")


def test_outputs_that_alias_an_input_through_links(work):
    os.link(work / "segments_001.mrcs", work / "hard.mrcs")
    os.symlink("particles.star", work / "soft.star")
    assert "also an input" in refused(work, "stack", "particles.star", "-o", "hard.mrcs")
    assert "also an input" in refused(work, "convert", "particles.star", "-o", "soft.star")
    assert "also an input" in refused(work, "convert", "particles.star", "-o",
                                      "../" + work.name + "/particles.star")


# ------------------------------------------------------------------ tracebacks


def test_a_particle_block_without_rows(work):
    lines, rows = star_rows(work / "particles.star")
    (work / "empty.star").write_text("\n".join(lines[:rows[0]]) + "\n")
    out = succeeds(work, "info", "empty.star")
    assert out.code == 0
    assert refused(work, "avgps", "empty.star", "-o", "x.mrc").endswith(
        "empty.star: holds no particles")


@pytest.mark.parametrize("label", ["rlnAnglePsi", "rlnImageName"])
def test_a_repeated_label(work, label):
    lines, rows = star_rows(work / "particles.star")
    at = next(i for i, line in enumerate(lines) if line.startswith(f"_{label} "))
    column = int(lines[at].split("#")[1]) - 1
    lines.insert(at + 1, f"_{label}")
    for i in rows:
        tokens = lines[i + 1].split()
        lines[i + 1] = " ".join(tokens[:column + 1] + [tokens[column]] + tokens[column + 1:])
    (work / "dup.star").write_text("\n".join(lines) + "\n")
    for command in (["info"], ["avgps", "-o", "x.mrc"]):
        line = refused(work, command[0], "dup.star", *command[1:])
        assert line.endswith(f"dup.star: label _{label} appears more than once in the header "
                             "of data_particles")


def test_a_symlink_loop(work):
    os.symlink("loop_b", work / "loop_a")
    os.symlink("loop_a", work / "loop_b")
    assert refused(work, "info", "loop_a").endswith("loop_a: is a loop of symbolic links")
    assert refused(work, "convert", "particles.star", "-o", "loop_a").endswith(
        "loop_a: output path is a loop of symbolic links")


@pytest.mark.parametrize("field, shape, problem", [
    ("blob/shape", (), "field blob/shape holds 1 uint32 value(s) per particle; expected 2 "
                       "integer(s)"),
    ("alignments2D/shift", (), "field alignments2D/shift holds 1 float32 value(s) per "
                               "particle; expected 2 or 3 number(s)"),
    ("blob/idx", "S8", "field blob/idx holds text per particle; expected 1 integer(s)"),
    ("blob/psize_A", "S8", "field blob/psize_A holds text per particle; expected 1 number(s)"),
])
def test_cs_fields_of_the_wrong_shape_or_type(work, field, shape, problem):
    array = np.load(work / "particles.cs")
    fields = []
    for name in array.dtype.names:
        dtype = array.dtype.fields[name][0]
        fields.append((name, dtype if name != field else
                       (np.dtype(shape) if isinstance(shape, str) else dtype.base)))
    out = np.zeros(len(array), fields)
    for name in array.dtype.names:
        out[name] = array[name] if name != field else (
            array[name].astype(shape) if isinstance(shape, str) else array[name].reshape(
                len(array), -1)[:, 0])
    np.save(open(work / "bad.cs", "wb"), out)
    assert refused(work, "info", "bad.cs").endswith(f"bad.cs: {problem}")


def test_a_cs_dataset_without_rows(work):
    np.save(open(work / "zero.cs", "wb"), np.load(work / "particles.cs")[:0])
    assert "particles    0" in succeeds(work, "info", "zero.cs").stderr + _stdout(
        work, "info", "zero.cs")
    assert refused(work, "stack", "zero.cs", "-o", "x.mrcs").endswith("holds no particles")


def _stdout(work, *argv):
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(work)
    try:
        with contextlib.redirect_stdout(out):
            main(list(argv))
    finally:
        os.chdir(cwd)
    return out.getvalue()


def test_output_folders_where_nothing_can_be_made(work, monkeypatch):
    (work / "afile").write_text("x")
    assert refused(work, "convert", "particles.star", "-o", "afile/x.cs").endswith(
        "afile: cannot be an output folder: it is a file")
    assert refused(work, "convert", "particles.star", "-o", "afile/deeper/x.cs").endswith(
        "afile/deeper: cannot create the output folder: afile is a file")
    # a folder the kernel will not let us write in (root passes os.access: fake the refusal)
    import tempfile

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", denied)
    line = refused(work, "convert", "particles.star", "-o", "new/x.cs")
    assert line.endswith("new: cannot create a file in the output folder: Permission denied")


def test_absurd_option_values_are_one_line(work, tmp_path):
    micrograph(work / "m.mrc")
    assert "a target pixel size of 1e+09 A leaves 0 of the spectrum's 64 pixels" in refused(
        work, "thon", "m.mrc", "-o", "t", "--tile", "64", "--target-apix", "1e9")
    # finer than the data: the spectrum stops at the data's Nyquist, and says so
    assert main(["thon", str(work / "m.mrc"), "-o", str(work / "t"), "--tile", "64",
                 "--target-apix", "1e-9", "--defocus", "15000"]) == 0
    side = json.loads((work / "t" / "m.json").read_text())
    assert any("Nyquist" in note for note in side["notes"])
    assert "argument --seed: must be 0 or more: '-1'" in refused(
        work, "stack", "particles.star", "-o", "s.mrcs", "--fill", "noise", "--seed", "-1")
    for value in ("nan", "inf"):
        assert "argument --axis-angle: not 'auto' or an angle in degrees" in refused(
            work, "avgps", "particles.star", "-o", "x.mrc", "--axis-angle", value)


# ------------------------------------------------------------------ hangs and memory


@pytest.mark.parametrize("command", ["info", "avgps", "convert"])
def test_a_fifo_for_a_referenced_stack_is_never_read(work, no_hang, command):
    os.unlink(work / "segments_002.mrcs")
    os.mkfifo(work / "segments_002.mrcs")
    argv = {"info": ["info", "particles.star"],
            "avgps": ["avgps", "particles.star", "-o", "x.mrc"],
            "convert": ["convert", "particles.star", "-o", "x.cs"]}[command]
    if command == "info":
        out = _stdout(work, *argv)
        assert "1 unreadable" in out and "is a named pipe (FIFO)" in out
    else:
        assert "segments_002.mrcs: is a named pipe (FIFO), not a regular file" in refused(
            work, *argv)


def test_a_fifo_micrograph_or_gain_is_never_read(tmp_path, no_hang):
    os.mkfifo(tmp_path / "fifo.mrc")
    micrograph(tmp_path / "m.mrc")
    assert refused(tmp_path, "thon", "fifo.mrc", "-o", "t", "--tile", "64").endswith(
        "fifo.mrc: is a named pipe (FIFO), not a regular file; not read, as reading it "
        "could wait for ever")
    assert "fifo.mrc: is a named pipe" in refused(tmp_path, "thon", "m.mrc", "--gain",
                                                  "fifo.mrc", "-o", "t", "--tile", "64")


def test_a_huge_extended_header_costs_no_memory(work):
    data = bytearray((work / "segments_001.mrcs").read_bytes())
    data[92:96] = np.int32(2 ** 31 - 1).tobytes()  # nsymbt
    (work / "segments_001.mrcs").write_bytes(bytes(data))
    tracemalloc.start()
    out = _stdout(work, "info", "particles.star")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6, peak
    assert "2 found (1 unreadable: see below)" in out
    assert "segments_001.mrcs: truncated MRC file: header promises 4 images of 32x32 " \
           "(2147501055 bytes)" in out


def test_info_flags_a_truncated_stack(work):
    (work / "segments_001.mrcs").write_bytes((work / "segments_001.mrcs").read_bytes()[:1025])
    out = _stdout(work, "info", "particles.star")
    assert "2 referenced, 2 found (1 unreadable: see below), 0 missing" in out
    assert "PROBLEM      " in out and "but the file has 1025" in out


@pytest.fixture
def four_gb(monkeypatch):
    """A machine with 4 GB available, whatever this one has."""
    monkeypatch.setattr(memory, "available_memory_bytes", lambda: 4 << 30)


@pytest.mark.parametrize("argv, what", [
    (["stack", "particles.star", "-o", "s.mrcs", "--box", "100000"],
     "an aligned stack of 100000-px images needs about "),
    (["avgps", "particles.star", "-o", "out/x.mrc", "--pad", "1000"],
     "an averaged spectrum padded to 32000 px (2 classes) needs about "),
    (["thon", "m.mrc", "-o", "out", "--tile", "64", "--box", "100000"],
     "a 100000-px Thon spectrum needs about "),
    (["simulate", "-o", "out", "--box", "100000", "--n", "2"],
     "simulating 2 segments of 100000 px needs about "),
    (["simulate", "-o", "out", "--n", "1000000000"],
     "simulating 1000000000 segments of 256 px needs about "),
    (["simulate", "-o", "out", "--rise", "1e-9", "--n", "2", "--box", "32"],
     "simulating 2 segments of 32 px with a rise of 1e-09 A ("),
])
def test_requests_beyond_the_machine_are_refused_before_anything_is_made(work, four_gb, argv,
                                                                         what):
    micrograph(work / "m.mrc")
    line = refused(work, *argv)
    assert what in line and "of memory but 4 GB are available" in line
    assert not (work / "out").exists()


def test_class_ranges_are_bounded(work):
    assert "class list '1-100000000000' names more than 100000 classes" in refused(
        work, "avgps", "particles.star", "-o", "x.mrc", "--classes", "1-100000000000")


# ------------------------------------------------------------------ bad input that "succeeded"


@pytest.mark.parametrize("value, problem", [(np.nan, "contains NaN or infinite values"),
                                            (np.inf, "contains NaN or infinite values"),
                                            (1e38, "has values up to 1e+38")])
def test_bad_pixels_anywhere_in_a_stack_are_named(work, value, problem):
    data = mrcfile.read(work / "segments_002.mrcs").copy()
    data[2, 31, 31] = value  # the last pixel of image 3
    raw = bytearray((work / "segments_002.mrcs").read_bytes())
    raw[1024:] = data.astype("<f4").tobytes()
    (work / "segments_002.mrcs").write_bytes(bytes(raw))
    for command in (["avgps", "-o", "x.mrc"], ["stack", "-o", "x.mrcs"]):
        line = refused(work, command[0], "particles.star", *command[1:])
        assert line.endswith(f"segments_002.mrcs: image 3 {problem}" + (
            " (1 pixel)" if "NaN" in problem else ", beyond ±1e+09 (corrupted data?)"))


def test_bad_pixels_in_a_movie_frame_are_named(tmp_path):
    frames = np.random.default_rng(0).poisson(5, (3, 128, 128)).astype(np.float32)
    frames[2, 127, 127] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile's statistics
        with mrcfile.new(tmp_path / "movie.mrc") as mrc:
            mrc.set_data(frames)
            mrc.voxel_size = 1.2
    line = refused(tmp_path, "thon", "movie.mrc", "-o", "t", "--tile", "64")
    assert line.endswith("movie.mrc: frame 3 contains NaN or infinite values (1 pixel)")


def set_column(path, label, value, row=None):
    lines, rows = star_rows(path)
    at = next(i for i, line in enumerate(lines) if line.startswith(f"_{label} "))
    column = int(lines[at].split("#")[1]) - 1
    block_rows = rows if label != "rlnVoltage" and label != "rlnImageDimensionality" else \
        [at + 1 + k for k, line in enumerate(lines[at + 1:]) if line and line[0].isdigit()][:1]
    for i in block_rows if row is None else [block_rows[row]]:
        tokens = lines[i].split()
        tokens[column] = value
        lines[i] = " ".join(tokens)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("label, value, problem", [
    ("rlnAnglePsi", "1e20", "psi_deg 1e+20 of particle 2 is beyond ±100000 degrees"),
    ("rlnClassNumber", "1e20", "rlnClassNumber value 1e+20 (row 2) is not an integer"),
    ("rlnClassNumber", "100000000", "class number 100000000 of particle 2 is not a class "
                                    "number (0 to 1000000)"),
    ("rlnClassNumber", "-1", "class number -1 of particle 2 is not a class number"),
    ("rlnImageDimensionality", "abc", "rlnImageDimensionality value 'abc' (row 1) is not a "
                                      "number"),
    ("rlnImageDimensionality", "3", "rlnImageDimensionality is 3 (row 1): spectools works on "
                                    "2D particle images"),
    ("rlnVoltage", "300000", "voltage_kv 300000 of particle 1 is outside (0, 5000] kV (volts "
                             "instead of kV?)"),
])
def test_absurd_metadata_values(work, label, value, problem):
    set_column(work / "particles.star", label, value,
               row=None if label in ("rlnVoltage", "rlnImageDimensionality") else 1)
    assert problem in refused(work, "info", "particles.star")


def test_unknown_voltage_is_a_note_and_a_clear_error_where_needed(work):
    set_column(work / "particles.star", "rlnVoltage", "nan")
    assert "assumed      voltage_kv unknown (NaN) for 8 of 8 particles" in _stdout(
        work, "info", "particles.star")
    assert "voltage_kv unknown" in refused(work, "convert", "particles.star", "-o", "x.star")


def test_spider_nz_minus_one_is_a_legacy_image_and_below_is_refused(tmp_path):
    from spectools.io.spiderimage import read_spider, write_spider
    image = np.arange(64, dtype=np.float32).reshape(8, 8)
    write_spider(tmp_path / "x.spi", image)
    raw = bytearray((tmp_path / "x.spi").read_bytes())
    raw[0:4] = np.float32(-1).tobytes()
    (tmp_path / "x.spi").write_bytes(bytes(raw))
    data, info = read_spider(tmp_path / "x.spi")
    np.testing.assert_array_equal(data, image[None])
    assert info["n"] == 1
    raw[0:4] = np.float32(-2).tobytes()
    (tmp_path / "y.spi").write_bytes(bytes(raw))
    from spectools.errors import SpectoolsError
    with pytest.raises(SpectoolsError, match=r"y.spi: inconsistent SPIDER header: NZ -2"):
        read_spider(tmp_path / "y.spi")


def test_thon_ctf_values_and_an_all_zero_gain(tmp_path):
    micrograph(tmp_path / "m.mrc")
    micrograph(tmp_path / "zero.mrc", value=0.0)
    base = ["thon", "m.mrc", "-o", "t", "--tile", "64", "--defocus", "15000"]
    assert "argument --cs: must be finite: 'nan'" in refused(tmp_path, *base, "--cs", "nan")
    assert "argument --amplitude-contrast: must be at least 0 and below 1: '2'" in refused(
        tmp_path, *base, "--amplitude-contrast", "2")
    assert "voltage 300000 kV is beyond any microscope" in refused(
        tmp_path, *base, "--voltage", "300000")
    assert refused(tmp_path, *base, "--gain", "zero.mrc").endswith(
        "zero.mrc: gain reference is 0 everywhere: every corrected frame would be 0")


def test_bad_pixels_in_a_class_average_are_named(work):
    averages = mrcfile.read(work / "canonical.mrcs")[:2].copy()
    averages[1, 31, 31] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # mrcfile's statistics
        with mrcfile.new(work / "averages.mrcs") as mrc:
            mrc.set_data(averages)
    line = refused(work, "avgps", "particles.star", "-o", "x.mrc", "--class-averages",
                   "averages.mrcs")
    assert line.endswith("averages.mrcs: class average 2 (image 2) contains NaN or infinite "
                         "values (1 pixel)")


def test_info_on_a_defocus_u_without_v(work):
    """Found by the fuzz test (seed 2): a KeyError in info's CTF summary."""
    star = work / "particles.star"
    lines = star.read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("_rlnMicrographName"))
    lines[at] = "_rlnDefocusU #9"
    star.write_text("\n".join(line.replace("micrographs/simulated_0001.mrc", "15000")
                              for line in lines) + "\n")
    assert "defocus 15000-15000 A" in _stdout(work, "info", "particles.star")
