"""The Scipion plugin (protocols/, imported as spectools_scipion) in real Scipion projects.

Headless: pyworkflow's own test machinery (BaseTest, setupTestProject,
launchProtocol) runs each protocol in a child process, as the GUI would.
Simulated helical segments are imported with Scipion's own RELION import
(scipion-em-relion) and with the plugin's cryoSPARC import; every protocol
runs and its outputs are checked numerically against the spectools command
line and the simulator's ground truth.

Skipped (the whole module) where pyworkflow is not installed, so the library
tests keep running without Scipion.  Scipion reads its environment when
pyworkflow is first imported, so the environment is set up here, before that
import: a temporary SCIPION_HOME (with a one-line hosts.conf) and
SCIPION_USER_DATA, SCIPION_DOMAIN=pwem, and SCIPION_PYTHON = this Python (the
protocols' child processes must find pyworkflow).  The hosts.conf also
declares a queue (Scipion's QUEUE settings) whose submit command runs the job
script at once, here, so that a run sent to the queue ("Use a queue
engine?") takes the path a cluster's would.
"""
import atexit
import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

if importlib.util.find_spec("pyworkflow") is None:
    pytest.skip("Scipion is not installed (pip install -e .[scipion,scipion-test])",
                allow_module_level=True)
try:
    import tkinter  # noqa: F401  (pwem.protocols imports pyworkflow.gui, which needs it)
except ImportError:  # a Scipion environment without tkinter is broken: say so, do not skip
    raise ImportError("Scipion needs Python's tkinter (no display is used); on Debian: "
                      "apt-get install python3-tk") from None

_SCRATCH = tempfile.mkdtemp(prefix="spectools-scipion-")
if not os.environ.get("SPECTOOLS_SCIPION_KEEP"):  # set it to keep the projects and logs
    atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
os.environ["SCIPION_HOME"] = os.path.join(_SCRATCH, "home")
os.environ["SCIPION_USER_DATA"] = os.path.join(_SCRATCH, "userdata")
os.environ["SCIPION_DOMAIN"] = "pwem"
os.environ["SCIPION_PYTHON"] = sys.executable
os.environ["SCIPION_NOTIFY"] = "False"
_HOSTS = os.path.join(os.environ["SCIPION_HOME"], "config", "hosts.conf")
os.makedirs(os.path.dirname(_HOSTS), exist_ok=True)
#: A queue whose "submission" runs the job script here and answers like Slurm's sbatch.
QUEUE_JOB_ID = 4242
_QUEUE = f"""NAME = spectools-test-queue
MANDATORY = 0
SUBMIT_COMMAND = bash %_(JOB_SCRIPT)s > %_(JOB_LOGS)s.out 2> %_(JOB_LOGS)s.err; echo "Submitted batch job {QUEUE_JOB_ID}"
SUBMIT_TEMPLATE = #!/bin/bash
    # job %_(JOB_NAME)s, queue %_(JOB_QUEUE)s, %_(JOB_THREADS)d threads, %_(JOB_MEMORY)s MB
    %_(JOB_COMMAND)s
CANCEL_COMMAND = true %_(JOB_ID)s
CHECK_COMMAND = true %_(JOB_ID)s
QUEUES = {{"cpu": [["JOB_MEMORY", "4096", "Memory (MB)", "Memory of the job"]]}}
"""
with open(_HOSTS, "w") as _fh:
    _fh.write("[localhost]\nPARALLEL_COMMAND = mpirun -np %_(JOB_NODES)d %_(COMMAND)s\n" + _QUEUE)
os.environ["SCIPION_HOSTS"] = _HOSTS

import json  # noqa: E402
import re  # noqa: E402
from importlib.metadata import entry_points  # noqa: E402
from pathlib import Path  # noqa: E402

import mrcfile  # noqa: E402
import numpy as np  # noqa: E402

import pyworkflow.protocol.params as params  # noqa: E402
from pyworkflow.object import Pointer  # noqa: E402
from pyworkflow.tests import BaseTest, setupTestProject  # noqa: E402
from pwem import Domain  # noqa: E402
from pwem.constants import ALIGN_2D  # noqa: E402
from pwem.objects import Particle, SetOfParticles, Transform  # noqa: E402
from pwem.protocols import (ProtImportMicrographs, ProtImportMovies,  # noqa: E402
                            ProtImportParticles)

from spectools.cli.main import main as spectools_main  # noqa: E402
from spectools.pipelines.aligned_stack import OPTIONS as STACK_OPTIONS  # noqa: E402
from spectools.pipelines.avgps import OPTIONS as AVGPS_OPTIONS  # noqa: E402
from spectools.pipelines.index import OPTIONS as INDEX_OPTIONS  # noqa: E402
from spectools.pipelines.inputs import OPTICS_OPTIONS, READ_OPTIONS, SELECT_OPTIONS  # noqa: E402
from spectools.pipelines.thon import OPTIONS as THON_OPTIONS  # noqa: E402
from spectools.formats import read_particles, write_particles  # noqa: E402
from spectools.io.stacks import open_stack  # noqa: E402
from spectools.ops.geometry import affine_matrix, rotate_xy  # noqa: E402
from spectools.simulate.segments import Helix
from spectools.simulate.dataset import simulate_dataset  # noqa: E402
from spectools.simulate.micrographs import (gain_with_column_stripes, simulate_micrograph,
                                            simulate_movie, write_movie)

from helpers.spectrum_measures import axial_profile, peak_position  # noqa: E402
from spectools_scipion import convert  # noqa: E402
from spectools_scipion.protocols import (SpectoolsProtAlignedStack,  # noqa: E402
                                         SpectoolsProtAveragedSpectrum,
                                         SpectoolsProtImportCryosparc,
                                         SpectoolsProtIndexHelical, SpectoolsProtThonRings)
from spectools_scipion.protocols.protocol_base import param_name  # noqa: E402
from spectools_scipion.viewers import MAX_HEIGHT_PX, MAX_WIDTH_PX, SpectoolsPngViewer  # noqa: E402

BOX, PSIZE, PAD = 96, 2.0, 2
P = BOX * PAD
FPX = 1.0 / (P * PSIZE)                       # Fourier pixel of the spectra, 1/A
# Class 1: six subunits per turn (pitch 90 A); class 2: another lattice (tests/pipelines/test_avgps.py).
HELIX = Helix(rise_a=15.0, twist_deg=60.0, radius_a=30.0, csym=1, subunit_sigma_a=4.0)
OTHER = Helix(rise_a=20.0, twist_deg=-100.0, radius_a=30.0, csym=2, subunit_sigma_a=4.0)
N_PER_CLASS = 20
# Indexing: noisy segments in a larger box (layer lines of HELIX resolved), and a C4 helix.
INDEX_BOX = 128
INDEX_OTHER = Helix(rise_a=18.0, twist_deg=-50.0, radius_a=40.0, csym=4, subunit_sigma_a=4.0)
TUBE_A = 90.0
OVERLAY = {"twist": 60.0, "rise": 15.0}
MIC_PSIZE = 1.0
CTF = {"defocus_u_a": 16000.0, "defocus_v_a": 14000.0, "defocus_angle_deg": 30.0,
       "voltage_kv": 300.0, "cs_mm": 2.7, "amplitude_contrast": 0.1}


