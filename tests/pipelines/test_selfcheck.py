"""The alignment-convention check: the reading that matches the class averages wins."""
import numpy as np
import pytest

from spectools.pipelines.inputs import checked_table
from spectools.pipelines.selfcheck import (CANDIDATES, class_average_correlations,
                                           summarize_check)
from spectools.simulate.dataset import simulate_dataset
from spectools.simulate.segments import Helix
from spectools.io.stacks import open_stack

HELIX = Helix(rise_a=15.0, twist_deg=60.0, radius_a=30.0, csym=1, subunit_sigma_a=4.0)


def test_summarize_check_picks_the_best_total_and_warns_when_it_is_not_as_read():
    scores = {0: {"as read": 0.9, "psi negated": 0.2},
              1: {"as read": 0.8, "psi negated": 0.3}}
    best, verdict = summarize_check(scores)
    assert best == "as read" and "0.850" in verdict and "WARNING" not in verdict
    scores = {0: {"as read": 0.1, "psi negated": 0.7}}
    best, verdict = summarize_check(scores)
    assert best == "psi negated" and verdict.startswith("WARNING") and "0.700" in verdict
    assert summarize_check({})[0] is None


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("selfcheck")
    table, paths = simulate_dataset(folder, [HELIX], 48, 64, 2.0, seed=3, noise_sigma=0.3,
                                    stack_size=1000, formats=("relion",))
    checked, _, _ = checked_table(table)
    # the simulator's class-frame images, averaged: the true class average
    average = np.asarray(open_stack(paths["canonical"])[:]).mean(axis=0)
    return checked, {1: average}


def test_the_true_reading_matches_and_a_negated_one_is_found(dataset):
    table, averages = dataset
    scores = class_average_correlations(table, averages, sample=48)
    assert set(scores[1]) == set(CANDIDATES)
    others = [v for k, v in scores[1].items() if k != "as read"]
    assert scores[1]["as read"] > max(others) + 0.2, scores
    # metadata whose psi and origins were written with the other sign: the check says so
    flipped = table.take(np.arange(len(table)))
    for col in ("psi_deg", "origin_x_px", "origin_y_px"):
        flipped.data[col] = -flipped.data[col]
    scores = class_average_correlations(flipped, averages, sample=48)
    assert max(scores[1], key=scores[1].get).startswith("psi and origin negated")
