"""spectools thon's CTF estimation on simulated micrographs and movies with a known CTF.

Accuracy asked by the issue: mean defocus within 1%, astigmatism within 100 Å
or 10%, angle within 5° where the astigmatism is at least 500 Å.  A few
cases cover 200 and 300 kV, 4,000 to 39,000 Å, astigmatism to 2,000 Å at
angles of both signs, micrographs and movies with and without drift, and a
phase plate; ``benchmarks/bench_ctf_fit.py`` sweeps the ranges.
"""
import json

import mrcfile
import numpy as np
import pandas as pd
import pytest

from helpers.fixtures import real_fixture
from spectools.cli.main import main
from spectools.formats.micrograph_ctf import (RELION_CTF_COLUMNS, read_ctf_table,
                                              write_ctf_table)
from spectools.io.csfile import load_cs
from spectools.io.star import read_star
from spectools.ops.ctf import CTF
from spectools.pipelines.thon import ThonOptions, run_thon
from spectools.simulate.micrographs import simulate_micrograph, simulate_movie, write_movie


def assert_close_ctf(got, truth):
    """The issue's tolerances (the truth written with U >= V, as fits are)."""
    if truth.defocus_u_a < truth.defocus_v_a:
        truth = CTF(truth.defocus_v_a, truth.defocus_u_a, truth.defocus_angle_deg + 90.0)
    assert got.mean_defocus_a == pytest.approx(truth.mean_defocus_a, rel=0.01)
    astigmatism = truth.defocus_u_a - truth.defocus_v_a
    assert abs(got.astigmatism_a - astigmatism) <= max(100.0, 0.1 * astigmatism)
    if astigmatism >= 500:
        turn = (got.defocus_angle_deg - truth.defocus_angle_deg + 90.0) % 180.0 - 90.0
        assert abs(turn) <= 5.0


def write_input(path, ctf, pixel, *, frames=1, drift=(0.0, 0.0), seed=0, size=768):
    if frames == 1:
        data = simulate_micrograph((size, size), pixel, ctf, rng=seed, dose_per_a2=40.0,
                                   contrast=0.3)[None]
    else:
        data, _ = simulate_movie(frames, (size, size), pixel, ctf, rng=seed,
                                 dose_per_a2_per_frame=40.0 / frames, drift_px_per_frame=drift,
                                 contrast=0.3)
    write_movie(path, data, pixel)
    return path


@pytest.mark.parametrize("truth, pixel, frames, drift", [
    (CTF(16000.0, 14000.0, 30.0, 300.0), 1.0, 1, (0, 0)),
    (CTF(5000.0, 3000.0, -75.0, 200.0), 1.4, 1, (0, 0)),
    (CTF(39000.0, 38000.0, 60.0, 300.0), 1.4, 4, (1.5, -1.0)),
    (CTF(8000.0, 7400.0, -20.0, 300.0, phase_shift_deg=90.0), 1.0, 4, (0, 0)),
], ids=["micrograph-300kV", "micrograph-200kV-astigmatic", "movie-drift-40000A",
        "movie-phase-plate"])
def test_fitted_ctf_is_the_simulated_one(tmp_path, truth, pixel, frames, drift):
    path = write_input(tmp_path / "m.mrc", truth, pixel, frames=frames, drift=drift)
    options = ThonOptions(pixel_size_a=pixel, voltage_kv=truth.voltage_kv,
                          phase_plate=bool(truth.phase_shift_deg), workers=1)
    run = run_thon([path], tmp_path / "out", options)
    fit = run.fits["m.mrc"]
    assert_close_ctf(fit.ctf, truth)
    if truth.phase_shift_deg:
        assert fit.ctf.phase_shift_deg == pytest.approx(truth.phase_shift_deg, abs=5.0)
    side = run.sidecars[0]
    assert side["ctf_fit"]["defocus_u_a"] == pytest.approx(fit.ctf.defocus_u_a)
    assert side["ctf_fit"]["phase_shift_deg"] == (
        pytest.approx(fit.ctf.phase_shift_deg) if truth.phase_shift_deg else None)
    assert side["ctf"]["defocus_u_a"] == pytest.approx(fit.ctf.defocus_u_a)   # drawn
    assert any("CTF fitted" in note for note in side["notes"])


def test_topaz_ctffind_values_are_found_again(tmp_path):
    # No EMPIAR-10025 micrograph is among the fixtures (topaz ships only the STAR file),
    # so its CTFFIND values are simulated at the data's pixel size binned twice
    # (rlnDetectorPixelSize 2.5 µm / rlnMagnification 38023 = 0.6575 Å) and fitted.
    table = read_ctf_table(real_fixture("topaz", "ctf_params.star"))
    names = ["14sep05c_c_00003gr_00014sq_00004hl_00004es_c",
             "14sep05c_c_00004gr_00031sq_00002hl_00002es_c"]
    pixel = 2 * 2.5e4 / 38023
    paths = [write_input(tmp_path / f"{name}.mrc", table[name], pixel, seed=k)
             for k, name in enumerate(names)]
    run = run_thon(paths, tmp_path / "out", ThonOptions(pixel_size_a=pixel, workers=1))
    for name in names:
        assert_close_ctf(run.fits[f"{name}.mrc"].ctf, table[name])