PROTOCOLS = (SpectoolsProtAveragedSpectrum, SpectoolsProtAlignedStack, SpectoolsProtThonRings,
             SpectoolsProtImportCryosparc, SpectoolsProtIndexHelical)


#: Every flag of the spectools command line.
CLI_FLAGS = sorted({o.cli_flag for v in (AVGPS_OPTIONS, STACK_OPTIONS, THON_OPTIONS, READ_OPTIONS,
                                         SELECT_OPTIONS, OPTICS_OPTIONS, INDEX_OPTIONS)
                     for o in v.values()})


def form_params(prot):
    """(name, param) of every parameter of a protocol's own tabs, groups and lines included
    (the General and Parallelization tabs are Scipion's)."""
    def walk(group):
        for name, param in group.iterParams():
            yield name, param
            if isinstance(param, params.ElementGroup):
                yield from walk(param)

    for section in prot.getDefinition().iterSections():
        if section.getLabel() not in ("General", "Parallelization"):
            yield from walk(section)


def read_image(location):
    """An image of a Scipion location (index 1-based, file relative to the project)."""
    index, filename = location
    return np.asarray(open_stack(convert.image_file(filename))[convert.image_index(index)])


def disk_correlation(a, b):
    """Correlation over a disk of 0.8 x the box radius (edges hold the fill)."""
    n = a.shape[-1]
    y, x = np.mgrid[:n, :n] - n // 2
    inside = np.hypot(x, y) <= 0.4 * n
    return np.corrcoef(a[inside], b[inside])[0, 1]


def cli_spectrum(tmp, name, *args):
    out = Path(tmp) / f"{name}.mrc"
    assert spectools_main(["avgps", *map(str, args), "-o", str(out), "--threads", "1"]) == 0
    with mrcfile.open(out) as m:
        return m.data.copy()


def read_mrc(path, index=None):
    with mrcfile.open(convert.image_file(path), permissive=True) as m:
        data = np.asarray(m.data)
        return data.copy() if index is None else data[index].copy()


