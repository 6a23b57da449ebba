"""Simulated helices with known symmetry: the proof set of ``spectools index``.

Shared by ``tests/pipelines/test_index.py`` and ``benchmarks/bench_index.py`` (which
prints the rank table of the README), so both speak of the same helices.  Each is
chosen so that its layer lines are resolved in a 160-pixel box at 2 Å/px (320 Å
segments: lines about 1/240 Å⁻¹ wide): 1-start and multi-start (C2, C3, C4), twists
near 180° (2.1 to 2.2 units per turn), radii 25 to 50 Å, subunits of 2.5 to 4 Å, the
meridional reflection visible or not.
"""
from pathlib import Path

from spectools.pipelines.avgps import AvgpsOptions, run_avgps
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix

#: Label -> helix; "what" says what each one tests.
PROOF_HELICES = {
    "A": (Helix(15.0, 60.0, 30.0, 1, 4.0), "1-start, 6 units/turn"),
    "B": (Helix(20.0, -100.0, 45.0, 2, 4.0), "2-start (C2), 3.6 units/turn per strand"),
    "C": (Helix(10.0, 165.0, 35.0, 1, 3.0), "near 180 deg: 2.18 units/turn"),
    "D": (Helix(8.0, 170.0, 30.0, 1, 3.0), "near 180 deg: 2.12 units/turn"),
    "E": (Helix(25.0, 40.0, 50.0, 3, 4.0), "3-start (C3), wide"),
    "F": (Helix(5.0, 100.0, 25.0, 1, 2.5), "alpha-helix-like 3.6 units/turn, 1/rise not visible"),
    "G": (Helix(9.0, 30.0, 40.0, 1, 3.0), "12 units/turn, 1/rise barely visible"),
    "H": (Helix(18.0, -50.0, 40.0, 4, 4.0), "4-start (C4)"),
    "I": (Helix(6.0, -168.0, 30.0, 1, 2.5), "near 180 deg, left-handed: 2.14 units/turn"),
    "J": (Helix(12.0, 22.5, 45.0, 1, 3.0), "16 units/turn, dense lines"),
}
#: Box (px) and pixel size (Å) of the proof set.
BOX, PIXEL_SIZE_A = 160, 2.0


def outer_diameter(helix):
    """The diameter a user would measure on the class average: subunit centres plus 1.5 sigma."""
    return 2.0 * (helix.radius_a + 1.5 * helix.subunit_sigma_a)


def simulated_spectrum(folder, helix, n, *, noise_sigma=0.5, seed=1, aligned_on_grid=True,
                       box=BOX, pixel_size_a=PIXEL_SIZE_A, workers=1):
    """The averaged spectrum (``spectools avgps``) of simulated segments of one helix.

    With ``aligned_on_grid`` every segment has psi 0 and no shift (as if 2D
    classification stored one angle): the spectrum is the same in distribution
    and much cheaper; otherwise psi is uniform and shifts random, and every
    segment is rotated into the class frame.

    Returns
    -------
    Path
        The spectrum (``folder/avgps.mrc``, its sidecar beside it).
    """
    folder = Path(folder)
    psi = (0.0, 0.0) if aligned_on_grid else (-180.0, 180.0)
    table, _ = simulate_dataset(folder, [helix], n, box, pixel_size_a, seed=seed,
                                noise_sigma=noise_sigma, stack_size=max(n, 1),
                                formats=("relion",), psi_range_deg=psi,
                                shift_sigma_px=0.0 if aligned_on_grid else 3.0)
    tube = min(0.9 * box * pixel_size_a, 1.2 * outer_diameter(helix))
    options = AvgpsOptions(tube_diameter_a=tube, workers=workers,
                           axis_angle=0.0 if aligned_on_grid else "auto")
    run_avgps(table, folder / "avgps.mrc", options, show_progress=False)
    return folder / "avgps.mrc"
