"""Memory estimates before allocating: batches within a fixed budget, refusals in one line.

Estimates are checked against measured peaks by ``benchmarks/bench_limits.py``
(estimate / measured between 1.5 and 6 for stacks, averaged spectra, Thon
spectra and simulations); here: their arithmetic and their refusals.
"""
import pytest

from spectools.errors import SpectoolsError
from spectools.io import memory
from spectools.pipelines import limits
from spectools.pipelines.thon import ThonOptions


@pytest.fixture
def machine(monkeypatch):
    """Set the available memory (bytes) the checks see."""
    def set_available(n):
        monkeypatch.setattr(memory, "available_memory_bytes", lambda: n)
    return set_available


def test_batches_depend_on_the_request_not_on_the_machine(machine):
    machine(64 << 30)
    large = limits.stack_batch_size(256, 256, 2)
    machine(3 << 30)
    assert limits.stack_batch_size(256, 256, 2) == large == 32
    # a large box shrinks the batch to the budget, on any machine
    per_image = 2 * (1600 ** 2 * (limits.ALIGN_BYTES_PER_PX + limits.STACK_WORK_BYTES_PER_PX)) \
        + 5 * 1600 ** 2 * limits.STACK_HELD_BYTES_PER_PX
    assert limits.stack_batch_size(1600, 1600, 2) == limits.BATCH_BUDGET_BYTES // per_image


def test_requests_that_do_not_fit_are_refused(machine):
    machine(4 << 30)
    with pytest.raises(SpectoolsError) as info:
        limits.stack_batch_size(64, 100_000, 2)
    assert info.value.reason.startswith("an aligned stack of 100000-px images needs about ")
    assert info.value.reason.endswith("of memory but 4 GB are available")
    assert info.value.hint.option == "box"
    with pytest.raises(SpectoolsError, match="padded to 64000 px") as info:
        limits.avgps_batch_size(64, 1000, 3, 2, pictures=False)
    assert info.value.hint.option == "pad"
    assert limits.avgps_batch_size(256, 2, 3, 2, pictures=True) == 32


def test_thon_requests(machine):
    machine(4 << 30)
    options = ThonOptions(tile=512, box=512, target_apix=1.4)
    limits.check_thon_request("m.mrc", (4096, 4096), 1.0, options)
    with pytest.raises(SpectoolsError, match=r"m.mrc: a target pixel size of 100 A leaves 6 of "
                                             r"the spectrum's 512 pixels \(at least 16: at most "
                                             r"34.13 A\)"):
        limits.check_thon_request("m.mrc", (4096, 4096), 1.0, ThonOptions(target_apix=100.0))
    with pytest.raises(SpectoolsError, match=r"a 100000-px Thon spectrum needs about"):
        limits.check_thon_request("m.mrc", (4096, 4096), 1.0, ThonOptions(box=100_000))
    # a target finer than the data stops at its Nyquist: nothing is padded, nothing refused
    limits.check_thon_request("m.mrc", (4096, 4096), 1.0, ThonOptions(target_apix=0.01))
    with pytest.raises(SpectoolsError, match=r"m.mrc: the lowest resolution shown \(30 A\) is "
                                             r"finer than Nyquist \(40 A at 20 A/px\)"):
        limits.check_thon_request("m.mrc", (4096, 4096), 20.0, ThonOptions())
    # an unknown pixel size is thon_spectrum's to report
    limits.check_thon_request("m.mrc", (4096, 4096), 0.0, ThonOptions(target_apix=100.0))


def test_thon_options_refuse_what_cannot_be_shown():
    with pytest.raises(SpectoolsError, match=r"highest resolution shown \(40 A\) must be finer "
                                             r"than the lowest \(30 A\)"):
        ThonOptions(max_res_a=40.0)
    with pytest.raises(SpectoolsError, match="at least 16, not 8"):
        ThonOptions(tile=8)
    with pytest.raises(SpectoolsError, match=r"voltage 300000 kV is beyond any microscope"):
        ThonOptions(defocus_u_a=15000.0, voltage_kv=300000.0)
    with pytest.raises(SpectoolsError, match="must be finite"):
        ThonOptions(defocus_u_a=15000.0, cs_mm=float("nan"))


def test_more_threads_than_cores_are_named_as_the_cause(machine, monkeypatch):
    machine(2 << 30)
    monkeypatch.setattr(limits, "_cores", lambda: 2)
    with pytest.raises(SpectoolsError, match="32-px images on 1000000 threads needs") as info:
        limits.stack_batch_size(32, 32, 1_000_000)
    assert (info.value.hint.option, info.value.hint.value) == ("workers", 2)


def test_avgps_options_refuse_a_non_finite_axis_angle():
    from spectools.pipelines.avgps import AvgpsOptions
    with pytest.raises(SpectoolsError, match="axis_angle: not 'auto' or an angle"):
        AvgpsOptions(axis_angle=float("nan"))
