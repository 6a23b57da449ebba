"""The Dask engine: avgps, stack and thon on a LocalCluster of two worker processes.

Every result is compared with the local engine's on the same data: spectra to
1e-6 relative, stacks bit for bit.  One cluster serves the whole module (its
start costs seconds).  Faults are injected in the worker processes
themselves (a worker that dies while running a task, a worker that may not
read a stack), through functions shipped by value.
"""
import errno
import json
import os
import sys
from pathlib import Path

import mrcfile
import numpy as np
import pytest

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")
cloudpickle = pytest.importorskip("cloudpickle")

from spectools.cli.main import main  # noqa: E402
from spectools.errors import SpectoolsError  # noqa: E402
from spectools.formats import read_particles  # noqa: E402
from spectools.pipelines.aligned_stack import StackOptions, run_stack  # noqa: E402
from spectools.pipelines.distributed import SCHEDULER_ENV, stack_groups  # noqa: E402
from spectools.pipelines.inputs import checked_table  # noqa: E402
from spectools.pipelines.spectrum_average import averaged_power_spectrum  # noqa: E402
from spectools.pipelines.thon import ThonOptions, run_thon  # noqa: E402
from spectools.ops.ctf import CTF  # noqa: E402
from spectools.simulate.dataset import simulate_dataset  # noqa: E402
from spectools.simulate.micrographs import simulate_micrograph, write_movie  # noqa: E402
from spectools.simulate.segments import Helix  # noqa: E402

# The fault injectors below run inside the worker processes, which cannot import this file.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

BOX, PSIZE = 64, 2.0
HELICES = [Helix(rise_a=15.0, twist_deg=60.0, radius_a=20.0, csym=1, subunit_sigma_a=4.0),
           Helix(rise_a=20.0, twist_deg=-100.0, radius_a=20.0, csym=2, subunit_sigma_a=4.0)]
AVGPS_ARGS = ["--tube-diameter", "70", "--threads", "1"]


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as connected:
        yield connected


@pytest.fixture(scope="module")
def segments(tmp_path_factory):
    """Two classes in six stacks, with camera raster (the raster step runs too)."""
    folder = tmp_path_factory.mktemp("segments")
    simulate_dataset(folder, HELICES, 48, BOX, PSIZE, seed=4, stack_size=16, noise_sigma=0.5,
                     column_offsets_sigma=0.5, formats=("relion",))
    return folder / "particles.star"


def read_mrc(path):
    with mrcfile.open(path, permissive=True) as mrc:
        return mrc.data.copy(), float(mrc.voxel_size.x)


def assert_spectra_equal(found, expected):
    scale = np.abs(expected).max()
    assert np.abs(found - expected).max() <= 1e-6 * scale


def test_stack_groups_keep_stacks_together():
    paths = np.array(["a"] * 5 + ["b"] * 2 + ["c"] * 9 + ["a"])
    groups = stack_groups(paths, 4)
    assert sorted(np.concatenate(groups).tolist()) == list(range(len(paths)))
    for rows in groups:  # a group holds whole small stacks, or a run of a large one
        stacks = set(paths[rows])
        assert len(rows) <= 4 or len(stacks) > 1
    assert [sorted(set(paths[rows])) for rows in groups] == [
        ["a"], ["a", "b"], ["c"], ["c"], ["c"]]


def test_avgps_on_dask_equals_local(client, segments, tmp_path, capsys):
    local, dask = tmp_path / "local.mrc", tmp_path / "dask.mrc"
    base = ["avgps", str(segments)] + AVGPS_ARGS + ["--per-class"]
    assert main(base + ["-o", str(local)]) == 0
    assert main(base + ["-o", str(dask), "--dask", client.scheduler.address]) == 0
    capsys.readouterr()
    for suffix in (".mrc", "_classes.mrcs"):
        expected, psize = read_mrc(tmp_path / f"local{suffix}")
        found, found_psize = read_mrc(tmp_path / f"dask{suffix}")
        assert found_psize == psize == pytest.approx(PSIZE, abs=1e-3)
        assert_spectra_equal(found, expected)
    side = json.loads((tmp_path / "dask.json").read_text())
    assert side["engine"]["engine"] == "dask" and side["engine"]["workers"] == 2
    assert side["segments_per_class"] == {"1": 48, "2": 48}
    assert side["camera_raster"] == json.loads((tmp_path / "local.json").read_text())[
        "camera_raster"]


def test_group_spectra_on_dask_equal_local(client, segments, tmp_path, capsys):
    # A grouping by a column (not by class) is a second pass of the engine; with
    # --dask it runs on the cluster too.
    local, dask = tmp_path / "local.mrc", tmp_path / "dask.mrc"
    base = ["avgps", str(segments)] + AVGPS_ARGS + ["--group-by", "class_number"]
    assert main(base + ["-o", str(local)]) == 0
    assert main(base + ["-o", str(dask), "--dask", client.scheduler.address]) == 0
    capsys.readouterr()
    expected, _ = read_mrc(tmp_path / "local_groups.mrcs")
    found, _ = read_mrc(tmp_path / "dask_groups.mrcs")
    assert found.shape == expected.shape == (2,) + expected.shape[1:]
    assert_spectra_equal(found, expected)
    assert (tmp_path / "dask_groups.csv").read_text() == \
        (tmp_path / "local_groups.csv").read_text()


