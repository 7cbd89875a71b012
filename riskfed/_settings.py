"""The building blocks of :mod:`riskfed.settings`: constraints and the records that
declare a parameter (:class:`Param`) and how the app shows it (:class:`UiHint`).

Import them from :mod:`riskfed.settings`, which re-exports every name here.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from riskfed.errors import ConfigurationError

# --------------------------------------------------------------------------- constraints


class Constraint:
    """What a value must be; :meth:`describe` completes "must be …"."""

    def is_satisfied_by(self, value: Any) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover - abstract
        raise NotImplementedError


def _is_int(value: Any) -> bool:
    # bool is an int subclass, but max_epochs=True is a bug, not a request for one epoch.
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``type`` (``int`` or ``float``) between ``left`` and ``right``.

    ``None`` for a bound means unbounded (never infinity itself: ``inf`` and ``nan`` are
    refused). ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    A ``float`` interval also takes ints.
    """

    type: type
    left: float | None
    right: float | None
    closed: str = "both"

    def is_satisfied_by(self, value: Any) -> bool:
        if not (_is_int(value) if self.type is int else _is_real(value)):
            return False
        if not math.isfinite(value):
            return False
        if self.left is not None and (value < self.left or (value == self.left and self.closed in ("right", "neither"))):
            return False
        if self.right is not None and (value > self.right or (value == self.right and self.closed in ("left", "neither"))):
            return False
        return True

    def _bound(self, value: float | None, side: str) -> str:
        if value is None:
            return "-inf" if side == "left" else "inf"
        return str(int(value)) if self.type is int else repr(float(value))

    def range_text(self) -> str:
        """``[1, inf)``, ``(0.0, 1.0)``: the interval in the usual notation."""
        lo = "[" if self.closed in ("both", "left") and self.left is not None else "("
        hi = "]" if self.closed in ("both", "right") and self.right is not None else ")"
        return f"{lo}{self._bound(self.left, 'left')}, {self._bound(self.right, 'right')}{hi}"

    def describe(self) -> str:
        return f"{'an int' if self.type is int else 'a float'} in the range {self.range_text()}"