class TestSpectoolsScipion(BaseTest):
    """One project: imports once, then every protocol."""

    @classmethod
    def setUpClass(cls):
        setupTestProject(cls)
        cls.data = Path(_SCRATCH) / "data"
        cls.tmp = Path(_SCRATCH) / "cli"
        cls.tmp.mkdir(parents=True, exist_ok=True)
        table, paths = simulate_dataset(cls.data / "segments", [HELIX, OTHER], N_PER_CLASS,
                                        BOX, PSIZE, seed=5, stack_size=1000,
                                        formats=("relion",))
        # CTF metadata (the images carry none, so they still match the canonical ones):
        # a different astigmatism angle per particle, to follow it through the stack.
        rng = np.random.default_rng(0)
        n = len(table)
        table.data["defocus_u_a"] = 15000.0 + 1000.0 * rng.random(n)
        table.data["defocus_v_a"] = table.data["defocus_u_a"] - 800.0
        table.data["defocus_angle_deg"] = rng.uniform(0.0, 180.0, n)
        cls.truth = table
        cls.star = paths["relion"]
        cls.cs = paths["relion"].with_name("particles.cs")
        write_particles(table, cls.star)
        write_particles(table, cls.cs)
        cls.canonical = open_stack(paths["canonical"])[:]
        # cryoSPARC-style class averages: class k (0-based) is frame k.
        classes = table.data["class_number"].to_numpy()
        cls.averages = cls.data / "segments" / "class_averages.mrc"
        with mrcfile.new(cls.averages, overwrite=True) as m:
            m.set_data(np.stack([cls.canonical[classes == k].mean(axis=0)
                                 for k in (1, 2)]).astype(np.float32))
            m.voxel_size = PSIZE

        # Scipion's own RELION import (scipion-em-relion, no RELION binary).
        cls.relionImport = cls.labelled(
            ProtImportParticles, importFrom=ProtImportParticles.IMPORT_FROM_RELION,
            starFile=str(cls.star), samplingRate=PSIZE, voltage=300,
            sphericalAberration=2.7, amplitudeContrast=0.1, objLabel="RELION import")
        cls.launchProtocol(cls.relionImport)
        # The plugin's cryoSPARC import, with class averages.
        cls.csImport = cls.labelled(SpectoolsProtImportCryosparc, csFile=str(cls.cs),
                                       classAveragesFile=str(cls.averages),
                                       objLabel="cryoSPARC import")
        cls.launchProtocol(cls.csImport)

    # ---- helpers
    @classmethod
    def pointer(cls, prot, name):
        """What the GUI stores: the producing protocol plus the output's name."""
        return Pointer(prot, extended=name)

    @classmethod
    def labelled(cls, cls_, **kwargs):
        """``newProtocol`` with the run label a user types (pyworkflow drops ``objLabel``)."""
        label = kwargs.pop("objLabel", None)
        prot = cls.newProtocol(cls_, **kwargs)
        if label:
            prot.setObjLabel(label)
        return prot

    def new(self, cls_, **kwargs):
        """``newProtocol`` that accepts Pointer values for pointer parameters."""
        pointers = {k: kwargs.pop(k) for k in list(kwargs) if isinstance(kwargs[k], Pointer)}
        prot = self.labelled(cls_, **kwargs)
        for name, ptr in pointers.items():
            getattr(prot, name).set(ptr.getObjValue())
            getattr(prot, name).setExtended(ptr.getExtended())
        return prot

    def run_protocol(self, cls_, **kwargs):
        prot = self.new(cls_, **kwargs)
        self.launchProtocol(prot)
        return prot

    def import_micrographs(self, folder, pattern, label):
        """Scipion's own import of micrographs at MIC_PSIZE, 300 kV."""
        return self.run_protocol(ProtImportMicrographs, filesPath=str(folder),
                                 filesPattern=pattern, samplingRate=MIC_PSIZE, voltage=300,
                                 sphericalAberration=2.7, amplitudeContrast=0.1, objLabel=label)

    # ---- plugin discovery
    def test_plugin_is_discovered_with_menu_and_viewer(self):
        names = {ep.name: ep.value for ep in entry_points(group="pyworkflow.plugin")}
        assert names.get("spectools_scipion") == "spectools_scipion"
        assert "spectools_scipion" in Domain.getPlugins()
        protocols = Domain.getProtocols()
        for name in ("SpectoolsProtAveragedSpectrum", "SpectoolsProtAlignedStack",
                     "SpectoolsProtThonRings", "SpectoolsProtImportCryosparc",
                     "SpectoolsProtIndexHelical"):
            assert name in protocols
        assert "SpectoolsPngViewer" in Domain.getViewers()
        from pyworkflow.gui.project.viewprotocols_extra import ProtocolTreeConfig
        import pwem
        menus = ProtocolTreeConfig.load(Domain, os.path.join(os.path.dirname(pwem.__file__),
                                                             "protocols.conf"))
        found = set()

        def walk(node):
            value = getattr(node, "value", None)
            value = value.get() if hasattr(value, "get") else value
            if value and str(value).startswith("Spectools"):
                found.add(str(value))
            for child in node.childs:
                walk(child)

        walk(menus["Protocols SPA"])
        assert found == {"SpectoolsProtAveragedSpectrum", "SpectoolsProtAlignedStack",
                         "SpectoolsProtThonRings", "SpectoolsProtImportCryosparc",
                         "SpectoolsProtIndexHelical"}

    # ---- conversion
    def test_conversion_follows_pwem_and_reads_the_relion_plugin_form(self):
        psi, ox, oy = 30.0, 5.0, -2.0
        m = convert.matrix_from_alignment(psi, ox, oy)
        assert np.allclose(m[[0, 1, 3]][:, [0, 1, 3]], affine_matrix(psi, ox, oy))
        back = convert.alignment_from_matrices(m[None])
        assert np.allclose([back["psi_deg"][0], back["origin_x_px"][0],
                            back["origin_y_px"][0]], [psi, ox, oy])
        # conventions/scipion.md worked example: the feature at raw (10, 0) lands at RELION's
        # (13.99, 5.77); the RELION plugin's [R(psi) | o] would put it at (13.66, 3.00).
        assert np.allclose((m @ [10, 0, 0, 1])[:2], [13.99, 5.77], atol=0.01)
        legacy = np.eye(4)
        legacy[:2, :2] = m[:2, :2]
        legacy[:2, 3] = (ox, oy)
        assert np.allclose((legacy @ [10, 0, 0, 1])[:2], [13.66, 3.00], atol=0.01)
        read = convert.alignment_from_matrices(legacy[None], form=convert.RELION_PLUGIN)
        assert np.allclose([read["psi_deg"][0], read["origin_x_px"][0],
                            read["origin_y_px"][0]], [psi, ox, oy])
        # mirrored (SPIDER/Xmipp flip) and projection matrices
        mm = convert.matrix_from_alignment(-40.0, 1.5, 2.5, True)
        assert np.linalg.det(mm[:2, :2]) < 0
        back = convert.alignment_from_matrices(mm[None])
        assert back["mirror"][0] and np.isclose(back["psi_deg"][0], -40.0)
        proj = convert.projection_matrix(0.0, 0.0, psi, ox, oy)
        assert np.allclose(proj[[0, 1, 3]][:, [0, 1, 3]], affine_matrix(psi, ox, oy))
        proj = convert.projection_matrix(20.0, 70.0, psi, ox, oy)
        back = convert.alignment_from_matrices(proj[None], alignment="Projection")
        assert np.allclose([back["rot_deg"][0], back["tilt_deg"][0], back["psi_deg"][0],
                            back["origin_x_px"][0], back["origin_y_px"][0]],
                           [20.0, 70.0, psi, ox, oy])

    def test_relion_plugin_import_carries_r_psi_o(self):
        """Scipion's RELION import stores [R(psi) | o]: read as pwem, origins are R(-psi) o."""
        parts = self.relionImport.outputParticles
        assert parts.getAlignment() == ALIGN_2D and parts.getSize() == 2 * N_PER_CLASS
        star = read_particles(str(self.star)).data
        plugin = convert.table_from_set(parts, form=convert.RELION_PLUGIN).data
        pwem_read = convert.table_from_set(parts).data
        for col in ("psi_deg", "origin_x_px", "origin_y_px", "class_number"):
            np.testing.assert_allclose(plugin[col], star[col], atol=1e-6)
        rx, ry = rotate_xy(-star["psi_deg"].to_numpy(), star["origin_x_px"].to_numpy(),
                           star["origin_y_px"].to_numpy())
        np.testing.assert_allclose(pwem_read["origin_x_px"], rx, atol=1e-6)
        np.testing.assert_allclose(pwem_read["origin_y_px"], ry, atol=1e-6)
        # The protocols say so before running (pwem reading of a RELION-plugin set) ...
        prot = self.new(SpectoolsProtAlignedStack,
                                inputParticles=self.pointer(self.relionImport,
                                                            "outputParticles"))
        assert any("[R(psi) | origin]" in w for w in prot._warnings())
        prot.matrixForm.set(1)
        assert prot._warnings() == []
        # a direct pointer to the set (not protocol + output name) is traced as well
        prot = self.newProtocol(SpectoolsProtAlignedStack)
        prot.inputParticles.set(self.relionImport.outputParticles)
        warning = " ".join(prot._warnings())
        # the run as the project window labels it, and where to find the fix
        assert "'RELION import' (a particle import from RELION)" in warning
        assert "advanced parameter 'Alignment matrices'" in warning
        assert "ProtImportParticles" not in warning and "ALIGN_2D" not in warning
        # the input as Scipion's forms show it: run label and output name
        assert prot.input_name() == "RELION import.outputParticles"
        # ... and not for the plugin's own cryoSPARC import.
        prot = self.new(SpectoolsProtAlignedStack,
                                inputParticles=self.pointer(self.csImport, "outputParticles"))
        assert prot._warnings() == []

    def test_cryosparc_import(self):
        parts = self.csImport.outputParticles
        classes = self.csImport.outputClasses
        assert parts.getSize() == 2 * N_PER_CLASS and parts.getAlignment() == ALIGN_2D
        assert parts.getSamplingRate() == PSIZE and parts.getDimensions()[0] == BOX
        assert parts.hasCTF() and parts.getAcquisition().getVoltage() == 300
        assert classes.getSize() == 2 and classes.hasRepresentatives()
        assert sorted(c.getObjId() for c in classes) == [1, 2]
        for c in classes:
            rep = read_image(c.getRepresentative().getLocation())
            assert np.allclose(rep, read_mrc(self.averages, c.getObjId() - 1))
        table = convert.table_from_set(parts).data
        truth = self.truth.data
        np.testing.assert_array_equal(table["class_number"], truth["class_number"])
        # The .cs stores float32 poses; the matrices give them back (pwem reading).
        np.testing.assert_allclose(table["psi_deg"], truth["psi_deg"], atol=1e-4)
        np.testing.assert_allclose(table["origin_x_px"], truth["origin_x_px"], atol=1e-4)
        np.testing.assert_allclose(table["defocus_angle_deg"] % 180,
                                   truth["defocus_angle_deg"] % 180, atol=1e-4)
        first = parts.getFirstItem()
        assert np.allclose(read_image(first.getLocation()),
                           read_mrc(truth["image_path"][0], 0))

    def test_disabled_classes_are_left_out(self):
        """A class disabled in the GUI (as a subset leaves them) gives no particles."""
        import shutil as _shutil
        from pwem.objects import SetOfClasses2D
        copy = self.tmp / "classes_subset.sqlite"
        _shutil.copy(self.csImport.outputClasses.getFileName(), copy)
        subset = SetOfClasses2D(filename=str(copy))
        second = subset[2]
        second.setEnabled(False)
        subset.update(second)
        subset.write()
        subset.close()
        subset = SetOfClasses2D(filename=str(copy))
        table = convert.table_from_set(subset)
        assert len(table) == N_PER_CLASS and set(table.data["class_number"]) == {1}
        assert convert.available_classes(subset) == [1]
        prot = self.newProtocol(SpectoolsProtAveragedSpectrum, classIds="2")
        prot.inputSet.set(subset)
        assert any("is empty" in e for e in prot.validate())
        subset.close()

    # ---- averaged power spectrum
    def test_avgps_of_relion_import_equals_the_cli_and_puts_layer_lines_right(self):
        prot = self.run_protocol(
            SpectoolsProtAveragedSpectrum,
            inputSet=self.pointer(self.relionImport, "outputParticles"), matrixForm=1,
            tubeDiameter=TUBE_A, twist=OVERLAY["twist"], rise=OVERLAY["rise"],
            groupBy="class", numberOfThreads=2, objLabel="avgps RELION")
        combined = read_mrc(prot.outputSpectrum.getFileName())
        reference = cli_spectrum(self.tmp, "relion", self.star, "--tube-diameter", TUBE_A,
                                 "--per-class")
        np.testing.assert_allclose(combined, reference, rtol=1e-5, atol=1e-6 * reference.max())
        assert prot.outputSpectrum.getSamplingRate() == PSIZE
        spectra = prot.outputClassSpectra
        assert spectra.getSize() == 2 and spectra.getSamplingRate() == PSIZE
        assert sorted(s.getObjId() for s in spectra) == [1, 2]
        per_class = {s.getObjId(): read_image(s.getLocation()) for s in spectra}
        ref_classes = read_mrc(self.tmp / "relion_classes.mrcs")
        np.testing.assert_allclose(per_class[1], ref_classes[0], rtol=1e-5,
                                   atol=1e-6 * ref_classes.max())
        groups = prot.outputGroupSpectra
        assert groups.getSize() == 2 and groups.getSamplingRate() == PSIZE
        for g in groups:
            np.testing.assert_allclose(read_image(g.getLocation()), ref_classes[g.getObjId() - 1],
                                       rtol=1e-5, atol=1e-6 * ref_classes.max())
        assert "2 spectra per class" in " ".join(prot.summary())
        # layer lines where the simulator put them: class 1 at l/pitch and 1/rise,
        # class 2 (pitch 72 A, C2) on its meridian at 1/rise.
        pitch = HELIX.rise_a * 360 / HELIX.twist_deg
        for z, radial in ((1 / pitch, 6), (2 / pitch, 6), (1 / HELIX.rise_a, 2)):
            found = peak_position(axial_profile(per_class[1], radial), z / FPX)
            assert abs(found - z / FPX) < 0.5, (z, found, z / FPX)
        found = peak_position(axial_profile(per_class[2], 2), 1 / OTHER.rise_a / FPX)
        assert abs(found - 1 / OTHER.rise_a / FPX) < 0.5
        extra = Path(prot._getExtraPath())
        info = json.loads((extra / "avgps.json").read_text())
        assert info["segments"] == 2 * N_PER_CLASS and info["segments_per_class"] == {
            "1": N_PER_CLASS, "2": N_PER_CLASS}
        assert info["overlay_layer_lines"] and (extra / "avgps.png").stat().st_size > 0
        assert (extra / "avgps_profile.csv").exists() and (extra / "avgps_class002.png").exists()
        summary = " ".join(prot.summary())
        assert f"{2 * N_PER_CLASS} segments averaged, from 2 classes" in summary
        assert "2 Å/px" in summary
        assert "Predicted layer lines: twist 60°, rise 15 Å, C1" in summary
        assert "marked at the picture's edges" in summary
        methods = " ".join(prot.methods())
        assert not re.search(r"(?<!\])\[spectools\]", methods)  # every key became a link
        assert "][spectools]] " in methods and "spectools 0.1.0 [" not in methods
        citations = " ".join(prot.citations())
        assert "DeRosier" in citations and "not found" not in citations
        assert "https://doi.org/10.1016/0022-2836(70)90036-7" in citations
        # the viewer: the spectrum with its overlay, then the profile, then the classes
        viewer = SpectoolsPngViewer(project=self.proj, protocol=prot)
        browser = viewer._visualize(prot)[0]
        assert [c for c, _ in browser.pictures] == ["averaged power spectrum",
                                                    "layer-line profile", "class 1", "class 2"]
        imread = __import__("matplotlib.image", fromlist=["imread"]).imread
        for k, (_, path) in enumerate(browser.pictures):
            browser.show_picture(k)
            shown = browser.axes.images[0].get_array()
            assert shown.shape == imread(path).shape
        width, height = browser.figure.get_size_inches() * browser.figure.dpi
        assert width <= MAX_WIDTH_PX and height <= MAX_HEIGHT_PX
        # pictures are shown at their own size (no shrinking: the text stays readable)
        assert width >= max(imread(p).shape[1] for _, p in browser.pictures)
        browser.close()

    def test_avgps_through_the_queue_in_parallel_steps_equals_the_cli(self):
        prot = self.new(SpectoolsProtAveragedSpectrum,
                        inputSet=self.pointer(self.relionImport, "outputParticles"),
                        matrixForm=1, tubeDiameter=TUBE_A, numberOfThreads=3,
                        objLabel="avgps via queue")
        prot._useQueue.set(True)  # the form's "Use a queue engine?"
        prot.setQueueParams(["cpu", {"JOB_MEMORY": "2048"}])
        self.launchProtocol(prot)
        assert prot.isFinished() and prot.getJobIds() == [str(QUEUE_JOB_ID)]
        script = Path(prot._getLogsPath(f"{prot.strId()}.job")).read_text()
        assert "queue cpu, 3 threads, 2048 MB" in script and "pw_protocol_run.py" in script
        # plan, one step per group of stacks (threads - 1 of them), the sum, the outputs
        steps = [step.funcName.get() for step in prot.loadSteps()]
        assert steps == ["planStep", "partStep", "partStep", "spectrumStep", "createOutputStep"]
        log = Path(prot.getStdoutLog()).read_text()
        assert "ThreadStepExecutor" in log or "parallel" in log.lower()
        assert "group 1 of 2: 20 segments" in log and "group 2 of 2: 20 segments" in log
        assert not Path(prot._getExtraPath("avgps_steps")).exists()  # hand-offs removed
        reference = cli_spectrum(self.tmp, "relion_queue", self.star, "--tube-diameter",
                                 TUBE_A)
        np.testing.assert_allclose(read_mrc(prot.outputSpectrum.getFileName()), reference,
                                   rtol=1e-5, atol=1e-6 * reference.max())

    def test_avgps_of_selected_cryosparc_class_equals_the_cli_with_class_averages(self):
        prot = self.run_protocol(
            SpectoolsProtAveragedSpectrum,
            inputSet=self.pointer(self.csImport, "outputClasses"), classIds="1",
            tubeDiameter=TUBE_A, numberOfThreads=1, perClass=False, profile=False,
            objLabel="avgps cryoSPARC class 1")
        combined = read_mrc(prot.outputSpectrum.getFileName())
        reference = cli_spectrum(self.tmp, "cs_class0", self.cs, "--tube-diameter", TUBE_A,
                                 "--classes", "0", "--class-averages", self.averages)
        np.testing.assert_allclose(combined, reference, rtol=1e-5, atol=1e-6 * reference.max())
        info = json.loads(Path(prot._getExtraPath("avgps.json")).read_text())
        assert info["segments_per_class"] == {"1": N_PER_CLASS}
        assert info["alignment_check"]["best"] == "as read"
        assert info["axis_angles"]["1"]["from"] == "measured from the class average"
        assert not hasattr(prot, "outputClassSpectra")
        # resumable: launched again (Scipion's default resume mode), finished steps are skipped
        before = os.stat(prot._getExtraPath("avgps.mrc")).st_mtime_ns
        self.launchProtocol(prot)
        assert prot.isFinished() and hasattr(prot, "outputSpectrum")
        assert os.stat(prot._getExtraPath("avgps.mrc")).st_mtime_ns == before

    # ---- index helical symmetry
    def test_avgps_refinement_registers_the_refined_particles_as_the_cli_refines_them(self):
        prot = self.run_protocol(
            SpectoolsProtAveragedSpectrum,
            inputSet=self.pointer(self.csImport, "outputClasses"), classIds="1",
            tubeDiameter=TUBE_A, numberOfThreads=1, perClass=False, profile=False,
            refinePsi=3.0, phaseParity=True, objLabel="avgps refined")
        cli_out = Path(self.tmp) / "cs_refined.mrc"
        assert spectools_main(["avgps", str(self.cs), "-o", str(cli_out), "--tube-diameter",
                               str(TUBE_A), "--classes", "0", "--class-averages",
                               str(self.averages), "--refine-psi", "3", "--phase-parity",
                               "--threads", "1"]) == 0
        cli = read_particles(cli_out.with_name("cs_refined_refined.cs")).data
        parts = prot.outputParticles
        assert parts.getSize() == N_PER_CLASS and parts.getAlignment() == ALIGN_2D
        mine = convert.table_from_set(parts).data.sort_values("image_index")
        cli = cli.sort_values("image_index")
        np.testing.assert_allclose(mine["psi_deg"].to_numpy(), cli["psi_deg"].to_numpy(),
                                   atol=1e-3)
        np.testing.assert_allclose(mine["origin_x_px"].to_numpy(), cli["origin_x_px"].to_numpy(),
                                   atol=1e-3)
        info = json.loads(Path(prot._getExtraPath("avgps.json")).read_text())
        assert info["refinement"]["segments"] == N_PER_CLASS
        assert "In-plane refinement:" in " ".join(prot.summary())
        parity = read_mrc(prot.outputParity.getFileName())
        cli_parity = read_mrc(cli_out.with_name("cs_refined_parity.mrc"))
        assert prot.outputParity.getSamplingRate() == PSIZE
        strong = np.abs(cli_parity) > 0  # phases agree (mod 360) wherever defined
        diff = (parity - cli_parity + 180) % 360 - 180
        assert np.abs(diff[strong]).max() < 0.5

    def test_index_helical_symmetry_of_the_class_spectra(self):
        """Noisy segments of two classes (RELION import), their class spectra, then indexing."""
        folder = self.data / "noisy"
        _, paths = simulate_dataset(folder, [HELIX, INDEX_OTHER], 40, INDEX_BOX, PSIZE, seed=8,
                                    noise_sigma=0.5, stack_size=1000, formats=("relion",))
        imported = self.run_protocol(
            ProtImportParticles, importFrom=ProtImportParticles.IMPORT_FROM_RELION,
            starFile=str(paths["relion"]), samplingRate=PSIZE, voltage=300,
            sphericalAberration=2.7, amplitudeContrast=0.1, objLabel="RELION import (noisy)")
        spectra = self.run_protocol(
            SpectoolsProtAveragedSpectrum, inputSet=self.pointer(imported, "outputParticles"),
            matrixForm=1, tubeDiameter=100.0, numberOfThreads=2, objLabel="avgps (noisy)")
        prot = self.run_protocol(SpectoolsProtIndexHelical,
                                 inputSpectrum=self.pointer(spectra, "outputClassSpectra"),
                                 spectrumClass=1, diameter=72.0, top=5, objLabel="index class 1")
        extra = Path(prot._getExtraPath())
        info = json.loads((extra / "index.json").read_text())
        top = info["candidates"][0]
        assert top["csym"] == 1 and abs(top["rise_a"] - 15.0) < 0.15
        assert abs(top["twist_deg"] - 60.0) < 0.5
        assert info["front_end"] == "scipion" and info["spectrum"]["classes"] == [1]
        # the same as the command line on the same file
        out = self.tmp / "index_class1.csv"
        assert spectools_main(["index", str(Path(spectra._getExtraPath("avgps_classes.mrcs"))),
                               "--spectrum-class", "1", "--diameter", "72", "--top", "5",
                               "-o", str(out)]) == 0
        assert out.read_text() == (extra / "index.csv").read_text()
        summary = "\n".join(prot.summary())
        assert "rank | twist (deg) | rise (Å)" in summary and "| C1 |" in summary
        assert "meridional reflection" in summary
        assert prot.methods() and "Klug" in " ".join(prot.citations())
        # the combined spectrum of class 2 alone, as an Image
        alone = self.run_protocol(
            SpectoolsProtAveragedSpectrum, inputSet=self.pointer(imported, "outputParticles"),
            matrixForm=1, classIds="2", tubeDiameter=100.0, perClass=False, profile=False,
            numberOfThreads=2, objLabel="avgps class 2 (noisy)")
        prot2 = self.run_protocol(SpectoolsProtIndexHelical,
                                  inputSpectrum=self.pointer(alone, "outputSpectrum"),
                                  diameter=92.0, top=5, objLabel="index class 2")
        top = json.loads(Path(prot2._getExtraPath("index.json")).read_text())["candidates"][0]
        assert top["csym"] == INDEX_OTHER.csym and abs(top["rise_a"] - INDEX_OTHER.rise_a) < 0.2
        # the viewer shows the three-panel picture
        views = SpectoolsPngViewer(project=self.proj, protocol=prot)._visualize(prot)
        image = views[0].figure.axes[0].images[0].get_array()
        png = __import__("matplotlib.image", fromlist=["imread"]).imread(extra / "index.png")
        assert image.shape == png.shape and png.shape[1] > 2.5 * png.shape[0]
        views[0].close()
        # validation: no diameter; a class the set lacks
        bad = self.new(SpectoolsProtIndexHelical,
                       inputSpectrum=self.pointer(spectra, "outputClassSpectra"), spectrumClass=7)
        errors = bad.validate()
        assert any("helix diameter" in e for e in errors), errors
        assert any("Choose the class" in e for e in errors), errors
        bad.riseRange.set("60,1,3")
        assert any("Rise range (Å)" in e for e in bad.validate())

    # ---- aligned stack
    def test_aligned_stack_of_cryosparc_import_matches_the_canonical_images(self):
        prot = self.run_protocol(
            SpectoolsProtAlignedStack,
            inputParticles=self.pointer(self.csImport, "outputParticles"),
            numberOfThreads=2, objLabel="stack cryoSPARC")
        out = prot.outputParticles
        truth = self.truth.data
        assert out.getSize() == 2 * N_PER_CLASS and out.getSamplingRate() == PSIZE
        assert out.getAlignment() == ALIGN_2D and out.getDimensions()[0] == BOX
        angles, correlations = [], []
        for i, p in enumerate(out.iterItems(orderBy="id")):
            assert np.allclose(p.getTransform().getMatrix(), np.eye(4), atol=1e-9)
            assert p.getClassId() == truth["class_number"][i]
            correlations.append(disk_correlation(read_image(p.getLocation()),
                                                 self.canonical[i]))
            angles.append(p.getCTF().getDefocusAngle())
        assert min(correlations) >= 0.999, min(correlations)
        # CTF carried, astigmatism angle turned with the image (EMX: modulo 180)
        expected = (truth["defocus_angle_deg"] + truth["psi_deg"]) % 180
        diff = (np.asarray(angles) - expected + 90) % 180 - 90
        assert np.abs(diff).max() < 1e-3
        extra = Path(prot._getExtraPath())
        assert (extra / "aligned.star").exists() and (extra / "aligned.cs").exists()
        # external tools read the stack's own metadata
        meta = read_particles(str(extra / "aligned.star")).data
        assert np.allclose(meta["psi_deg"], 0) and len(meta) == 2 * N_PER_CLASS

    def test_aligned_stack_of_relion_import_needs_the_plugin_form(self):
        """RELION-plugin matrices: with the plugin form (SPIDER output) the images match;
        read with pwem's meaning the shifts are off by R(psi) o - o."""
        prot = self.run_protocol(
            SpectoolsProtAlignedStack,
            inputParticles=self.pointer(self.relionImport, "outputParticles"),
            matrixForm=1, outputFormat=1, numberOfThreads=1, objLabel="stack RELION (SPIDER)")
        out = prot.outputParticles
        assert out.getFirstItem().getFileName().endswith(".spi")
        correlations = [disk_correlation(read_image(p.getLocation()), self.canonical[i])
                        for i, p in enumerate(out.iterItems(orderBy="id"))]
        assert min(correlations) >= 0.999, min(correlations)
        assert Path(prot._getExtraPath("aligned_doc.spi")).exists()
        # the same images aligned with the pwem reading of those matrices are worse
        from spectools.ops.resample import align_images
        table = convert.table_from_set(self.relionImport.outputParticles).data
        raw = open_stack(self.truth.data["image_path"][0])[:]
        wrong = align_images(raw, table["psi_deg"].to_numpy(), table["origin_x_px"].to_numpy(),
                             table["origin_y_px"].to_numpy(), fill="mean")
        worse = [disk_correlation(w, c) for w, c in zip(wrong, self.canonical)]
        assert np.median(worse) < 0.99

    # ---- validation
    def test_validate_catches_bad_inputs(self):
        files = self.run_protocol(ProtImportParticles,
                                  importFrom=ProtImportParticles.IMPORT_FROM_FILES,
                                  filesPath=str(self.data / "segments"),
                                  filesPattern="segments_001.mrcs", samplingRate=PSIZE,
                                  objLabel="no alignment")
        unaligned = self.pointer(files, "outputParticles")
        assert files.outputParticles.getAlignment() == "None"
        for cls_, name in ((SpectoolsProtAlignedStack, "inputParticles"),
                           (SpectoolsProtAveragedSpectrum, "inputSet")):
            prot = self.new(cls_, **{name: unaligned})
            errors = prot.validate()
            assert any("no 2D alignment" in e for e in errors), errors
            with pytest.raises(Exception):
                self.launchProtocol(prot)
        prot = self.new(SpectoolsProtAveragedSpectrum,
                                inputSet=self.pointer(self.csImport, "outputClasses"),
                                classIds="7-9")
        assert any("is empty" in e for e in prot.validate())
        prot.classIds.set("1,x")
        assert any("Classes: not a class list" in e for e in prot.validate())
        # mixed sampling rates
        mixed = SetOfParticles(filename=str(Path(_SCRATCH) / "mixed.sqlite"))
        mixed.setAlignment2D()
        for i, rate in enumerate((2.0, 3.0), 1):
            p = Particle(location=(i, self.truth.data["image_path"][0]))
            p.setSamplingRate(rate)
            p.setTransform(Transform(np.eye(4)))
            mixed.append(p)
        mixed.write()
        prot = self.newProtocol(SpectoolsProtAlignedStack)
        prot.inputParticles.set(mixed)
        assert any("Mixed sampling rates" in e for e in prot.validate())
        prot = self.newProtocol(SpectoolsProtAveragedSpectrum)
        prot.inputSet.set(mixed)
        assert any("Mixed sampling rates" in e for e in prot.validate())
        mixed.close()

    def test_segments_with_filament_angles_only_are_accepted_and_read(self):
        """Particles of a helical extraction (no alignment; the RELION plugin keeps the psi
        prior as _rlnAnglePsiPrior): the form accepts them unless told to use an alignment."""
        from pyworkflow.object import Float
        picked = SetOfParticles(filename=str(Path(_SCRATCH) / "picked.sqlite"))
        picked.setSamplingRate(PSIZE)
        psi = self.truth.data["psi_deg"].to_numpy()[:4]
        for i in range(4):
            p = Particle(location=(i + 1, self.truth.data["image_path"][0]))
            p._rlnAnglePsiPrior = Float(float(psi[i]))
            picked.append(p)
        picked.write()
        table = convert.table_from_set(picked, need_alignment=False)
        np.testing.assert_allclose(table.data["psi_prior_deg"], psi)
        assert not table.has_alignment_2d
        prot = self.newProtocol(SpectoolsProtAveragedSpectrum)
        prot.inputSet.set(picked)
        assert not any("alignment" in e for e in prot.validate()), prot.validate()
        prot.angles.set(list(AVGPS_OPTIONS["angles"].choices).index("alignment"))
        assert any("no 2D alignment" in e for e in prot.validate())
        picked.close()

    # ---- Thon rings
    def test_thon_rings_of_micrographs_and_movies_with_gain(self):
        rng = np.random.default_rng(7)
        mics = self.data / "mics"
        for k in range(2):
            image = simulate_micrograph((512, 512), MIC_PSIZE, CTF, rng=rng, dose_per_a2=60.0,
                                        contrast=0.3)
            write_movie(mics / f"mic_{k}.mrc", image[None], MIC_PSIZE)
        movies = self.data / "movies"
        gain = gain_with_column_stripes((512, 512), rng=rng, stripe_amplitude=0.1)
        frames, _ = simulate_movie(4, (512, 512), MIC_PSIZE, CTF, rng=rng,
                                   dose_per_a2_per_frame=15.0, gain=gain)
        write_movie(movies / "movie_0.mrcs", frames, MIC_PSIZE)
        write_movie(self.data / "gain.mrc", gain[None], MIC_PSIZE)

        imported = self.import_micrographs(mics, "mic_*.mrc", "micrographs")
        prot = self.run_protocol(SpectoolsProtThonRings,
                                 inputMicrographs=self.pointer(imported, "outputMicrographs"),
                                 tile=256, box=256, numberOfThreads=2, objLabel="Thon mics")
        spectra = prot.outputSpectra
        assert spectra.getSize() == 2 and spectra.getSamplingRate() == MIC_PSIZE
        assert "2 Thon-ring spectra (welch method) of 2 micrographs" in " ".join(prot.summary())
        assert not prot.evalParamCondition("Movies")
        for s, mic in zip(spectra.iterItems(orderBy="id"),
                          imported.outputMicrographs.iterItems(orderBy="id")):
            assert s.getObjId() == mic.getObjId()
            stem = Path(convert.image_file(mic.getFileName())).stem
            out = self.tmp / "thon_mics"
            assert spectools_main(["thon", convert.image_file(mic.getFileName()), "-o",
                                   str(out), "--pixel-size", "1", "--tile", "256",
                                   "--box", "256", "--threads", "1"]) == 0
            np.testing.assert_allclose(read_mrc(s.getFileName()),
                                       read_mrc(out / f"{stem}_ps.mrc"), rtol=1e-5)
            assert Path(prot._getExtraPath(f"{stem}_ps.png")).stat().st_size > 0
        # No CTF was given: each micrograph's was estimated and is output as a SetOfCTF.
        assert prot.outputCTF.getSize() == 2
        assert prot.outputCTF.getMicrographs().getSize() == 2
        mean = (CTF["defocus_u_a"] + CTF["defocus_v_a"]) / 2
        astigmatism = CTF["defocus_u_a"] - CTF["defocus_v_a"]
        for ctf, mic in zip(prot.outputCTF.iterItems(orderBy="id"),
                            imported.outputMicrographs.iterItems(orderBy="id")):
            assert ctf.getObjId() == mic.getObjId()
            assert ctf.getMicrograph().getMicName() == mic.getMicName()
            u, v, angle = ctf.getDefocus()
            assert (u + v) / 2 == pytest.approx(mean, rel=0.01)
            assert abs(u - v - astigmatism) <= 0.1 * astigmatism
            assert angle == pytest.approx(CTF["defocus_angle_deg"], abs=5)   # EMX: [0, 180)
            stem = Path(convert.image_file(mic.getFileName())).stem
            fit = json.loads(Path(prot._getExtraPath(f"{stem}.json")).read_text())["ctf_fit"]
            assert ctf.getResolution() == pytest.approx(fit["fit_resolution_a"])
            assert ctf.getFitQuality() == pytest.approx(fit["score"])
            assert not ctf.hasPhaseShift()
            assert ctf.getPsdFile() == prot._getExtraPath(f"{stem}_ps.mrc")
        # Given those CTFs back, nothing is fitted: they are drawn, and no SetOfCTF comes out.
        again = self.run_protocol(SpectoolsProtThonRings,
                                  inputMicrographs=self.pointer(imported, "outputMicrographs"),
                                  inputCTFs=self.pointer(prot, "outputCTF"), tile=256, box=256,
                                  numberOfThreads=2, objLabel="Thon mics, CTFs given")
        assert not hasattr(again, "outputCTF")
        first = prot.outputCTF.getFirstItem()
        stem = Path(convert.image_file(imported.outputMicrographs.getFirstItem()
                                       .getFileName())).stem
        drawn = json.loads(Path(again._getExtraPath(f"{stem}.json")).read_text())
        assert drawn["ctf_fit"] is None
        assert drawn["ctf"]["defocus_u_a"] == pytest.approx(first.getDefocusU())
        assert drawn["ctf"]["voltage_kv"] == 300.0

        imported = self.run_protocol(ProtImportMovies, filesPath=str(movies),
                                     filesPattern="movie_*.mrcs", samplingRate=MIC_PSIZE,
                                     gainFile=str(self.data / "gain.mrc"), voltage=300,
                                     sphericalAberration=2.7, amplitudeContrast=0.1,
                                     objLabel="movies")
        assert imported.outputMovies.getGain()
        prot = self.run_protocol(SpectoolsProtThonRings,
                                 inputMicrographs=self.pointer(imported, "outputMovies"),
                                 tile=256, box=256, frames="1:", numberOfThreads=2,
                                 objLabel="Thon movies")
        movie = imported.outputMovies.getFirstItem()
        spectrum = read_mrc(prot.outputSpectra.getFirstItem().getFileName())
        out = self.tmp / "thon_movies"
        assert spectools_main(["thon", convert.image_file(movie.getFileName()), "-o", str(out),
                               "--pixel-size", "1", "--tile", "256", "--box", "256",
                               "--frames", "1:", "--gain", str(self.data / "gain.mrc"),
                               "--threads", "1"]) == 0
        np.testing.assert_allclose(spectrum, read_mrc(out / "movie_0_ps.mrc"), rtol=1e-5)
        sidecar = json.loads(Path(prot._getExtraPath("movie_0.json")).read_text())
        assert sidecar["frames_used"] == [1, 2, 3]
        assert sidecar["parameters"]["gain"]
        # the step's options come from the form and the set: its gain, its pixel size
        options = prot._parameters()
        assert options["gain"] == sidecar["parameters"]["gain"] and options["frames"] == "1:"
        assert options["pixel_size_a"] == pytest.approx(MIC_PSIZE)
        # the movies' CTF, fitted to the sum of the frames' spectra, optics from the set
        u, v, _ = prot.outputCTF.getFirstItem().getDefocus()
        assert (u + v) / 2 == pytest.approx(mean, rel=0.01)
        assert options["voltage_kv"] == 300.0 and options["fit_ctf"] is None

        assert sidecar["front_end"] == "scipion" and sidecar["context"]["protocol"]
        browser = SpectoolsPngViewer(project=self.proj, protocol=prot)._visualize(prot)[0]
        assert [c for c, _ in browser.pictures] == ["movie_0"] and not browser.buttons
        browser.close()
        # the Movies group of the form is shown for movies
        assert prot.evalParamCondition("Movies")
        summary = " ".join(prot.summary())
        assert "1 Thon-ring spectrum (welch method) of 1 movie" in summary
        methods = " ".join(prot.methods())
        assert "Thon et al." in methods and "DeRosier" not in methods

    # ---- forms, as Scipion's project window builds them
    def test_every_visible_parameter_has_a_label_help_and_units(self):
        for cls_ in PROTOCOLS:
            prot = self.newProtocol(cls_)
            for name, param in form_params(prot):
                label, text = param.label.get() or "", param.help.get() or ""
                where = f"{cls_.__name__}.{name}"
                assert label.strip(), where
                if not isinstance(param, params.Group):  # a group is a frame, without help
                    assert text.strip(), where
                if isinstance(param, params.BooleanParam):
                    assert label.endswith("?"), where  # yes/no labels are questions
                assert "ALIGN_2D" not in label + text and "None" not in label + text, where
                for flag in CLI_FLAGS:  # the command line's flags belong to its --help
                    assert not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text), \
                        (where, flag)
        labels = {name: param.label.get() for cls_ in PROTOCOLS
                  for name, param in form_params(self.newProtocol(cls_))}
        assert labels["twist"] == "Twist (deg)" and labels["rise"] == "Rise (Å)"
        assert labels["tile"] == "Tile (px)" and labels["voltage"] == "Voltage (kV)"
        assert labels["tubeDiameter"] == "Tube diameter (Å)"

    def test_forms_take_labels_help_and_choices_from_the_option_vocabulary(self):
        """What the command line shows (spectools.pipelines *.OPTIONS) is what the forms show."""
        for cls_ in (SpectoolsProtAveragedSpectrum, SpectoolsProtAlignedStack,
                     SpectoolsProtThonRings):
            prot = self.newProtocol(cls_)
            shown = dict(form_params(prot))
            used = 0
            for option in cls_._vocabulary.values():
                param = shown.get(param_name(option))
                if param is None:
                    continue
                used += 1
                assert param.label.get() == option.label and param.help.get() == option.help
                assert param.expertLevel.get() == (params.LEVEL_ADVANCED if option.expert
                                                   else params.LEVEL_NORMAL)
                if option.kind == "choice":
                    assert len(param.choices) == len(option.choices)
            assert used >= 6, cls_.__name__

    def test_forms_hide_what_does_not_apply(self):
        thon = self.new(SpectoolsProtThonRings,
                        inputMicrographs=self.pointer(self.relionImport, "outputMicrographs"))
        assert not thon.evalParamCondition("Movies")
        particles = self.new(SpectoolsProtAveragedSpectrum,
                             inputSet=self.pointer(self.relionImport, "outputParticles"))
        assert not particles.evalParamCondition("useClassAverages")
        assert "all particles" in " ".join(particles.summary())
        assert "classes all enabled" not in " ".join(particles.summary())
        classes = self.new(SpectoolsProtAveragedSpectrum,
                           inputSet=self.pointer(self.csImport, "outputClasses"))
        assert classes.evalParamCondition("useClassAverages")
        assert "all enabled classes" in " ".join(classes.summary())
        # the input by its label, as a link, never by internal ids
        summary = " ".join(particles.summary())
        assert "RELION import.outputParticles" in summary and "SetOfParticles" not in summary

    def test_labels_methods_header_and_references(self):
        for cls_ in PROTOCOLS:
            prot = self.newProtocol(cls_)  # labelled as the project window labels new runs
            assert prot.getRunName().startswith("spectools - ")
            assert "_" not in prot.getRunName()  # the Methods tab writes it as _label_
            citations = " ".join(prot.citations())
            assert "Reference with key" not in citations and "et al., ," not in citations
            assert "[[https://doi.org/" in citations, cls_.__name__
            assert prot.getPlugin().getUrl().startswith("https://")
        refs = {cls_: set(cls_._references) for cls_ in PROTOCOLS}
        assert {"Cochran1952", "DeRosier1970"} <= refs[SpectoolsProtAveragedSpectrum]
        assert not {"Cochran1952", "DeRosier1970"} & (refs[SpectoolsProtThonRings]
                                                      | refs[SpectoolsProtAlignedStack]
                                                      | refs[SpectoolsProtImportCryosparc])
        assert "Thon1966" in refs[SpectoolsProtThonRings]
        assert "Punjani2017" in refs[SpectoolsProtImportCryosparc]

    def test_validate_catches_each_missing_input(self):
        for cls_ in (SpectoolsProtAveragedSpectrum, SpectoolsProtAlignedStack,
                     SpectoolsProtThonRings):
            assert any("No input selected" in e for e in self.newProtocol(cls_).validate())
        # the micrographs a RELION particle import lists have no files
        thon = self.new(SpectoolsProtThonRings,
                        inputMicrographs=self.pointer(self.relionImport, "outputMicrographs"))
        errors = " ".join(thon.validate())
        assert ("1 of 1 micrograph file of the input (RELION import.outputMicrographs) does "
                "not exist, e.g. " in errors and "simulated_0001.mrc" in errors), errors
        with pytest.raises(Exception):
            self.launchProtocol(thon)
        # particles whose stack has gone
        gone = SetOfParticles(filename=str(Path(_SCRATCH) / "gone.sqlite"))
        gone.setAlignment2D()
        gone.setSamplingRate(PSIZE)
        for i in (1, 2):
            p = Particle(location=(i, str(Path(_SCRATCH) / "moved_away.mrcs")))
            p.setTransform(Transform(np.eye(4)))
            gone.append(p)
        gone.write()
        for cls_, name in ((SpectoolsProtAlignedStack, "inputParticles"),
                           (SpectoolsProtAveragedSpectrum, "inputSet")):
            prot = self.newProtocol(cls_)
            getattr(prot, name).set(gone)
            errors = " ".join(prot.validate())
            assert "1 of 1 image file of the input" in errors and "moved_away.mrcs" in errors, \
                errors
        gone.close()
        # the cryoSPARC import: no file, files that do not exist
        assert any("Give the particles .cs file" in e
                   for e in self.newProtocol(SpectoolsProtImportCryosparc).validate())
        for name, what in (("csFile", "particles .cs"), ("passthrough", "passthrough"),
                           ("classAveragesFile", "class averages")):
            prot = self.newProtocol(SpectoolsProtImportCryosparc, csFile=str(self.cs))
            getattr(prot, name).set(str(Path(_SCRATCH) / "nowhere.cs"))
            assert any(f"The {what} file" in e and "does not exist" in e
                       for e in prot.validate()), name

    def test_a_failed_run_says_why_in_its_summary_and_output_log(self):
        """A micrograph full of NaN: validation passes, the run fails."""
        bad = self.data / "bad_mics"
        bad.mkdir(parents=True, exist_ok=True)
        with mrcfile.new(bad / "broken.mrc", overwrite=True) as m:
            m.set_data(np.full((300, 300), np.nan, np.float32))
            m.voxel_size = MIC_PSIZE
        imported = self.import_micrographs(bad, "broken.mrc", "broken micrograph")
        prot = self.new(SpectoolsProtThonRings,
                        inputMicrographs=self.pointer(imported, "outputMicrographs"),
                        tile=256, box=256, numberOfThreads=1, objLabel="Thon broken")
        assert prot.validate() == []
        with pytest.raises(Exception):
            self.launchProtocol(prot)
        assert prot.isFailed()
        expected = spectools_error_line(imported.outputMicrographs.getFirstItem().getFileName())
        assert expected in " ".join(prot.summary())
        assert expected in Path(prot.getLogPaths()[0]).read_text()


def spectools_error_line(filename):
    """The one line ``spectools thon`` prints about a file (its message, after 'error: ')."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert spectools_main(["thon", convert.image_file(filename), "-o",
                               str(Path(_SCRATCH) / "cli_broken"), "--pixel-size", "1",
                               "--tile", "256", "--box", "256"]) == 2
    return err.getvalue().strip().split("error: ", 1)[1]
