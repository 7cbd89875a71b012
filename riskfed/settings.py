"""The one declaration of every user-facing parameter, and the checks built from it.

Each parameter is declared once, as a :class:`Param`: its name, default, constraint,
one-line help, group, command-line flag and hints for the analyst app. The estimator
(:class:`~riskfed.models.estimator.VerticalLogisticRegression`), the training plan
(:class:`~riskfed.learning.linear.Hyperparameters`), the command line and the app
all derive their defaults and checks from here, so they agree by construction (the way
scikit-learn declares ``_parameter_constraints`` once). A wrong value reads the same
everywhere::

    The 'learning_rate' parameter of VerticalLogisticRegression must be a float in the
    range (0.0, inf). Got -0.1 instead.

This module is the lowest layer with :mod:`riskfed.errors`: it imports nothing else
from riskfed and nothing heavy, so every layer may use it.

The API (stable: callers may rely on every name below)
------------------------------------------------------
Reading the declaration:

* :data:`PARAMS` — every :class:`Param`, in the order a form shows them;
  :data:`GROUPS` — group name → one-line description.
* :func:`param` (name → :class:`Param`), :func:`params` (filter by ``group``, ``owner``,
  ``page``, ``ui=True``, ``cli=True``), :func:`defaults` (name → default).

Checking values (one message format, :class:`~riskfed.errors.ConfigurationError`):

* :func:`check` one value; :func:`validate` a mapping of them;
  :func:`check_value` a value against a constraint that is not a declared parameter's
  (e.g. ``batch_size`` against a plan's own ``min_batch_size``).
* Constraints: :class:`Interval`, :class:`Options`, :class:`Boolean`, :class:`Text`,
  :class:`NonZeroInt`, and :data:`NONE` where ``None`` is allowed (``Param.none_means``
  says what ``None`` does).

The command line (:mod:`riskfed.cli`):

* :func:`add_cli_options` adds argparse options for named parameters (type, choices,
  default and help from the declaration, ``(default X)`` appended); per-command
  ``defaults=`` / ``helps=`` overrides are explicit at the call site.
* :func:`cli_values` reads them back as keyword arguments (``args.epochs`` →
  ``max_epochs``).

The analyst app (:mod:`riskfed.ui`): every parameter shown in the app has
``Param.ui``, a :class:`UiHint`. To build the controls of a page::

    for p in settings.params(page="train", ui=True):      # declaration order
        where = expander(p.ui.expander) if p.ui.expander else page   # None: on the page
        kind, kwargs = settings.widget(p, test_mode=...)   # e.g. ("number_input", {...})
        value = getattr(where, kind)(p.ui.label, key=p.name, **kwargs)
        kwargs_for_estimator[p.kwarg] = p.ui.from_widget(value)

* ``p.ui.widget`` is one of :data:`WIDGETS`: ``select`` (``choices``, plus
  ``test_choices`` in insecure test mode), ``radio`` (``choices`` with
  ``choice_labels``), ``number`` (``min``/``max``/``step``/``format``), ``slider`` (the
  same; ``percent=True`` shows a fraction as a whole percentage), ``checkbox`` and
  ``seed`` (a checkbox ``toggle_label`` that enables a number; unticked means ``None``).
* A control starts at ``p.ui.to_widget(settings.start_value(p))`` — the library default
  unless the hint names a ``start`` with its reason (``start_reason``).
* The test that the app agrees with the library (tests/test_settings.py) reads the
  app's starting values from ``riskfed.ui.controls.control_defaults()``, which returns
  parameter name → the value (in library units, e.g. ``test_size=0.3``) each generated
  control starts at; until the app provides it, that part of the test is skipped.

Adding a setting: declare it in :data:`PARAMS` (with ``owners`` naming who takes it),
add the keyword to the owner's signature with ``defaults()[name]`` as its default, and
(if it has ``cli``) pass its name to :func:`add_cli_options` where the command is built.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
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


def _ints(low: int, high: int | None = None) -> tuple[Constraint, ...]:
    return (Interval(int, low, high, closed="both" if high is not None else "left"),)


def _floats(low: float | None, high: float | None, closed: str) -> tuple[Constraint, ...]:
    return (Interval(float, low, high, closed=closed),)


_EST = frozenset({"estimator"})
_EST_HYPER = frozenset({"estimator", "hyperparameters"})
_HYPER = frozenset({"hyperparameters"})

#: Group name → what its parameters are about.
GROUPS = {
    "alignment": "finding the shared customers (private set intersection)",
    "training": "the encrypted training session and its optimiser",
    "evaluation": "the holdout and the models the federated one is compared with",
    "scorecard": "points scaling stored with the model",
    "scaling": "how the work is spread over cores and machines",
    "runtime": "reproducibility and the test-only flags of a run",
    "pilot": "the synthetic pilot data",
    "scoring": "scoring new applicants with a saved model",
}

# Rounds are numbered epoch * 10^6 + batch + 1 (riskfed.protocol.messages.round_of), below
# the scoring rounds (from 10^12): these bounds keep every round number distinct.
MAX_EPOCHS = 999_999
MAX_STEPS_PER_EPOCH = 999_998
# The residual bound of the fixed-point encoding (riskfed.crypto.encoding) sums at most
# 2^6 partial scores: the bank and at most 63 fintechs.
MAX_FINTECHS = 63
# A fixed seed is for reproducible tests and pilots: the customary 32-bit range.
MAX_FIXED_SEED = (1 << 32) - 1

_KEY_HELP = "2048 bits is the minimum for real data; 3072 bits is stronger and about 3× slower."
_SEED_HELP = (
    "Off: a fresh secret decides the split and batches of every run. A fixed seed reveals the split to anyone who "
    "knows it, and with it which shared customers default — for tests on synthetic data only."
)

#: Every user-facing parameter, in the order a form shows them.
PARAMS: tuple[Param, ...] = (
    # -- alignment
    Param(
        "psi", "ecdh", (Options(("ecdh", "keyed-hash")),),
        "id alignment: ecdh (neither side learns ids outside the intersection) or keyed-hash (faster, but a key "
        "holder can test guesses of the other side's ids)",
        "alignment", _EST, cli="--psi",
        ui=UiHint(
            "How should customers be matched?", "radio", "align",
            choices=("ecdh", "keyed-hash"),
            choice_labels={"ecdh": "ECDH private set intersection", "keyed-hash": "Keyed hash (faster, guessable ids)"},
        ),
    ),
    Param(
        "min_intersection", 100, _ints(1),
        "refuse to train on fewer shared customers (too few for a train/holdout split worth reporting)",
        "alignment", _EST, cli="--min-intersection",
    ),
    # -- training
    Param(
        "key_bits", 2048, _ints(1),
        "Paillier key size in bits (at least 2048 unless the test-only flag is set; 3072 for long-lived models)",
        "training", _EST, cli="--key-bits",
        ui=UiHint(
            "Paillier key size", "select", "train", choices=(2048, 3072), test_choices=(512, 1024), help=_KEY_HELP,
        ),
    ),
    Param(
        "max_epochs", 5, _ints(1, MAX_EPOCHS),
        "most passes over the training rows (training stops earlier once the scores move by less than tol of their "
        "spread in an epoch)",
        "training", _EST_HYPER, cli="--epochs",
        ui=UiHint("Epochs", "number", "train", min=1, max=50, step=1),
    ),
    Param(
        "batch_size", 1024, _ints(256),
        "rows per mini-batch (at least 256, so a party's gradient cannot reveal individual default flags)",
        "training", _EST_HYPER, cli="--batch-size",
        ui=UiHint("Batch size", "select", "train", choices=(256, 512, 1024, 2048, 4096)),
    ),
    Param(
        "learning_rate", 1.0, _floats(0.0, None, "neither"),
        "step size (for the preconditioned optimiser: a fraction of the local Newton step)",
        "training", _EST_HYPER, cli="--learning-rate",
        ui=UiHint("Learning rate", "number", "train", min=0.01, max=10.0, step=0.1, format="%.2f"),
    ),
    Param(
        "l2", 1e-4, _floats(0.0, None, "left"),
        "L2 penalty on the standardised feature weights (the intercept is not penalised)",
        "training", _EST_HYPER, cli="--l2",
        ui=UiHint("Regularisation (L2)", "number", "train", min=0.0, max=1.0, step=1e-4, format="%.4f"),
    ),
    Param(
        "tol", 0.1, _floats(0.0, None, "left"),
        "stop once the model's scores moved by less than this share of their spread over an epoch (never before "
        "the second epoch)",
        "training", _EST_HYPER, cli="--tol",
    ),
    Param(
        "optimizer", "preconditioned", (Options(("preconditioned", "sgd", "momentum", "nesterov", "adam")),),
        "each party's optimiser: preconditioned (block-Jacobi Newton on the party's own features), sgd, momentum, "
        "nesterov or adam",
        "training", _EST_HYPER, cli="--optimizer",
    ),
    Param(
        "expansion", "bank", (Options(("bank", "bank-linear", "zero")),),
        "loss expansion: second order at the bank's partial score (bank), first order there (bank-linear: half the "
        "fintech's encryptions) or at zero (zero: Hardy et al.'s Taylor loss)",
        "training", _EST_HYPER, cli="--expansion",
    ),
    Param(
        "averaging", True, (Boolean(),),
        "return the running (Polyak–Ruppert) average of the iterates",
        "training", _EST_HYPER, cli="--averaging",
    ),
    Param(
        "decay", True, (Boolean(),),
        "scale the step by 1 / (1 + t / steps_per_epoch)",
        "training", _EST_HYPER, cli="--decay",
    ),
    Param(
        "track_loss", True, (Boolean(),),
        "compute the aggregate training loss per batch (one more encrypted column per party; the bank learns the "
        "batch loss, an aggregate)",
        "training", _EST_HYPER, cli="--track-loss",
    ),
    Param(
        "max_features", 1024, _ints(1),
        "most weights any party may have (its features after encoding): it fixes how many ciphertexts a party may "
        "have decrypted per round, so set it no higher than the parties need",
        "training", _EST_HYPER, cli="--max-features",
    ),
    Param(
        "momentum", 0.9, _floats(0.0, 1.0, "left"),
        "momentum of the momentum, nesterov and adam optimisers",
        "training", _HYPER,
    ),
    Param(
        "min_batch_size", 256, _ints(1),
        "smallest batch the plan allows (a short last batch is folded into the one before it)",
        "training", _HYPER,
    ),
    # -- evaluation
    Param(
        "test_size", 0.3, _floats(0.0, 1.0, "neither"),
        "share of the shared customers held out for evaluation (stratified)",
        "evaluation", _EST, cli="--test-size",
        ui=UiHint("Holdout share", "slider", "train", expander="More settings", min=10, max=50, step=5, format="%d%%", percent=True),
    ),
    Param(
        "centralized", True, (Boolean(),),
        "also fit the centralised reference on the joined data (pilots only: a real deployment never joins the data)",
        "evaluation", frozenset({"job"}), cli="--centralized",
        ui=UiHint(
            "Fit the centralised reference (pilot only)", "checkbox", "train", expander="More settings",
            help="A model on the joined data, as a yardstick. A real deployment never joins the data.",
        ),
    ),
    # -- scorecard
    Param(
        "base_points", 600.0, _floats(0.0, None, "neither"),
        "scorecard points at the base odds", "scorecard", frozenset({"estimator", "scorecard"}), cli="--base-points",
    ),
    Param(
        "base_odds", 50.0, _floats(0.0, None, "neither"),
        "good:bad odds at the base points (50 means 50:1)", "scorecard", frozenset({"estimator", "scorecard"}),
        cli="--base-odds",
    ),
    Param(
        "pdo", 20.0, _floats(0.0, None, "neither"),
        "points to double the odds", "scorecard", frozenset({"estimator", "scorecard"}), cli="--pdo",
    ),
    # -- scaling
    Param(
        "n_jobs", -1, (NonZeroInt(),),
        "worker processes per party for the Paillier kernels (-1: all cores)",
        "scaling", _EST, cli="--n-jobs",
    ),
    Param(
        "dask_scheduler", None, (NONE, Text()),
        "address of a Dask scheduler to run the Paillier kernels on",
        "scaling", _EST, cli="--dask-scheduler", metavar="ADDRESS", none_means="local processes",
    ),
    Param(
        "randomness", "coordinator", (Options(("coordinator", "own")),),
        "who makes the encryption randomness: the key holder, with the factorisation, ahead of time (coordinator), "
        "or each party itself (own)",
        "scaling", _EST_HYPER, cli="--randomness",
    ),
    # -- runtime
    Param(
        "random_state", None, (NONE, *_ints(0, MAX_FIXED_SEED)),
        "fix the split and batch order, for a reproducible test run; anyone who knows a fixed seed and the class "
        "counts can replay the split and learn labels",
        "runtime", _EST, cli="--seed", none_means="a fresh secret per session",
        ui=UiHint(
            "Seed (split and batches)", "seed", "train", expander="More settings", min=0, max=MAX_FIXED_SEED, step=1,
            toggle_label="Fixed seed (reproducible runs)", toggle_help=_SEED_HELP,
        ),
    ),
    Param(
        "allow_insecure_key", False, (Boolean(),),
        "TEST ONLY: allow Paillier keys below 2048 bits",
        "runtime", _EST, cli="--insecure-test-key",
        ui=UiHint(
            "Insecure test mode — offer 512- and 1024-bit keys (never for real data)", "checkbox", "train",
            expander="More settings",
        ),
    ),
    # -- pilot data
    Param(
        "customers", 20_000, _ints(100),
        "bank customers in the synthetic pilot", "pilot", frozenset({"pilot"}), cli="--customers",
        ui=UiHint(
            "Bank customers", "number", "data", min=500, max=500_000, step=500, start=5_000,
            start_reason="the app's pilot trains in well under a minute at 2048 bits on 2 cores",
        ),
    ),
    Param(
        "overlap", 0.7, _floats(0.0, 1.0, "right"),
        "share of the bank's customers the fintech knows", "pilot", frozenset({"pilot"}), cli="--overlap",
        ui=UiHint("Known to the fintech", "slider", "data", min=10, max=100, step=5, format="%d%%", percent=True),
    ),
    Param(
        # At most one fintech per pilot feature (riskfed.data.synthetic.FINTECH_FEATURES).
        "fintechs", 1, _ints(1, 7),
        "number of fintechs (2 or more split the partner features between them)", "pilot", frozenset({"pilot"}),
        cli="--fintechs",
        ui=UiHint("Fintechs", "number", "data", min=1, max=4, step=1),
    ),
    # -- scoring
    Param(
        "scoring_psi", "keyed-hash", (Options(("keyed-hash", "ecdh")),),
        "how applicants are matched: keyed-hash with a fresh key per session, or ecdh",
        "scoring", frozenset({"scoring"}), cli="--psi", keyword="psi",
    ),
    Param(
        "chunk_rows", 100_000, _ints(1),
        "applicants per chunk (memory stays bounded whatever the file's size)", "scoring", frozenset({"scoring"}),
        cli="--chunk-rows",
    ),
    Param(
        "top_reasons", 3, _ints(1),
        "reasons given per applicant", "scoring", frozenset({"scoring"}),
    ),
)

_BY_NAME = {p.name: p for p in PARAMS}


# ---------------------------------------------------------------------------- reading


def param(name: str) -> Param:
    """The declaration of ``name``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigurationError(f"{name!r} is not a declared riskfed setting.") from None


