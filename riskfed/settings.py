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

This module is the lowest layer with :mod:`riskfed.errors` (its building blocks are in
:mod:`riskfed._settings`, re-exported here): it imports nothing else from riskfed and
nothing heavy, so every layer may use it.

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

from collections.abc import Iterable, Mapping
from typing import Any

from riskfed._settings import (
    NONE,
    PAGES,
    WIDGETS,
    Boolean,
    Constraint,
    Interval,
    NonZeroInt,
    Options,
    Param,
    Text,
    UiHint,
    add_cli_option,
    start_value,
    widget,
)
from riskfed.errors import ConfigurationError


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
    defaults, helps = dict(defaults or {}), dict(helps or {})
    for name in names:
        p = param(name)
        add_cli_option(target, p, default=defaults.get(name, p.default), help=helps.get(name))


def cli_values(args, names: Iterable[str]) -> dict[str, Any]:
    """The named parameters' values from parsed ``args``, keyed by keyword argument."""
    return {param(n).kwarg: getattr(args, param(n).dest) for n in names}


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
    "add_cli_option",
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
