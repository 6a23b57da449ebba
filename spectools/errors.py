"""The one exception type that spectools raises for bad input, and its hints.

Every message is a single line that names the file and what is wrong with it,
so that a front end can print it as is (the command line then exits with
status 2).  When the user can get past the problem by setting an option, the
error carries a :class:`Hint` naming the option by its keyword (e.g.
``skip_missing``) instead of a command-line flag: each front end renders it in
its own terms (``--skip-missing`` on the command line, the form's label in
Scipion, ``skip_missing=True`` in Python).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Optional


@dataclasses.dataclass(frozen=True)
class Hint:
    """What the user can do about an error: set ``option`` (to ``value``) to ``purpose``.

    Parameters
    ----------
    option : str
        Keyword of the option in the job's options (e.g. ``"skip_missing"``).
    value : object, optional
        The value to set; ``None`` means "give a value" (e.g. a pixel size).
    purpose : str
        What setting it achieves, e.g. ``"go on without them"``.
    """

    option: str
    value: Any = None
    purpose: str = ""


def python_hint(hint):
    """The API's rendering of a hint: ``pass skip_missing=True to go on without them``."""
    what = f"{hint.option}=..." if hint.value is None else f"{hint.option}={hint.value!r}"
    return f"pass {what}" + (f" to {hint.purpose}" if hint.purpose else "")


class SpectoolsError(Exception):
    """Bad input or an impossible request, described in one line.

    Parameters
    ----------
    message : str
        What is wrong, in words a user can act on.
    path : str or os.PathLike, optional
        The file the problem is about; prefixed to the message.
    hint : Hint, optional
        An option that gets past the problem, rendered by each front end
        (see :meth:`render`); ``str(error)`` renders it for Python callers.
    """

    def __init__(self, message, path=None, *, hint: Optional[Hint] = None):
        self.path = None if path is None else str(path)
        self.reason = " ".join(str(message).split())
        self.hint = hint
        super().__init__(self.render(python_hint))

    def __reduce__(self):
        # Keeps path and hint when the error crosses processes (a Dask worker's task).
        return _rebuilt_error, (self.reason, self.path, self.hint)

    def render(self, render_hint: Callable[[Hint], str] = python_hint) -> str:
        """The one-line message, with the hint rendered by ``render_hint``.

        A renderer that returns an empty string leaves the hint out (e.g. a
        form that has no such option).
        """
        text = f"{self.path}: {self.reason}" if self.path else self.reason
        hint = render_hint(self.hint) if self.hint is not None else ""
        return f"{text} ({hint})" if hint else text

    def with_path(self, path):
        """The same error about another file (e.g. the output the user named)."""
        return SpectoolsError(self.reason, path, hint=self.hint)


def _rebuilt_error(reason, path, hint):
    return SpectoolsError(reason, path, hint=hint)


def shown(value):
    """A value read from a file as a message shows it: text quoted, numbers plain.

    ``shown("abc")`` is ``'abc'`` and ``shown(np.float64(1e20))`` is ``1e+20``
    (never numpy's ``np.float64(1e+20)``).
    """
    if isinstance(value, (str, bytes)):
        return repr(value.decode("latin-1") if isinstance(value, bytes) else value)
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except (TypeError, ValueError):
            pass
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
