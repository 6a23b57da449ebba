"""The text parsers shared by the command line and the Scipion forms."""
import pytest

from spectools.pipelines.parsing import (MAX_CLASSES, parse_axis_angle, parse_class_list,
                                         parse_frame_range, parse_key_values, parse_overlay,
                                         parse_positive_float, parse_resolutions)


@pytest.mark.parametrize("text, expected", [
    ("3", [3]), ("0", [0]), ("1,3,5-7", [1, 3, 5, 6, 7]), ("1 3  5-6", [1, 3, 5, 6]),
    ("5,1,5,2-3,3", [5, 1, 2, 3]), (" 2 , 4 ", [2, 4]),
])
def test_class_lists(text, expected):
    assert parse_class_list(text) == expected


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("a", "not a class list"), ("-1", "0 or more"), ("7-3", "backwards"),
    ("1-", "not a class list"), (f"1-{MAX_CLASSES + 1}", "more than"),
    ("1-100000000000", "more than"), ("1.5", "not a class list"),
])
def test_bad_class_lists(text, words):
    with pytest.raises(ValueError, match=words):
        parse_class_list(text)


def test_numbers_must_be_finite():
    assert parse_positive_float("2.5") == 2.5
    for text in ("nan", "inf", "-1", "0", "x"):
        with pytest.raises(ValueError):
            parse_positive_float(text)
    assert parse_axis_angle("auto") == "auto" and parse_axis_angle(" -12.5 ") == -12.5
    for text in ("nan", "inf", "up"):
        with pytest.raises(ValueError, match="not 'auto' or an angle"):
            parse_axis_angle(text)


def test_overlay_and_key_values():
    assert parse_overlay("twist=60,rise=15") == {"twist": 60.0, "rise": 15.0, "csym": 1}
    assert parse_overlay("twist=-40, rise=20, csym=2, diameter=90")["csym"] == 2
    for text, words in (("twist=60", "needs at least"), ("twist=60,rise=-1", "positive"),
                        ("twist=60,rise=15,csym=1.5", "whole number"),
                        ("twist=60,rise=15,pitch=3", "key from"),
                        ("twist=nan,rise=15", "finite")):
        with pytest.raises(ValueError, match=words):
            parse_overlay(text)
    assert parse_key_values("a=1,,b=2", ("a", "b"), "x") == {"a": 1.0, "b": 2.0}


def test_resolutions_and_frames():
    assert parse_resolutions("10,4.7") == (10.0, 4.7) and parse_resolutions("10 5") == (10, 5)
    with pytest.raises(ValueError):
        parse_resolutions("10,-1")
    assert parse_frame_range("1:") == slice(1, None)
    assert parse_frame_range(":5") == slice(None, 5)
    assert parse_frame_range("3") == slice(3, 4)
    with pytest.raises(ValueError, match="not 'A:B'"):
        parse_frame_range("a:b")
