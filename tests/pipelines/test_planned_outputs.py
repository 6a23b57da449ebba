"""Each job declares, before any work, exactly the files it then writes.

The declarations (``planned_outputs``) are what the one output rule
(:func:`spectools.io.atomic.check_outputs`) checks against the inputs; were
they to miss a file, that file could replace an input unchecked.  Here every
job runs with the options that add files, and the files written must be the
files declared.
"""
import os

import mrcfile
import numpy as np

from spectools.formats import read_particles
from spectools.pipelines import aligned_stack, avgps, thon
from spectools.pipelines.inputs import checked_table
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix


def files_under(folder):
    return {os.path.join(root, name) for root, _, names in os.walk(folder) for name in names}


def dataset(folder):
    helices = [Helix(15.0, 50.0, 40.0, 1, 4.0), Helix(20.0, -30.0, 40.0, 1, 4.0)]
    _, paths = simulate_dataset(folder, helices, 4, 32, 2.0, seed=3, stack_size=8)
    return read_particles(paths["relion"])


def test_avgps_writes_what_it_declares(tmp_path):
    table = dataset(tmp_path / "in")
    options = avgps.AvgpsOptions(per_class=True, png=True, profile=True, axis_angle=0.0,
                                 workers=1, overlay={"twist": 50.0, "rise": 15.0, "csym": 1},
                                 group_by="filament")
    out = tmp_path / "out" / "ps.mrc"
    done = avgps.run_avgps(table, out, options)
    planned = {str(p) for p, _ in avgps.planned_outputs(out, options, [1, 2])}
    assert planned == set(done.files) == files_under(tmp_path / "out")


def test_stack_writes_what_it_declares(tmp_path):
    table = dataset(tmp_path / "in")
    options = aligned_stack.StackOptions(per_class=True, metadata=("star", "cs", "doc"),
                                         workers=1)
    out = tmp_path / "out" / "al.spi"
    summary = aligned_stack.run_stack(table, out, options)
    checked, _, _ = checked_table(table)
    planned = {str(p) for p, _ in aligned_stack.planned_outputs(checked, out, options)}
    assert planned == set(summary["files"]) == files_under(tmp_path / "out")
    assert len(planned) == 2 * 4 + 1  # per class: stack, STAR, .cs, doc; one sidecar


def test_thon_writes_what_it_declares(tmp_path):
    inputs = []
    for name in ("a.mrc", "b.mrc"):
        with mrcfile.new(tmp_path / name) as mrc:
            mrc.set_data(np.random.default_rng(0).poisson(5, (96, 96)).astype(np.float32))
            mrc.voxel_size = 1.2
        inputs.append(tmp_path / name)
    done = thon.run_thon(inputs, tmp_path / "out", thon.ThonOptions(tile=64, box=64, workers=1))
    planned = {str(p) for p, _ in thon.planned_outputs(inputs, tmp_path / "out")}
    assert planned == set(done.files) == files_under(tmp_path / "out")
