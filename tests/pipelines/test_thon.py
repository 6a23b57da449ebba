"""Thon-ring spectra of simulated micrographs and movies with a known CTF."""
import functools
import json

import numpy as np
import pytest

from spectools.cli.main import main
from spectools.io.frames import open_frames
from spectools.pipelines.frame_spectrum import thon_spectrum
from spectools.simulate.micrographs import (gain_with_column_stripes, simulate_micrograph,
                                            simulate_movie, write_movie)
from helpers.ctf_reference import ctf_zeros
from helpers.errors import cli_fails
from spectools.ops.ctf import CTF as CTFModel
from spectools.ops.thon_rings import box_background, rotational_average
from spectools.ops.fourier import frequency_grid

PSIZE = 1.0
CTF = CTFModel(defocus_u_a=16000.0, defocus_v_a=14000.0, defocus_angle_deg=30.0,
               voltage_kv=300.0, cs_mm=2.7, amplitude_contrast=0.1)


def spectrum_of(path, **kw):
    kw.setdefault("tile", 256)
    with open_frames(path) as source:
        return thon_spectrum(source, pixel_size_a=PSIZE, workers=1, **kw).spectrum


def subtracted_profile(spectrum, ctf=CTF):
    amp = np.sqrt(spectrum)
    flat = amp - box_background(amp, 16)
    return rotational_average(flat, PSIZE, ctf)


def test_profile_minima_at_the_ctf_zeros(tmp_path):
    rng = np.random.default_rng(1)
    image = simulate_micrograph((1024, 1024), PSIZE, CTF, rng=rng, dose_per_a2=60.0,
                                contrast=0.3)
    write_movie(tmp_path / "mic.mrc", image[None], PSIZE)
    freq, profile = subtracted_profile(spectrum_of(tmp_path / "mic.mrc"))
    step = freq[1]
    for zero in ctf_zeros(4, 15000.0, 300.0, 2.7, 0.1):
        i = int(round(zero / step))
        window = np.arange(i - 3, i + 4)
        j = window[np.argmin(profile[window])]
        a, b, c = profile[j - 1], profile[j], profile[j + 1]
        found = (j + 0.5 * (a - c) / (a - 2 * b + c)) * step
        assert abs(found - zero) / zero < 0.02, (zero, found)


def ring_match(spectrum, low=1 / 30, high=1 / 4):
    """Correlation of the background-subtracted profile with the predicted CTF^2."""
    freq, profile = subtracted_profile(spectrum)
    _, model = rotational_average(CTF.squared_centred(spectrum.shape[-1], PSIZE), PSIZE, CTF)
    band = (freq > low) & (freq < high)
    return np.corrcoef(profile[band], model[band])[0, 1]


def test_per_frame_spectra_beat_the_sum_of_a_drifting_movie(tmp_path):
    rng = np.random.default_rng(2)
    frames, truth = simulate_movie(16, (768, 768), PSIZE, CTF, rng=rng,
                                   dose_per_a2_per_frame=3.0, drift_px_per_frame=(1.5, -1.0),
                                   contrast=0.3)
    assert np.hypot(*np.ptp(truth["shifts_px"], axis=0)) > 25     # pixels of drift
    write_movie(tmp_path / "movie.mrcs", frames, PSIZE)
    per_frame = ring_match(spectrum_of(tmp_path / "movie.mrcs"))
    summed = ring_match(spectrum_of(tmp_path / "movie.mrcs", group=16))
    # Summing drifting frames blurs the rings along the drift: measured 0.87 vs 0.70.
    assert per_frame >= 0.8
    assert summed < per_frame - 0.15


