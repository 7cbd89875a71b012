"""One declaration of every setting (riskfed.settings): the library, the command line and
the app start from the same defaults and refuse the same values with the same words."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

from riskfed import settings
from riskfed.cli import build_parser
from riskfed.data.synthetic import generate_pilot
from riskfed.errors import ConfigurationError
from riskfed.learning.linear.hyperparameters import Hyperparameters
from riskfed.models.estimator import VerticalLogisticRegression
from riskfed.scoring.score import score_applicants, score_file
from riskfed.scoring.scorecard import Scorecard

RUN = ["run", "--bank", "b.csv", "--fintech", "f.csv", "--id-column", "id", "--label-column", "y"]


def _signature_defaults(func) -> dict:
    return {n: p.default for n, p in inspect.signature(func).parameters.items() if p.default is not inspect.Parameter.empty}


def test_every_declaration_is_complete_and_its_default_valid():
    assert len({p.name for p in settings.PARAMS}) == len(settings.PARAMS)
    for p in settings.PARAMS:
        assert p.group in settings.GROUPS, p.name
        assert p.help and p.owners, p.name
        assert p.is_valid(p.default), p.name
        if p.ui is not None:
            assert p.ui.widget in settings.WIDGETS and p.ui.page in settings.PAGES, p.name
            assert p.is_valid(settings.start_value(p)), p.name
            assert (p.ui.start is None) == (p.ui.start_reason is None), p.name
            for choice in (*p.ui.choices, *p.ui.test_choices):
                assert p.is_valid(choice), (p.name, choice)


def test_the_estimator_signature_is_the_declaration():
    declared = settings.defaults(owner="estimator")
    assert _signature_defaults(VerticalLogisticRegression.__init__) == declared
    # Every declared parameter is stored under its own name (sklearn's get_params convention).
    est = VerticalLogisticRegression()
    assert {name: getattr(est, name) for name in declared} == declared


def test_the_training_plan_the_scorecard_and_the_pilot_default_to_the_declaration():
    plan = {f.name: f.default for f in dataclasses.fields(Hyperparameters)}
    assert {n: plan[n] for n in settings.defaults(owner="hyperparameters")} == settings.defaults(owner="hyperparameters")
    card = {f.name: f.default for f in dataclasses.fields(Scorecard)}
    assert card == settings.defaults(owner="scorecard")
    pilot = _signature_defaults(generate_pilot)
    assert {n: pilot[n] for n in settings.defaults(owner="pilot")} == settings.defaults(owner="pilot")
    scoring = {p.kwarg: p.default for p in settings.params(owner="scoring")}
    for func in (score_applicants, score_file):
        found = _signature_defaults(func)
        assert {k: found[k] for k in scoring if k in found} == {k: v for k, v in scoring.items() if k in found}


def test_the_command_line_defaults_are_the_declaration():
    parser = build_parser()
    run = parser.parse_args(RUN)
    for p in settings.params(owner="estimator", cli=True):
        assert getattr(run, p.dest) == p.default, p.name
    assert run.centralized is settings.default("centralized")
    # The one documented difference: the pilot fixes its seed so its figures reproduce.
    pilot = parser.parse_args(["pilot"])
    for p in settings.params(owner="estimator", cli=True):
        assert getattr(pilot, p.dest) == (0 if p.name == "random_state" else p.default), p.name
    for p in settings.params(owner="pilot"):
        assert getattr(pilot, p.dest) == p.default, p.name
    score = parser.parse_args(["score", "--model", "m", "--bank", "a.csv", "--out", "s.csv"])
    assert score.psi == settings.default("scoring_psi") and score.chunk_rows == settings.default("chunk_rows")


def test_the_command_line_builds_the_estimator_from_the_declaration():
    from riskfed.cli import _estimator

    args = build_parser().parse_args(RUN + ["--epochs", "7", "--no-averaging", "--optimizer", "adam", "--seed", "3"])
    est = _estimator(args)
    assert (est.max_epochs, est.averaging, est.optimizer, est.random_state) == (7, False, "adam", 3)
    untouched = settings.defaults(owner="estimator").keys() - {"max_epochs", "averaging", "optimizer", "random_state"}
    assert {n: getattr(est, n) for n in untouched} == {n: settings.default(n) for n in untouched}


def test_help_text_comes_from_the_declaration():
    run_help = build_parser()._subparsers._group_actions[0].choices["run"].format_help()
    flat = " ".join(run_help.split())
    for p in settings.params(owner="estimator", cli=True):
        assert p.cli in flat
        assert " ".join(p.help.split()[:4]) in flat, p.name
    assert "(default 1024)" in flat and "(default: a fresh secret per session)" in flat


def test_app_controls_start_at_the_declaration():
    """The app's generated controls start where the library does (its starting values
    come from ``riskfed.ui.controls.control_defaults()``, parameter name → value)."""
    try:
        from riskfed.ui.controls import control_defaults
    except ImportError:
        pytest.skip("the app does not generate its controls from riskfed.settings yet (riskfed.ui.controls.control_defaults)")
    started = control_defaults()
    shown = {p.name: settings.start_value(p) for p in settings.params(ui=True)}
    assert started == shown


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"learning_rate": -0.1}, r"^The 'learning_rate' parameter of VerticalLogisticRegression must be a float in the range \(0\.0, inf\)\. Got -0\.1 instead\.$"),
        ({"learning_rate": float("nan")}, r"'learning_rate' parameter .* Got nan instead"),
        ({"max_epochs": 0}, r"'max_epochs' parameter of VerticalLogisticRegression must be an int in the range \[1, 999999\]\. Got 0"),
        ({"max_epochs": True}, r"'max_epochs' parameter .* Got True instead"),
        ({"batch_size": 100}, r"'batch_size' parameter of VerticalLogisticRegression must be an int in the range \[256, inf\)"),
        ({"optimizer": "lbfgs"}, r"'optimizer' parameter of VerticalLogisticRegression must be one of preconditioned, sgd, momentum, nesterov, adam\. Got 'lbfgs'"),
        ({"averaging": "yes"}, r"'averaging' parameter of VerticalLogisticRegression must be a bool\. Got 'yes'"),
        ({"test_size": 1.0}, r"'test_size' parameter of VerticalLogisticRegression must be a float in the range \(0\.0, 1\.0\)\. Got 1\.0"),
        ({"n_jobs": 0}, r"'n_jobs' parameter of VerticalLogisticRegression must be a non-zero int"),
        ({"dask_scheduler": ""}, r"'dask_scheduler' parameter of VerticalLogisticRegression must be None \(local processes\) or a non-empty str"),
        ({"pdo": 0}, r"'pdo' parameter of VerticalLogisticRegression must be a float in the range \(0\.0, inf\)\. Got 0"),
        ({"min_intersection": 0}, r"'min_intersection' parameter of VerticalLogisticRegression must be an int in the range \[1, inf\)"),
    ],
)
def test_a_wrong_value_is_refused_in_one_format(params, message):
    with pytest.raises(ConfigurationError, match=message):
        VerticalLogisticRegression(**params)._validate_params()


def test_the_plan_checks_with_the_same_words_and_its_own_minimum_batch():
    with pytest.raises(ConfigurationError, match=r"The 'tol' parameter of VerticalLogisticRegression must be a float in the range \[0\.0, inf\)"):
        Hyperparameters(tol=-1.0)
    # A plan may lower its minimum (a fintech then refuses it by its own): the batch
    # size is checked against the plan's minimum, not the declared default.
    assert Hyperparameters(batch_size=64, min_batch_size=32).batch_size == 64
    with pytest.raises(ConfigurationError, match=r"'batch_size' parameter .* \[32, inf\)\. Got 16"):
        Hyperparameters(batch_size=16, min_batch_size=32)
    with pytest.raises(ConfigurationError, match=r"'parties' parameter .* \[2, 64\] \(the bank and at most 63 fintechs\)"):
        Hyperparameters(parties=65)


def test_the_command_line_refuses_what_the_library_refuses(capsys):
    parser = build_parser()
    for flag, text, reason in [
        ("--epochs", "0", "expected a number in [1, 999999], got 0"),
        ("--learning-rate", "0", "expected a number in (0.0, inf), got 0.0"),
        ("--test-size", "1", "expected a number in (0.0, 1.0), got 1.0"),
        ("--batch-size", "ten", "expected a whole number, got 'ten'"),
        ("--n-jobs", "0", "expected a whole number other than 0, got 0"),
        ("--expansion", "cubic", "invalid choice: 'cubic'"),
    ]:
        with pytest.raises(SystemExit) as info:
            parser.parse_args(RUN + [flag, text])
        assert info.value.code == 2
        assert f"argument {flag}: {reason}" in capsys.readouterr().err


def test_ui_hints_convert_percentages_and_list_test_only_choices():
    holdout = settings.param("test_size")
    assert holdout.ui.to_widget(0.3) == 30 and holdout.ui.from_widget(30) == pytest.approx(0.3)
    kind, kwargs = settings.widget(settings.param("key_bits"))
    assert kind == "selectbox" and kwargs["options"] == (2048, 3072)
    assert settings.widget(settings.param("key_bits"), test_mode=True)[1]["options"] == (2048, 3072, 512, 1024)
    kind, kwargs = settings.widget(holdout)
    assert kind == "slider" and (kwargs["min_value"], kwargs["max_value"], kwargs["step"]) == (10, 50, 5)
    assert [p.name for p in settings.params(page="train", ui=True) if p.ui.expander is None] == [
        "key_bits", "max_epochs", "batch_size", "learning_rate", "l2"
    ]
    with pytest.raises(ConfigurationError, match="'tol' is not shown in the app"):
        settings.widget(settings.param("tol"))
    with pytest.raises(ConfigurationError, match="'epochs' is not a declared riskfed setting"):
        settings.param("epochs")