@dataclass(frozen=True)
class Options(Constraint):
    """One of a fixed tuple of values (shown in this order)."""

    values: tuple

    def is_satisfied_by(self, value: Any) -> bool:
        # Only scalars: "x in values" on an array would be ambiguous, on a list misleading.
        return isinstance(value, (str, numbers.Number)) and not isinstance(value, bool) and value in self.values

    def describe(self) -> str:
        return "one of " + ", ".join(str(v) for v in self.values)


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False`` (numpy booleans too; not 0 or 1)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, bool) or type(value).__name__ == "bool_"

    def describe(self) -> str:
        return "a bool"


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string."""

    def is_satisfied_by(self, value: Any) -> bool:
        return isinstance(value, str) and value != ""

    def describe(self) -> str:
        return "a non-empty str"


@dataclass(frozen=True)
class NonZeroInt(Constraint):
    """An int other than 0 (joblib's ``n_jobs``: -1 means every core)."""

    def is_satisfied_by(self, value: Any) -> bool:
        return _is_int(value) and value != 0

    def describe(self) -> str:
        return "a non-zero int (-1: every core)"


@dataclass(frozen=True)
class _NoneAllowed(Constraint):
    def is_satisfied_by(self, value: Any) -> bool:
        return value is None

    def describe(self) -> str:
        return "None"


#: Put in a parameter's constraints where ``None`` is allowed (see ``Param.none_means``).
NONE = _NoneAllowed()

# ------------------------------------------------------------------------- declarations

#: Where each kind of control goes and what it needs (see the module docstring).
WIDGETS = ("select", "radio", "number", "slider", "checkbox", "seed")
#: App pages that show settings.
PAGES = ("data", "align", "train", "score")


@dataclass(frozen=True)
class UiHint:
    """How the analyst app shows one parameter.

    Attributes
    ----------
    label:
        The control's label.
    widget:
        One of :data:`WIDGETS`.
    page:
        One of :data:`PAGES`.
    expander:
        Title of the expander the control sits in; ``None``: on the page itself.
    choices, test_choices, choice_labels:
        For ``select``/``radio``: the values offered, extra values offered only in
        insecure test mode, and a label per value (default: the value).
    min, max, step, format:
        For ``number``/``slider``/``seed``, in widget units (percent for ``percent``).
    percent:
        The library value is a fraction shown as a whole percentage (0.3 → 30).
    help:
        Tooltip; default the parameter's help.
    toggle_label, toggle_help:
        For ``seed``: the checkbox that enables the number (unticked: ``None``).
    start, start_reason:
        A starting value (library units) that deliberately differs from the library
        default, and why; ``None``: start at the default.
    """

    label: str
    widget: str
    page: str
    expander: str | None = None
    choices: tuple = ()
    test_choices: tuple = ()
    choice_labels: Mapping[Any, str] = field(default_factory=dict)
    min: float | None = None
    max: float | None = None
    step: float | None = None
    format: str | None = None
    percent: bool = False
    help: str | None = None
    toggle_label: str | None = None
    toggle_help: str | None = None
    start: Any = None
    start_reason: str | None = None

    def to_widget(self, value: Any) -> Any:
        """A library value in the control's units (0.3 → 30 for a percentage)."""
        if self.percent and value is not None:
            return int(round(value * 100))
        return value

    def from_widget(self, value: Any) -> Any:
        """The control's value in library units (30 → 0.3 for a percentage)."""
        if self.percent and value is not None:
            return value / 100.0
        return value

    def label_of(self, choice: Any) -> str:
        return self.choice_labels.get(choice, str(choice))


@dataclass(frozen=True)
class Param:
    """One user-facing parameter.

    Attributes
    ----------
    name:
        Unique name; also the keyword argument unless ``keyword`` says otherwise.
    default:
        The library default.
    constraints:
        The value must satisfy one of them (:data:`NONE` allows ``None``).
    help:
        One line: what it does (CLI help and app tooltip).
    group:
        One of :data:`GROUPS`.
    owners:
        Who takes it: ``estimator`` (VerticalLogisticRegression), ``hyperparameters``
        (the training plan), ``job`` (run_pipeline), ``scorecard``, ``pilot``
        (generate_pilot), ``scoring`` (score_applicants / score_file).
    cli:
        The command-line flag (``--epochs``), or ``None`` if it has none.
    metavar:
        Placeholder in the CLI help.
    none_means:
        What ``None`` does, where allowed ("a fresh 256-bit secret per session").
    ui:
        How the app shows it, or ``None`` if it does not.
    keyword:
        The keyword argument when it differs from ``name``.
    """

    name: str
    default: Any
    constraints: tuple[Constraint, ...]
    help: str
    group: str
    owners: frozenset[str]
    cli: str | None = None
    metavar: str | None = None
    none_means: str | None = None
    ui: UiHint | None = None
    keyword: str | None = None

    @property
    def kwarg(self) -> str:
        """The keyword argument this parameter is passed as."""
        return self.keyword or self.name

    @property
    def dest(self) -> str | None:
        """The argparse destination of :attr:`cli` (``--key-bits`` → ``key_bits``)."""
        return None if self.cli is None else self.cli.lstrip("-").replace("-", "_")

    def describe(self) -> str:
        """What the value must be ("an int in the range [1, 999999]")."""
        parts = []
        for c in self.constraints:
            if c is NONE:
                parts.insert(0, f"None ({self.none_means})" if self.none_means else "None")
            else:
                parts.append(c.describe())
        return " or ".join(parts)

    def is_valid(self, value: Any) -> bool:
        return any(c.is_satisfied_by(value) for c in self.constraints)

    def check(self, value: Any, owner: str, *, shown_as: str | None = None) -> Any:
        """Return ``value`` if it satisfies the declaration; raise otherwise.

        ``shown_as`` names the parameter as the owner's signature spells it (``seed``).
        """
        if not self.is_valid(value):
            name = shown_as or self.kwarg
            raise ConfigurationError(f"The {name!r} parameter of {owner} must be {self.describe()}. Got {value!r} instead.")
        return value

    # -- command line ------------------------------------------------------------------
    def parse(self, text: str) -> Any:
        """A command-line string as a value (raises ``ValueError`` with a short reason)."""
        numeric = next((c for c in self.constraints if isinstance(c, (Interval, NonZeroInt))), None)
        if numeric is None:
            return text
        as_int = isinstance(numeric, NonZeroInt) or numeric.type is int
        try:
            value = int(text) if as_int else float(text)
        except ValueError:
            raise ValueError(f"expected a whole number, got {text!r}" if as_int else f"expected a number, got {text!r}") from None
        if not self.is_valid(value):
            if isinstance(numeric, NonZeroInt):
                raise ValueError(f"expected a whole number other than 0, got {value}")
            raise ValueError(f"expected a number in {numeric.range_text()}, got {value}")
        return value


# ------------------------------------------------------------------- command line, app


def _help(p: Param, text: str | None, default: Any) -> str:
    text = text or p.help
    if any(isinstance(c, Boolean) for c in p.constraints):
        # A flag that is off by default says so by existing (--insecure-test-key).
        return f"{text} (default on)" if default else text
    if default is None:
        return f"{text} (default: {p.none_means})" if p.none_means else text
    return f"{text} (default {default})"


def add_cli_option(target, p: Param, *, default: Any, help: str | None = None) -> None:
    """Add ``p``'s argparse option to ``target`` with this default (and help, if not the declared)."""
    import argparse

    if p.cli is None:
        raise ConfigurationError(f"The setting {p.name!r} has no command-line flag.")
    kwargs: dict[str, Any] = {"dest": p.dest, "default": default, "help": _help(p, help, default)}
    if any(isinstance(c, Boolean) for c in p.constraints):
        kwargs["action"] = "store_true" if not p.default else argparse.BooleanOptionalAction
    elif any(isinstance(c, Options) for c in p.constraints):
        kwargs["choices"] = next(c for c in p.constraints if isinstance(c, Options)).values
    else:
        kwargs["type"] = _cli_type(p)
    if p.metavar:
        kwargs["metavar"] = p.metavar
    target.add_argument(p.cli, **kwargs)


def _cli_type(p: Param):
    import argparse

    def convert(text: str):
        try:
            return p.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = p.name  # argparse names the type in "invalid <name> value"
    return convert


def widget(p: Param, *, test_mode: bool = False) -> tuple[str, dict[str, Any]]:
    """The Streamlit function name and keyword arguments for ``p``'s control.

    ``seed`` controls return the number input's; the app draws the toggle
    (``p.ui.toggle_label``) itself. Labels, keys and values are the caller's.
    """
    hint = p.ui
    if hint is None:
        raise ConfigurationError(f"The setting {p.name!r} is not shown in the app.")
    common = {"help": hint.help or p.help[:1].upper() + p.help[1:] + "."}
    if hint.widget in ("select", "radio"):
        options = tuple(hint.choices) + (tuple(hint.test_choices) if test_mode else ())
        kind = "selectbox" if hint.widget == "select" else "radio"
        return kind, common | {"options": options, "format_func": hint.label_of}
    if hint.widget == "checkbox":
        return "checkbox", common
    ranges = {k: v for k, v in (("min_value", hint.min), ("max_value", hint.max), ("step", hint.step), ("format", hint.format)) if v is not None}
    return ("slider" if hint.widget == "slider" else "number_input"), common | ranges


def start_value(p: Param) -> Any:
    """The value (library units) the app's control for ``p`` starts at."""
    if p.ui is not None and p.ui.start is not None:
        return p.ui.start
    return p.default