def test_gain_removes_the_column_stripes(tmp_path):
    rng = np.random.default_rng(3)
    gain = gain_with_column_stripes((512, 512), rng=rng, stripe_amplitude=0.1)
    frames, _ = simulate_movie(8, (512, 512), PSIZE, CTF, rng=rng, dose_per_a2_per_frame=4.0,
                               drift_px_per_frame=(0.3, 0.2), gain=gain)
    write_movie(tmp_path / "m.mrcs", frames, PSIZE)

    def axis_line_excess(spectrum):
        c = spectrum.shape[0] // 2
        line = spectrum[c, :][np.abs(np.arange(spectrum.shape[1]) - c) > 4].mean()
        near = np.concatenate([spectrum[c + k, :] for k in (-5, -4, -3, 3, 4, 5)]).mean()
        return line / near

    assert axis_line_excess(spectrum_of(tmp_path / "m.mrcs")) > 3
    corrected = spectrum_of(tmp_path / "m.mrcs", gain=gain)
    assert axis_line_excess(corrected) < 1.2


def test_astigmatism_where_the_angle_says(tmp_path):
    ctf = dict(CTF.as_dict(), defocus_u_a=20000.0, defocus_v_a=12000.0, defocus_angle_deg=30.0)
    rng = np.random.default_rng(4)
    image = simulate_micrograph((1024, 1024), PSIZE, ctf, rng=rng, dose_per_a2=80.0,
                                contrast=0.3)
    write_movie(tmp_path / "astig.mrc", image[None], PSIZE)
    spectrum = spectrum_of(tmp_path / "astig.mrc", tile=512)
    s, alpha = frequency_grid(spectrum.shape[-1], PSIZE)

    def first_zero_along(angle_deg):
        # average over a +-10 degree wedge (both sides of the origin)
        d = np.angle(np.exp(1j * (alpha - np.deg2rad(angle_deg))) ** 2) / 2
        wedge = np.abs(d) < np.deg2rad(10)
        step = 1.0 / (spectrum.shape[-1] * PSIZE)
        idx = np.round(s[wedge] / step).astype(int)
        prof = np.bincount(idx, spectrum[wedge]) / np.maximum(np.bincount(idx), 1)
        lo, hi = int(0.02 / step), int(0.12 / step)
        j = lo + int(np.argmin(prof[lo:hi]))
        a, b, c = prof[j - 1], prof[j], prof[j + 1]
        return (j + 0.5 * (a - c) / (a - 2 * b + c)) * step

    lam = 12.2643247 / np.sqrt(300e3 * (1 + 0.978466e-6 * 300e3))

    def predicted(defocus):   # first zero, Cs negligible at these frequencies
        return np.sqrt((np.pi - np.arcsin(0.1)) / (np.pi * lam * defocus))

    along_u, along_v = first_zero_along(30.0), first_zero_along(120.0)
    assert along_u < along_v
    assert along_u == pytest.approx(predicted(20000.0), rel=0.05)
    assert along_v == pytest.approx(predicted(12000.0), rel=0.05)


def test_cli_outputs_and_bad_input(capsys, tmp_path):
    rng = np.random.default_rng(5)
    mic = simulate_micrograph((512, 512), PSIZE, CTF, rng=rng)
    write_movie(tmp_path / "a.mrc", mic[None], PSIZE)
    write_movie(tmp_path / "b.mrc", mic[None], PSIZE)
    out = tmp_path / "out"
    assert main(["thon", str(tmp_path / "a.mrc"), str(tmp_path / "b.mrc"), "-o", str(out),
                 "--pixel-size", "1", "--tile", "256", "--defocus", "16000",
                 "--defocus-v", "14000", "--defocus-angle", "30"]) == 0
    for name in ("a_ps.mrc", "a_ps.png", "a_profile.csv", "a.json", "b_ps.png",
                 "contact_sheet.png"):
        assert (out / name).stat().st_size > 0
    side = json.loads((out / "a.json").read_text())
    assert side["ctf_zeros_per_angstrom"][0] == pytest.approx(
        ctf_zeros(1, 15000.0, 300.0, 2.7, 0.1)[0], rel=1e-4)
    capsys.readouterr()

    fails = functools.partial(cli_fails, capsys)

    wide = tmp_path / "wide.mrc"
    write_movie(wide, np.zeros((1, 256, 384), np.float32), PSIZE)
    gain = tmp_path / "gain_t.mrc"
    write_movie(gain, np.ones((1, 384, 256), np.float32), PSIZE)
    err = fails("thon", wide, "-o", tmp_path / "x", "--gain", gain, "--tile", "128",
                "--pixel-size", "1")
    assert "gain" in err and "--gain-rot 1" in err
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + b"\x00" * 20)
    assert "bad.tif" in fails("thon", tmp_path / "bad.tif", "-o", tmp_path / "x")
    assert "--pixel-size" in fails("thon", tmp_path / "a.mrc", "-o", tmp_path / "x",
                                   "--pixel-size", "0")
    assert not (tmp_path / "x").exists() or not any((tmp_path / "x").iterdir())