def test_fits_flow_into_relion_and_cryosparc_tables(tmp_path, capsys):
    truths = [CTF(12000.0, 11000.0, 40.0), CTF(20000.0, 19000.0, -30.0)]
    paths = [str(write_input(tmp_path / f"mic{k}.mrc", c, 1.4, seed=k, size=512))
             for k, c in enumerate(truths)]
    out = tmp_path / "out"
    assert main(["thon", *paths, "-o", str(out), "--pixel-size", "1.4", "--tile", "256",
                 "--ctf-out", str(out / "fits.star"), "--ctf-out", str(out / "fits.cs"),
                 "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("CTF fitted") == 2
    fits = [json.loads((out / f"mic{k}.json").read_text())["ctf_fit"] for k in range(2)]
    for fit, truth in zip(fits, truths):
        assert_close_ctf(CTF(fit["defocus_u_a"], fit["defocus_v_a"], fit["defocus_angle_deg"]),
                         truth)
    # back through spectools' own reader of CTFFIND/RELION and cryoSPARC tables
    for table in (read_ctf_table(out / "fits.star"), read_ctf_table(out / "fits.cs")):
        for k, fit in enumerate(fits):
            ctf = table[f"mic{k}"]
            assert ctf.defocus_u_a == pytest.approx(fit["defocus_u_a"], rel=1e-6)
            assert ctf.defocus_angle_deg == pytest.approx(fit["defocus_angle_deg"], abs=1e-4)
            assert (ctf.voltage_kv, ctf.cs_mm) == pytest.approx((300.0, 2.7))
    # RELION: the CtfFind job's loop (RELION 3.1-5, e.g. 3dem/em-testdata
    # metadata/micrographs_ctf.star) and every CTF column of topaz's CTFFIND file
    blocks, version = read_star(out / "fits.star")
    assert version == 30001
    micrographs, optics = blocks["micrographs"], blocks["optics"]
    assert tuple(micrographs.columns) == RELION_CTF_COLUMNS
    topaz, _ = read_star(real_fixture("topaz", "ctf_params.star"))
    ctf_labels = {c for c in next(iter(topaz.values())).columns
                  if c not in ("rlnDetectorPixelSize", "rlnMagnification")}
    assert ctf_labels <= set(micrographs.columns) | set(optics.columns)
    assert list(micrographs["rlnMicrographName"]) == paths
    assert micrographs["rlnCtfImage"][0] == f"{out / 'mic0_ps.mrc'}:mrc"
    assert micrographs["rlnCtfMaxResolution"][0] == pytest.approx(fits[0]["fit_resolution_a"])
    assert micrographs["rlnCtfAstigmatism"][1] == pytest.approx(
        fits[1]["defocus_u_a"] - fits[1]["defocus_v_a"], rel=1e-6)
    assert optics["rlnMicrographPixelSize"][0] == pytest.approx(1.4)
    # cryoSPARC: the ctf/* fields with the types of a real cryoSPARC file, radians,
    # and the figure of merit and fit resolution under the names pyem reads
    cs = load_cs(out / "fits.cs")
    real = load_cs(real_fixture("cryodrgn", "empiar_10076_7.cs"))
    for name in real.dtype.names:
        if name.startswith("ctf/") and name != "ctf/type":
            assert cs.dtype[name] == real.dtype[name], name
    assert cs["ctf/df_angle_rad"][0] == pytest.approx(np.radians(fits[0]["defocus_angle_deg"]),
                                                      abs=1e-6)
    assert list(cs["micrograph_blob/shape"][0]) == [512, 512]
    assert cs["ctf/cross_corr_ctffind4"][1] == pytest.approx(fits[1]["score"], rel=1e-6)
    assert cs["ctf/ctf_fit_to_A"][1] == pytest.approx(fits[1]["fit_resolution_a"], rel=1e-6)


def test_when_the_ctf_is_fitted(tmp_path, capsys):
    path = write_input(tmp_path / "m.mrc", CTF(15000.0, 14000.0, 10.0), 1.4, size=512)
    common = [str(path), "--pixel-size", "1.4", "--tile", "256", "--threads", "1"]

    def sidecar(*extra):
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        assert main(["thon", *common, "-o", str(out), *extra]) == 0
        return json.loads((out / "m.json").read_text())

    given = sidecar("--defocus", "15000")
    assert given["ctf_fit"] is None and given["ctf"]["defocus_u_a"] == 15000.0
    both = sidecar("--defocus", "17000", "--fit-ctf")
    assert both["ctf_given"]["defocus_u_a"] == 17000.0
    assert both["ctf_fit"]["defocus_u_a"] == pytest.approx(15000.0, rel=0.02)
    assert sidecar("--no-fit-ctf")["ctf"] is None
    capsys.readouterr()
    code = main(["thon", *common, "-o", str(tmp_path / "x"), "--no-fit-ctf",
                 "--ctf-out", str(tmp_path / "x" / "f.star")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--fit-ctf" in err
    assert main(["thon", *common, "-o", str(tmp_path / "y"), "--ctf-out", "fits.txt"]) == 2
    assert "fits.txt: CTF tables are written as .star" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_target_pixel_finer_than_the_data_stops_at_nyquist(tmp_path, monkeypatch):
    import spectools.pipelines.thon as thon

    titles = []
    monkeypatch.setattr(thon, "thon_png", lambda path, panel, extent, **kw: (
        titles.append(kw["title"]), open(path, "wb").close()))
    pixel = 2.0022
    path = write_input(tmp_path / "film.mrc", CTF(20000.0, 20000.0), pixel, size=512)
    run = run_thon([path], tmp_path / "out",
                   ThonOptions(pixel_size_a=pixel, tile=256, box=256, target_apix=1.0,
                               defocus_u_a=20000.0, workers=1))
    side = run.sidecars[0]
    assert side["spectrum_pixel_size_a"] == pytest.approx(pixel)      # not padded to 1 Å
    assert any("finer than the data's 2.002 Å" in note for note in side["notes"])
    import mrcfile
    with mrcfile.open(tmp_path / "out" / "film_ps.mrc") as mrc:
        assert mrc.voxel_size.x == pytest.approx(pixel, rel=1e-5)
        assert (mrc.data[0] > 0).all()                               # no zero band
    assert "2.002 A/px" in titles[0]


def test_written_tables_refuse_other_extensions(tmp_path):
    from spectools.errors import SpectoolsError
    from spectools.formats.micrograph_ctf import MicrographCtf

    row = MicrographCtf("a.mrc", 1.0, (64, 64), CTF(10000.0, 9000.0, 5.0), 0.2, 4.0, "a_ps.mrc")
    with pytest.raises(SpectoolsError, match=r"\.star .* \.cs"):
        write_ctf_table(tmp_path / "fits.txt", [row])
    write_ctf_table(tmp_path / "fits.star", [row])
    blocks, _ = read_star(tmp_path / "fits.star")
    assert isinstance(blocks["micrographs"], pd.DataFrame)
    assert blocks["micrographs"]["rlnDefocusAngle"][0] == pytest.approx(5.0)


@pytest.mark.parametrize("voltage", ["1e-9", "0.3"])
def test_an_absurd_voltage_is_refused_before_the_fit(tmp_path, capsys, voltage):
    # Without a defocus the optics feed only the fit; a voltage near 0 made its
    # ring spacing, hence its search grid, blow up (out of memory, exit 1).
    micrograph = tmp_path / "m.mrc"
    with mrcfile.new(micrograph) as mrc:
        mrc.set_data(np.random.default_rng(0).normal(size=(256, 256)).astype(np.float32))
        mrc.voxel_size = 1.0
    out = tmp_path / "out"
    out.mkdir()
    assert main(["thon", str(micrograph), "-o", str(out / "ps.mrc"), "--voltage", voltage]) == 2
    assert "below any transmission microscope" in capsys.readouterr().err
    assert not any(out.iterdir())


def test_scanned_film_as_a_16_bit_png(tmp_path, capsys):
    from PIL import Image

    truth = CTF(15000.0, 13800.0, 30.0, 200.0)
    image = simulate_micrograph((768, 768), 2.0, truth, rng=3, dose_per_a2=40.0, contrast=0.3)
    scaled = (image - image.min()) / np.ptp(image) * 60000
    # Row 0 of a PNG is the top of the picture; spectools (as RELION with TIFF) flips
    # it so +y points up: the array simulated with +y along rows is stored upside down.
    Image.fromarray(scaled[::-1].astype(np.uint16)).save(tmp_path / "film.png")
    out = tmp_path / "out"
    assert main(["thon", str(tmp_path / "film.png"), "-o", str(out), "--pixel-size", "2.0",
                 "--voltage", "200", "--tile", "256", "--threads", "1"]) == 0
    side = json.loads((out / "film.json").read_text())
    fit = side["ctf_fit"]
    assert_close_ctf(CTF(fit["defocus_u_a"], fit["defocus_v_a"], fit["defocus_angle_deg"],
                         200.0), truth)
    assert any("16-bit greyscale PNG image, which carries no pixel size" in n
               for n in side["notes"])
