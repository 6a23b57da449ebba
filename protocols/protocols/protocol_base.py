"""What every spectools protocol shares: forms from the option vocabulary, runs, messages.

Each option a protocol shows is described once, in the spectools pipeline that
uses it (:mod:`spectools.pipelines.options`): its label with units, help,
choices and parser.  :func:`add_option_param` turns such a description into
a form parameter (the command line builds its arguments from the same ones),
:meth:`SpectoolsProtocol.form_options` reads the form back into the job's
options dataclass, and :meth:`SpectoolsProtocol.option_errors` is the
validation of typed text.  Errors from the pipelines are rendered with the
form's labels (:func:`spectools.pipelines.options.label_hint`), never with
command-line flags.
"""
import json
import os

import pyworkflow.protocol.params as params
import tqdm
from pwem.protocols import EMProtocol
from pyworkflow.protocol import Protocol

from spectools.errors import SpectoolsError
from spectools.pipelines.options import label_hint

from ..constants import PLUGIN_LABEL, UNIT_SUFFIXES

# Scipion's parallel step executor joins every thread of the run before it ends; tqdm's
# monitor thread (started by the first progress bar anyone draws) never ends, and the run
# would hang after its last step.  Without it tqdm only refreshes bars on updates.
tqdm.tqdm.monitor_interval = 0
from ..convert import (MATRIX_FORM_LABELS, MATRIX_FORM_PARAM_LABEL, MATRIX_FORMS, PWEM,
                       legacy_form_warning, missing_image_files)


def param_name(option):
    """The form parameter of an option: its keyword without unit, in camelCase."""
    name = option.name
    for suffix in UNIT_SUFFIXES:
        if name.endswith(suffix):
            name = name[:-len(suffix)]
            break
    first, *rest = name.split("_")
    return first + "".join(part.capitalize() for part in rest)


def add_option_param(form, option, **overrides):
    """Add the form parameter of ``option`` to a form, section, group or line.

    ``overrides`` replace the vocabulary's ``label``, ``help`` or ``default``
    and pass anything else (``condition``, ``expertLevel``...) to ``addParam``.
    """
    label = overrides.pop("label", option.label)
    text = overrides.pop("help", option.help)
    default = overrides.pop("default", option.default)
    kwargs = {"label": label, "help": text}
    if option.expert:
        kwargs["expertLevel"] = params.LEVEL_ADVANCED
    if option.kind == "bool":
        param_class, kwargs["default"] = params.BooleanParam, bool(default)
    elif option.kind == "choice":
        param_class = params.EnumParam
        kwargs["choices"] = list(overrides.pop("choices", option.choices))
        kwargs["default"] = list(option.choices).index(str(default))
        if len(option.choices) <= 4:
            kwargs["display"] = params.EnumParam.DISPLAY_HLIST
    elif option.kind in ("float", "int"):
        param_class = params.FloatParam if option.kind == "float" else params.IntParam
        kwargs["default"] = default
        kwargs["allowsNull"] = default is None
    else:
        param_class = params.PathParam if option.kind == "path" else params.StringParam
        kwargs["default"] = _as_text(default)
    kwargs.update(overrides)
    return form.addParam(param_name(option), param_class, **kwargs)


def _as_text(value):
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def plural(n, word, words=None):
    """``1 micrograph``, ``2 micrographs``."""
    return f"{n} {word if n == 1 else (words or word + 's')}"


class PluginLabel:
    """Labels of the plugin's protocols as ``spectools - <label>``.

    Scipion labels a new run with its class label, by default the plugin's
    module name and the protocol's label; the Methods tab then writes the run's
    label between underscores (italics markup), which the underscore of
    ``spectools_scipion`` breaks.
    """

    @classmethod
    def getClassLabel(cls, prependPackageName=True):
        label = cls.__dict__.get("_label", cls.__name__)
        return f"{PLUGIN_LABEL} - {label}" if prependPackageName else label