def test_stack_on_dask_is_bit_for_bit(client, segments, tmp_path, monkeypatch):
    table, _, _ = checked_table(read_particles(segments))
    options = StackOptions(fill="noise", seed=7, workers=1)  # seeded noise: batches must match
    run_stack(table, tmp_path / "local.mrcs", options)
    monkeypatch.setenv(SCHEDULER_ENV, client.scheduler.address)  # the CLI's other way in
    assert main(["stack", str(segments), "-o", str(tmp_path / "dask.mrcs"), "--fill", "noise",
                 "--seed", "7", "--threads", "1"]) == 0
    expected, found = read_mrc(tmp_path / "local.mrcs")[0], read_mrc(tmp_path / "dask.mrcs")[0]
    assert found.dtype == expected.dtype and np.array_equal(found, expected)
    assert json.loads((tmp_path / "dask.json").read_text())["engine"]["threads"] == 2
    assert ((tmp_path / "dask.star").read_text().replace("dask.mrcs", "local.mrcs")
            == (tmp_path / "local.star").read_text())


def test_thon_on_dask_equals_local(client, tmp_path):
    rng = np.random.default_rng(2)
    ctf = CTF(defocus_u_a=15000.0, defocus_v_a=14000.0, defocus_angle_deg=20.0,
              voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)
    mics = []
    for name in ("a", "b", "c"):
        write_movie(tmp_path / f"{name}.mrc",
                    simulate_micrograph((256, 256), 1.0, ctf, rng=rng)[None], 1.0)
        mics.append(tmp_path / f"{name}.mrc")
    options = ThonOptions(pixel_size_a=1.0, tile=128, defocus_u_a=15000.0, workers=1)
    run_thon(mics, tmp_path / "local", options)
    done = run_thon(mics, tmp_path / "dask", options, client=client)
    assert len(done.sidecars) == 3 and done.sidecars[0]["engine"]["workers"] == 2
    assert "engine" not in json.loads((tmp_path / "local" / "a.json").read_text())
    for name in ("a", "b", "c"):
        expected, psize = read_mrc(tmp_path / "local" / f"{name}_ps.mrc")
        found, found_psize = read_mrc(tmp_path / "dask" / f"{name}_ps.mrc")
        assert found_psize == psize
        assert_spectra_equal(found, expected)


# ---------------------------------------------------------------------- faults


def _forbid_reading(path):
    """On a worker: reading ``path`` fails as on a node that may not read it."""
    from spectools.io import stacks

    original = stacks.StackCache.layout

    def layout(self, stack_path):
        if str(stack_path) == path:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return original(self, stack_path)

    stacks.StackCache._original_layout = original
    stacks.StackCache.layout = layout


def _allow_reading():
    from spectools.io import stacks

    if hasattr(stacks.StackCache, "_original_layout"):
        stacks.StackCache.layout = stacks.StackCache._original_layout
        del stacks.StackCache._original_layout


def test_a_stack_a_worker_cannot_read(client, segments, tmp_path, capsys):
    table = read_particles(segments)
    unreadable = sorted(table.data["image_path"].unique())[2]
    client.run(_forbid_reading, unreadable)
    try:
        out = tmp_path / "out" / "spectrum.mrc"
        out.parent.mkdir()
        code = main(["avgps", str(segments), "-o", str(out), "--dask",
                     client.scheduler.address] + AVGPS_ARGS)
    finally:
        client.run(_allow_reading)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert unreadable in err and "Dask worker" in err and "Permission denied" in err
    assert list(out.parent.iterdir()) == []  # no output, no temporary file left


class _KillOnFirstTask(distributed.WorkerPlugin):
    """Ends its worker's process abruptly when the first task starts (once per marker)."""

    name = "spectools-test-kill"

    def __init__(self, marker):
        self.marker = marker

    def transition(self, key, start, finish, **kwargs):
        if finish == "executing" and not os.path.exists(self.marker):
            Path(self.marker).write_text(str(os.getpid()))
            os._exit(1)


def _register(client, plugin):
    if hasattr(client, "register_plugin"):
        return client.register_plugin(plugin)
    return client.register_worker_plugin(plugin)


def test_a_worker_killed_mid_run_costs_a_retry(client, segments, tmp_path):
    table, _, _ = checked_table(read_particles(segments))
    kwargs = dict(tube_diameter_px=35.0, workers=1, batch_size=8)
    expected = averaged_power_spectrum(table, **kwargs)
    marker = tmp_path / "killed"
    before = set(client.run(os.getpid).values())
    _register(client, _KillOnFirstTask(str(marker)))
    try:
        found = averaged_power_spectrum(table, client=client, **kwargs)
    finally:
        client.unregister_worker_plugin(_KillOnFirstTask.name)
    assert int(marker.read_text()) in before  # a worker did die, during the run
    assert found.counts == expected.counts
    assert_spectra_equal(found.combined, expected.combined)
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != before  # its nanny started a new one


def test_unreachable_scheduler_is_one_line(capsys, segments, tmp_path):
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        code = main(["avgps", str(segments), "-o", str(tmp_path / "x.mrc"),
                     "--dask", "tcp://127.0.0.1:9"] + AVGPS_ARGS)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "Dask scheduler" in err and "tcp://127.0.0.1:9" in err
    assert not (tmp_path / "x.mrc").exists()


def test_a_stack_missing_on_the_workers_is_named(client, segments, tmp_path):
    table, _, _ = checked_table(read_particles(segments))
    gone = str(tmp_path / "gone.mrcs")
    table.data["image_path"] = gone  # nothing reads it on the client: no raster, angle given
    with pytest.raises(SpectoolsError) as caught:
        averaged_power_spectrum(table, tube_diameter_px=35.0, axis_angle=0.0, raster="off",
                                client=client)
    message = str(caught.value)
    assert message.startswith(gone) and "Dask worker" in message and "\n" not in message
