"""One description of every option, read by the command line and the Scipion forms.

Each job's options are a frozen dataclass (``AvgpsOptions``, ...) whose field
defaults are the defaults everywhere; beside it the job lists an
:class:`Option` per field with what a front end needs to show it: a label
with units (Scipion's forms), a help text (both), the choices, the parser of
typed text, and the command-line flag.  The command line builds its
``argparse`` arguments from them (:mod:`spectools.cli.common`), the protocols
their form parameters (``spectools_scipion.protocols.base``), so the two
cannot drift apart.

Help texts name neither flags nor Python names: they are shown in both
worlds.  :func:`cli_hint` and :func:`label_hint` render an error's
:class:`~spectools.errors.Hint` for each.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional

from ..errors import Hint

#: Kinds of option: how a front end shows and parses it.
KINDS = ("float", "int", "bool", "choice", "text", "path")


@dataclasses.dataclass(frozen=True)
class Option:
    """How to show, ask for and parse one option of a job.

    Attributes
    ----------
    name : str
        Keyword of the option in the job's options dataclass.
    label : str
        Short label with units, e.g. ``"Tube diameter (Å)"``; yes/no options
        are phrased as questions (``"Normalize each segment?"``).
    help : str
        What the option does and means, in words for users of any front end.
    kind : {"float", "int", "bool", "choice", "text", "path"}
    default : object
        Filled from the options dataclass by :func:`vocabulary`.
    choices : tuple of str
        For ``kind="choice"``.
    parse : callable, optional
        Text -> value (raises ``ValueError``); for float/int/text options.
    flag : str
        Command-line flag; default ``--name-with-dashes``.  A yes/no option
        whose default is yes has a ``--no-...`` flag.
    metavar : str
        Placeholder in the command line's usage (e.g. ``"A"`` for Å).
    expert : bool
        Shown only in Scipion's advanced view.
    """

    name: str = ""
    label: str = ""
    help: str = ""
    kind: str = "float"
    default: Any = None
    choices: tuple = ()
    parse: Optional[Callable[[str], Any]] = None
    flag: str = ""
    metavar: str = ""
    expert: bool = False

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown option kind {self.kind!r}")

    @property
    def cli_flag(self) -> str:
        """The command-line flag."""
        if self.flag:
            return self.flag
        if self.kind == "bool" and self.default is True:
            return "--no-" + self.name.replace("_", "-")
        return "--" + self.name.replace("_", "-")

    def parse_text(self, text):
        """The value of ``text`` typed by a user (raises ``ValueError``)."""
        if self.kind == "choice":
            if text not in self.choices:
                raise ValueError(f"{text!r} is not one of {', '.join(self.choices)}")
            return text
        if self.parse is not None:
            return self.parse(text)
        return text


def vocabulary(options_class, **options: Option) -> dict:
    """The options of a job, named and with the defaults of ``options_class``'s fields.

    Every keyword must be a field of ``options_class``; fields without an
    :class:`Option` are not shown by front ends.
    """
    fields = {f.name: f for f in dataclasses.fields(options_class)}
    out = {}
    for name, option in options.items():
        if name not in fields:
            raise ValueError(f"{options_class.__name__} has no field {name!r}")
        field = fields[name]
        default = (field.default if field.default is not dataclasses.MISSING
                   else field.default_factory() if field.default_factory is not dataclasses.MISSING
                   else None)
        out[name] = dataclasses.replace(option, name=name, default=default)
    return out


def check_known(options_class, values, what="option"):
    """Refuse keywords that are not fields of ``options_class`` (a misspelt option).

    Raises
    ------
    TypeError
        Naming the unknown keywords and the known ones.
    """
    known = {f.name for f in dataclasses.fields(options_class)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"unknown {what}{'s' * (len(unknown) > 1)} {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(known))}")


def cli_hint(options: dict) -> Callable[[Hint], str]:
    """A hint renderer for the command line: ``use --skip-missing to go on without them``."""

    def render(hint: Hint) -> str:
        option = options.get(hint.option)
        flag = option.cli_flag if option else "--" + hint.option.replace("_", "-")
        if hint.value is None:
            text = f"give {flag}"
        elif isinstance(hint.value, bool):
            text = f"use {flag}"
        else:
            text = f"use {flag} {hint.value}"
        return text + (f" to {hint.purpose}" if hint.purpose else "")

    return render


def label_hint(options: dict) -> Callable[[Hint], str]:
    """A hint renderer for forms: ``set 'Skip missing stacks?' to Yes to go on without them``.

    ``options`` are the options the form shows; a hint about another option
    is left out (the form offers no way to follow it).
    """

    def render(hint: Hint) -> str:
        option = options.get(hint.option)
        if option is None:
            return ""
        label = f"'{option.label}'"
        if hint.value is None:
            text = f"set {label}"
        elif isinstance(hint.value, bool):
            text = f"set {label} to {'Yes' if hint.value else 'No'}"
        else:
            text = f"set {label} to {hint.value}"
        return text + (f" to {hint.purpose}" if hint.purpose else "")

    return render