class SpectoolsProtocol(PluginLabel, EMProtocol):
    """Base of the spectools protocols.

    Subclasses set :attr:`_inputName` (the pointer parameter of their main
    input) and :attr:`_vocabulary` (the job's options, for messages).
    """
    _inputName = "inputSet"
    _vocabulary = {}

    # --------------------------- forms ----------------------------------------
    def form_value(self, option):
        """The value of ``option``'s form parameter, in the pipeline's terms."""
        value = getattr(self, param_name(option)).get()
        if option.kind == "choice":
            return option.choices[int(value)]
        if option.kind in ("text", "path"):
            value = (value or "").strip()
            return option.parse_text(value) if value else option.default
        return value

    def form_options(self, options_class, vocabulary, **fixed):
        """The job's options dataclass from the form (options not on the form keep defaults)."""
        values = {}
        for name, option in vocabulary.items():
            if hasattr(self, param_name(option)):
                values[name] = self.form_value(option)
        values.update(fixed)
        return options_class(**values)

    def option_errors(self, vocabulary):
        """Validation messages for typed text that does not parse, naming the form's label."""
        errors = []
        for option in vocabulary.values():
            if option.kind != "text" or not hasattr(self, param_name(option)):
                continue
            try:
                self.form_value(option)
            except ValueError as exc:
                errors.append(f"{option.label}: {exc}.")
        return errors

    # --------------------------- running --------------------------------------
    def threads(self):
        """Threads the user gave the run (at least 1)."""
        value = self.numberOfThreads.get() if hasattr(self, "numberOfThreads") else 1
        return max(1, int(value or 1))

    def step_threads(self, parallel_steps):
        """Threads for each of ``parallel_steps`` steps that may run at once.

        Scipion's parallel step executor keeps one of the run's threads for
        itself and runs up to ``threads - 1`` steps at a time; the run's
        threads are shared among the steps that run together.
        """
        at_once = max(1, min(parallel_steps, self.threads() - 1))
        return max(1, self.threads() // at_once)

    def parallel_steps(self):
        """How many steps Scipion's executor can run at once for this run (threads - 1)."""
        return max(1, self.threads() - 1)

    def run_job(self, job, *args, **kwargs):
        """Run a spectools job; its errors become one line in this form's terms.

        The line goes to the Output Log (run.stdout; Scipion's own error
        messages go to run.stderr) and is the failed step's message, which
        Scipion shows in the run's summary.
        """
        try:
            return job(*args, **kwargs)
        except SpectoolsError as exc:
            shown = {name: option for name, option in self._vocabulary.items()
                     if hasattr(self, param_name(option))}
            message = exc.render(label_hint(shown))
            self.info(f"ERROR: {message}")
            raise SpectoolsError(message) from None

    def log_lines(self, lines):
        for line in lines:
            self.info(line.strip())

    def read_sidecar(self, name):
        """A JSON sidecar of this run's extra folder, or None before it exists."""
        path = self._getExtraPath(name)
        if not os.path.exists(path):
            return None
        with open(path) as fh:
            return json.load(fh)

    def context(self):
        """What the sidecar records of a Scipion run."""
        return {"protocol": self.getRunName() or self._label, "input": self.input_name()}

    # --------------------------- inputs and provenance -------------------------
    def input_pointer(self):
        return getattr(self, self._inputName)

    def input_name(self):
        """The main input as Scipion's forms show it: its label, else ``run label.output``."""
        return input_label(self, self.input_pointer())

    def input_link(self):
        """:meth:`input_name` as a link Scipion's summaries open."""
        obj = self.input_pointer().get()
        return f"[[sci-open:{obj.getObjId()}][{self.input_name()}]]" if obj is not None else ""

    def missing_files_error(self, obj, what="image"):
        """A validation message when image files of ``obj`` do not exist, else None."""
        missing, total = missing_image_files(obj)
        if not missing:
            return None
        verb = "does" if len(missing) == 1 else "do"
        return (f"{len(missing)} of {plural(total, what + ' file')} of the input "
                f"({self.input_name()}) {verb} not exist, e.g. {', '.join(missing[:2])}.")

    def matrix_form(self):
        return MATRIX_FORMS[self.matrixForm.get()] if hasattr(self, "matrixForm") else PWEM

    def provenance_warning(self):
        """The legacy-matrix warning for this protocol's input ('' when none applies)."""
        try:
            return legacy_form_warning(_producing_pointer(self, self.input_pointer()),
                                       self.matrix_form())
        except Exception:  # provenance is a courtesy; never block a run on it
            return ""

    def _warnings(self):
        warning = self.provenance_warning()
        return [warning] if warning else []


def add_matrix_form_param(form):
    """The advanced 'Alignment matrices' choice (see ``convert``)."""
    form.addParam("matrixForm", params.EnumParam, choices=list(MATRIX_FORM_LABELS), default=0,
                  expertLevel=params.LEVEL_ADVANCED, label=MATRIX_FORM_PARAM_LABEL,
                  help="How the input's 2D alignment matrices are read.\n\n"
                       "pwem (default): aligned = M · raw, as pwem defines a 2D alignment and "
                       "as Xmipp applies it.\n\n"
                       "RELION/cryoSPARC plugins: those plugins store RELION's origin after "
                       "the rotation, M = [R(psi) | origin] (RELION's pre-2019 form). Choose "
                       "it for particles aligned by RELION or cryoSPARC through Scipion to "
                       "apply the shifts as RELION did. In power spectra the layer lines do not "
                       "move (only the mask cuts a little differently); aligned images are "
                       "off by R(psi)·origin − origin.")


def input_label(protocol, pointer):
    """A pointed set as Scipion's forms show it: its own label, else ``run label.output``.

    Follows ``pyworkflow.gui.form.getObjectLabel``; a pointer straight to a set
    (not protocol + output name) is traced to the protocol that made it.
    """
    obj = pointer.get() if pointer is not None else None
    if obj is None:
        return ""
    label = (obj.getObjLabel() or "").strip()
    if label:
        return label
    producer, output = _producer(protocol, pointer)
    if producer is None:
        return output or type(obj).__name__
    return f"{producer.getRunName()}.{output}"


def _producer(protocol, pointer):
    """(protocol that made the pointed set, name of that output), or (None, name)."""
    value = pointer.getObjValue()
    if isinstance(value, Protocol):
        return value, pointer.getExtended() or ""
    obj = pointer.get()
    name = obj.getLastName() if hasattr(obj, "getLastName") else ""
    try:  # a direct pointer to a set: its parent in the project is the protocol
        parent = protocol.getProject().getProtocol(obj.getObjParentId())
    except Exception:
        parent = None
    return parent, name


def _producing_pointer(protocol, pointer):
    """A pointer whose ``getObjValue()`` is the protocol that made the pointed set."""
    value = pointer.getObjValue() if pointer is not None else None
    if value is None or isinstance(value, Protocol):
        return pointer
    parent, _ = _producer(protocol, pointer)

    class _Ptr:
        def getObjValue(self):
            return parent

    return _Ptr() if parent is not None else pointer

