"""The option vocabulary: every shown option is described once, for both front ends."""
import dataclasses

import pytest

from spectools.errors import Hint, SpectoolsError
from spectools.pipelines import aligned_stack, avgps, convert, inputs, thon
from spectools.pipelines.options import cli_hint, label_hint

VOCABULARIES = {"avgps": (avgps.AvgpsOptions, avgps.OPTIONS),
                "stack": (aligned_stack.StackOptions, aligned_stack.OPTIONS),
                "thon": (thon.ThonOptions, thon.OPTIONS),
                "convert": (convert.ConvertOptions, convert.OPTIONS),
                "read": (inputs.ReadOptions, inputs.READ_OPTIONS),
                "select": (inputs.SelectOptions, inputs.SELECT_OPTIONS),
                "optics": (inputs.OpticsOptions, inputs.OPTICS_OPTIONS)}


@pytest.mark.parametrize("job", VOCABULARIES)
def test_every_option_has_label_help_and_the_dataclass_default(job):
    options_class, vocabulary = VOCABULARIES[job]
    defaults = options_class()
    for name, option in vocabulary.items():
        assert option.name == name and option.label and option.help.endswith("."), name
        assert option.default == getattr(defaults, name), name
        # help texts are read in Scipion too: no command-line flags, no Python names
        assert "--" not in option.help.replace("--avg_ampl2_ali", "").replace(
            "--apply_transformation", "").replace("--gain_rot", "").replace("--gain_flip", ""), name
        assert "_" not in option.label, name
        if option.kind == "choice" and option.default is not None:
            assert str(option.default) in option.choices, name
        if option.kind == "bool":
            assert option.label.endswith("?"), name


def test_jobs_refuse_impossible_choices_and_misspelt_options():
    with pytest.raises(SpectoolsError, match="mask must be one of"):
        avgps.AvgpsOptions(mask="square")
    with pytest.raises(TypeError):
        avgps.AvgpsOptions(tube_diameter=90.0)
    with pytest.raises(SpectoolsError, match="overlap"):
        thon.ThonOptions(overlap=1.0)
    assert dataclasses.replace(avgps.AvgpsOptions(), axis_angle="12").axis_angle == 12.0


def test_one_hint_rendered_in_each_front_ends_terms():
    error = SpectoolsError("3 of 5 stacks are missing", "p.star",
                           hint=Hint("skip_missing", True, "go on without them"))
    vocabulary = avgps.OPTIONS
    assert error.render(cli_hint(vocabulary)) == (
        "p.star: 3 of 5 stacks are missing (use --skip-missing to go on without them)")
    assert error.render(label_hint(vocabulary)) == (
        "p.star: 3 of 5 stacks are missing (set 'Skip missing stacks?' to Yes to go on "
        "without them)")
    assert str(error) == ("p.star: 3 of 5 stacks are missing (pass skip_missing=True to go on "
                          "without them)")
    # a form without the option leaves the hint out
    assert error.render(label_hint({})) == "p.star: 3 of 5 stacks are missing"
    unknown = SpectoolsError("pixel size unknown", hint=Hint("pixel_size_a", purpose="give it"))
    assert unknown.render(cli_hint(inputs.READ_OPTIONS)).endswith("(give --pixel-size to give it)")
    off = SpectoolsError("x", hint=Hint("normalize", False))
    assert off.render(cli_hint(vocabulary)) == "x (use --no-normalize)"


@pytest.mark.parametrize("job", ["avgps", "stack", "thon"])
def test_workers_default_to_the_cpus_the_process_may_use(job, monkeypatch):
    import os
    options_class, vocabulary = VOCABULARIES[job]
    if hasattr(os, "sched_getaffinity"):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5})
        assert options_class().workers == 3
    assert "every CPU this process may use" in vocabulary["workers"].help


def test_the_raster_option_says_what_auto_decides(capsys):
    from spectools.cli.main import main
    with pytest.raises(SystemExit):
        main(["avgps", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--raster {auto,on,off}" in text
    assert "auto (default): measure, per micrograph" in text and "1.25 times" in text