def params(
    *, group: str | None = None, owner: str | None = None, page: str | None = None, ui: bool | None = None, cli: bool | None = None
) -> list[Param]:
    """Declarations in form order, filtered by group, owner, app page, app / CLI presence."""
    out = []
    for p in PARAMS:
        if group is not None and p.group != group:
            continue
        if owner is not None and owner not in p.owners:
            continue
        if page is not None and (p.ui is None or p.ui.page != page):
            continue
        if ui is not None and (p.ui is not None) != ui:
            continue
        if cli is not None and (p.cli is not None) != cli:
            continue
        out.append(p)
    return out


def defaults(*, owner: str | None = None, group: str | None = None) -> dict[str, Any]:
    """Name → library default (of ``owner``'s or ``group``'s parameters, or all)."""
    return {p.name: p.default for p in params(owner=owner, group=group)}


def default(name: str) -> Any:
    """The library default of ``name``."""
    return param(name).default


# ---------------------------------------------------------------------------- checking


def check(name: str, value: Any, owner: str, *, shown_as: str | None = None) -> Any:
    """Check one value against its declaration; return it.

    ``shown_as``: the name the owner's signature gives the parameter, if another.

    Raises
    ------
    ConfigurationError
        "The 'name' parameter of owner must be …. Got … instead."
    """
    return param(name).check(value, owner, shown_as=shown_as)