def test_ctf_values_from_a_ctffind_star_file(capsys, tmp_path):
    from helpers.fixtures import real_fixture
    star = real_fixture("topaz", "ctf_params.star")
    name = "14sep05c_c_00003gr_00014sq_00005hl_00003es_c"          # row 2 of the file
    mic = simulate_micrograph((512, 512), PSIZE, CTF, rng=np.random.default_rng(6))
    write_movie(tmp_path / f"{name}.mrc", mic[None], PSIZE)
    out = tmp_path / "out"
    assert main(["thon", str(tmp_path / f"{name}.mrc"), "-o", str(out), "--pixel-size", "1",
                 "--tile", "256", "--ctf-from", str(star)]) == 0
    side = json.loads((out / f"{name}.json").read_text())
    # row 2 of the file: defocus U 16976.630859, V 17132.269531 (Cs 2.7, 300 kV, Q 0.1)
    expected = ctf_zeros(8, (16976.630859 + 17132.269531) / 2, 300.0, 2.7, 0.1)
    np.testing.assert_allclose(side["ctf_zeros_per_angstrom"], expected, rtol=1e-4)


def test_frames_dark_hot_pixels_and_whole_method(capsys, tmp_path):
    from spectools.pipelines.frame_spectrum import frame_selection
    assert frame_selection(10, "1:") == list(range(1, 10))
    assert frame_selection(10, "2:5") == [2, 3, 4]
    with pytest.raises(Exception, match="keeps none"):
        frame_selection(3, "5:")
    rng = np.random.default_rng(7)
    dark = np.full((512, 512), 7.0, np.float32)
    frames, _ = simulate_movie(4, (512, 512), PSIZE, CTF, rng=rng, dose_per_a2_per_frame=4.0,
                               dark=dark)
    frames[2, 100, 200] = 1e6                    # a hot pixel in one frame
    write_movie(tmp_path / "m.mrcs", frames, PSIZE)
    write_movie(tmp_path / "dark.mrc", dark[None], PSIZE)
    with open_frames(tmp_path / "m.mrcs") as source:
        plain = thon_spectrum(source, pixel_size_a=PSIZE, tile=256, workers=1, dark=dark)
        fixed = thon_spectrum(source, pixel_size_a=PSIZE, tile=256, workers=1, dark=dark,
                              hot_sigma=20)
        later = thon_spectrum(source, pixel_size_a=PSIZE, tile=256, workers=1, dark=dark,
                              frames="3:")
    assert later.frames_used == [3]
    assert "1 hot or dead pixels replaced" in fixed.notes[0]
    # the hot pixel's flat spectrum dominates the uncorrected estimate at high frequency
    c = plain.spectrum.shape[0] // 2
    assert plain.spectrum[c, c + 100] > 10 * fixed.spectrum[c, c + 100]
    out = tmp_path / "out"
    assert main(["thon", str(tmp_path / "m.mrcs"), "-o", str(out), "--pixel-size", "1",
                 "--method", "whole", "--box", "256", "--dark", str(tmp_path / "dark.mrc"),
                 "--target-apix", "2"]) == 0
    import mrcfile
    with mrcfile.open(out / "m_ps.mrc") as mrc:
        assert mrc.data.shape == (256, 256) and mrc.voxel_size.x == pytest.approx(2.0)
