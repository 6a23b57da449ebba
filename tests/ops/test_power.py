"""FFTW's wisdom kept between runs (the spectrum step's plans)."""
import numpy as np
import pytest

import spectools.ops.power as power

pytestmark = pytest.mark.skipif(power.pyfftw is None, reason="pyFFTW is not installed")


@pytest.fixture
def fresh_fftw(monkeypatch, tmp_path):
    """A process state with no wisdom loaded, no plans, and the cache in ``tmp_path``."""
    monkeypatch.setenv("SPECTOOLS_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(power, "FFT_BACKEND", "fftw")
    monkeypatch.setattr(power, "_WISDOM", {"loaded": False})
    monkeypatch.setattr(power._PLANS, "plans", {}, raising=False)
    power.pyfftw.forget_wisdom()
    yield tmp_path
    power.pyfftw.forget_wisdom()


def truth(images, pad):
    n = images.shape[-1]
    padded = np.zeros((len(images), pad * n, pad * n))
    padded[:, :n, :n] = images
    return (np.abs(np.fft.rfft2(padded)) ** 2).sum(axis=0)


def test_wisdom_measured_once_is_imported_by_the_next_run(fresh_fftw):
    images = np.random.default_rng(1).normal(size=(3, 36, 36)).astype(np.float32)
    expected = truth(images, 1)
    np.testing.assert_allclose(power.power_spectra_sum(images, pad=1), expected,
                               rtol=1e-4, atol=1e-6 * expected.max())
    kept = power.wisdom_path()
    assert kept.parent == fresh_fftw
    # A new run: nothing in memory, the wisdom on disk covers the 36 x 36 r2c plan.
    power.pyfftw.forget_wisdom()
    power._WISDOM["loaded"] = False
    power._PLANS.plans = {}
    before = kept.read_text()
    np.testing.assert_allclose(power.power_spectra_sum(images, pad=1), expected,
                               rtol=1e-4, atol=1e-6 * expected.max())
    assert power._WISDOM["loaded"]
    assert kept.read_text() == before     # nothing new was measured


def test_a_corrupt_wisdom_file_is_ignored(fresh_fftw):
    power.wisdom_path().write_text("{not json")
    images = np.random.default_rng(2).normal(size=(2, 20, 20)).astype(np.float32)
    expected = truth(images, 2)
    np.testing.assert_allclose(power.power_spectra_sum(images, pad=2), expected,
                               rtol=1e-4, atol=1e-6 * expected.max())


def test_no_wisdom_is_kept_when_the_cache_is_off(fresh_fftw, monkeypatch):
    monkeypatch.setenv("SPECTOOLS_CACHE_DIR", "none")
    assert power.wisdom_path() is None
    images = np.random.default_rng(3).normal(size=(2, 24, 24)).astype(np.float32)
    power.power_spectra_sum(images, pad=1)
    assert not list(fresh_fftw.iterdir())