def validate(values: Mapping[str, Any], owner: str) -> None:
    """Check every ``name → value`` of ``values`` (in declaration order)."""
    for p in PARAMS:
        if p.name in values:
            p.check(values[p.name], owner)


def check_value(name: str, value: Any, constraint: Constraint, owner: str, *, note: str = "") -> Any:
    """Check a value against a constraint of the call site's own (same message format).

    ``note`` is appended to the description ("(the bank and at most 63 fintechs)").
    """
    if not constraint.is_satisfied_by(value):
        kind = constraint.describe() + (f" {note}" if note else "")
        raise ConfigurationError(f"The {name!r} parameter of {owner} must be {kind}. Got {value!r} instead.")
    return value


# ------------------------------------------------------------------------- command line


def _help(p: Param, text: str | None, default: Any) -> str:
    text = text or p.help
    if any(isinstance(c, Boolean) for c in p.constraints):
        # A flag that is off by default says so by existing (--insecure-test-key).
        return f"{text} (default on)" if default else text
    if default is None:
        return f"{text} (default: {p.none_means})" if p.none_means else text
    return f"{text} (default {default})"


def add_cli_options(
    target,
    names: Iterable[str],
    *,
    defaults: Mapping[str, Any] | None = None,
    helps: Mapping[str, str] | None = None,
) -> None:
    """Add an argparse option for each named parameter to ``target`` (parser or group).

    Parameters
    ----------
    target:
        An ``argparse`` parser or argument group.
    names:
        Declared parameter names, each with a ``cli`` flag.
    defaults, helps:
        Per-command overrides of the declared default and help (e.g. ``pilot`` fixes
        ``random_state=0`` so its synthetic figures are reproducible).
    """
    import argparse

    defaults, helps = dict(defaults or {}), dict(helps or {})
    for name in names:
        p = param(name)
        if p.cli is None:
            raise ConfigurationError(f"The setting {name!r} has no command-line flag.")
        value = defaults.get(name, p.default)
        kwargs: dict[str, Any] = {"dest": p.dest, "default": value, "help": _help(p, helps.get(name), value)}
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


def cli_values(args, names: Iterable[str]) -> dict[str, Any]:
    """The named parameters' values from parsed ``args``, keyed by keyword argument."""
    return {param(n).kwarg: getattr(args, param(n).dest) for n in names}


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


__all__ = [
    "GROUPS",
    "MAX_EPOCHS",
    "MAX_FINTECHS",
    "MAX_FIXED_SEED",
    "MAX_STEPS_PER_EPOCH",
    "NONE",
    "PAGES",
    "PARAMS",
    "WIDGETS",
    "Boolean",
    "Constraint",
    "Interval",
    "NonZeroInt",
    "Options",
    "Param",
    "Text",
    "UiHint",
    "add_cli_options",
    "check",
    "check_value",
    "cli_values",
    "default",
    "defaults",
    "param",
    "params",
    "start_value",
    "validate",
    "widget",
]
