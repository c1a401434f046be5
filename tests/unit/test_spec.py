"""The marker's keywords (and the declarative form's keys), validated once with the same words."""

from __future__ import annotations

import re
from typing import Any

import pytest

from pytest_slimimage.checks.check import suggest
from pytest_slimimage.checks.registry import CHECKS
from pytest_slimimage.checks.runs import RunExpectation
from pytest_slimimage.checks.spec import Spec, SpecError, parse_spec
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.facts import ServicePlan

WHERE = "@pytest.mark.slimimage on test_hello"


def spec(**values: Any) -> Spec:
    return parse_spec(values, where=WHERE)


def error(values: dict[str, Any], **kwargs: Any) -> str:
    with pytest.raises(SpecError) as info:
        parse_spec(values, where=WHERE, **kwargs)
    return str(info.value)


def test_spec_error_is_a_slimimage_error() -> None:
    assert issubclass(SpecError, SlimImageError)


def test_empty_spec_asks_nothing() -> None:
    assert spec() == Spec()
    assert spec().checks == ()


def test_every_check_keyword() -> None:
    result = spec(
        max_size="74 MB",
        warn_size="60MB",
        max_growth="5%",
        final_base="scratch",
        exec_form=True,
        no_compilers=True,
        lint=["SI004"],
        runnable=True,
        no_shell=True,
        no_package_manager=True,
        non_root=True,
        no_setuid=True,
        no_secrets=True,
        max_waste="10%",
        max_pull_size="30MB",
        reproducible=True,
        runs="hi",
        serves=8080,
        healthy=True,
    )
    assert result.max_size == 74_000_000
    assert result.warn_size == 60_000_000
    assert result.max_growth is not None and result.max_growth.percent == 5.0
    assert result.final_base == ("scratch",)
    assert result.exec_form is True
    assert result.no_compilers == ()
    assert result.lint == ("SI004",)
    assert result.runnable is True
    assert result.max_waste == "10%"
    assert result.max_pull_size == 30_000_000
    assert result.reproducible == "content"
    assert result.runs == RunExpectation(stdout="hi")
    assert result.serves == ServicePlan(port=8080)
    assert result.healthy == ServicePlan(healthy=True, within=None)
    assert result.checks == CHECKS
    assert result.needs_filesystem
    assert result.only("runs") == Spec(runs=RunExpectation(stdout="hi"))
    assert result.only("max_size") == Spec(max_size=74_000_000)


def test_analysis_keyword_values_are_validated() -> None:
    assert "lint: unknown rule id 'SI999'" in error({"lint": ["SI999"]})
    assert "lint expects True, False, a list of rule ids" in error({"lint": "yes"})
    assert "max_waste expects bytes" in error({"max_waste": "12 parsecs"})
    assert "runnable expects True or False, got 'yes'" in error({"runnable": "yes"})
    assert "max_growth: not an allowed growth: '5 percent'" in error({"max_growth": "5 percent"})
    assert "warn_size: not a size: '12 parsecs'" in error({"warn_size": "12 parsecs"})


def test_checks_follow_the_canonical_order_not_the_keyword_order() -> None:
    result = parse_spec({"runs": True, "no_compilers": True, "max_size": 10}, where=WHERE)
    assert result.checks == ("max_size", "no_compilers", "runs")


@pytest.mark.parametrize(
    ("raw", "expected", "text"),
    [(16_000, 16_000, "16000"), ("16kB", 16_000, "16kB"), ("1.5 MiB", 1_572_864, "1.5 MiB"), (0, 0, "0")],
)
def test_max_size_values(raw: object, expected: int, text: str) -> None:
    result = spec(max_size=raw)
    assert result.max_size == expected
    assert result.checks == ("max_size",)


def test_final_base_values() -> None:
    assert spec(final_base="debian:12").final_base == ("debian:12",)
    assert spec(final_base=["scratch", "busybox"]).final_base == ("scratch", "busybox")
    assert spec(final_base=("scratch",)).final_base == ("scratch",)


def test_exec_form_false_asks_nothing() -> None:
    assert spec(exec_form=False).checks == ()


@pytest.mark.parametrize(
    ("raw", "allow"),
    [(True, ()), (["as", "ld*"], ("as", "ld*")), (("as",), ("as",)), ({"allow": ["go"]}, ("go",)), ({}, ())],
)
def test_no_compilers_values(raw: object, allow: tuple[str, ...]) -> None:
    result = spec(no_compilers=raw)
    assert result.no_compilers == allow
    assert result.checks == ("no_compilers",)


def test_no_compilers_false_asks_nothing() -> None:
    assert spec(no_compilers=False).no_compilers is None
    assert spec(no_compilers=False).checks == ()


def test_runs_values() -> None:
    assert spec(runs=True).runs == RunExpectation()
    assert spec(runs=False).runs is None
    pattern = re.compile("hi")
    assert spec(runs=pattern).runs == RunExpectation(stdout=pattern)
    assert spec(runs={"args": "--x y", "exit_code": 1}).runs == RunExpectation(args=("--x", "y"), exit_code=1)


def test_runs_default_timeout() -> None:
    result = parse_spec({"runs": True}, where=WHERE, default_run_timeout=7.5)
    assert result.runs is not None
    assert result.runs.timeout == 7.5
    explicit = parse_spec({"runs": {"timeout": 2}}, where=WHERE, default_run_timeout=7.5)
    assert explicit.runs is not None
    assert explicit.runs.timeout == 2.0


def test_extra_keys_are_accepted_and_ignored() -> None:
    result = parse_spec({"image": "hello", "max_size": "1MB"}, where=WHERE, extra=("image",))
    assert result == Spec(max_size=1_000_000)


# ------------------------------------------------------------------------------------------- errors
def test_unknown_keyword_with_suggestion() -> None:
    message = error({"max_sise": "1MB"})
    assert message == (
        f"{WHERE}: unknown keyword 'max_sise' (did you mean 'max_size'?); known keywords:"
        " max_size, warn_size, max_growth, final_base, exec_form, no_compilers, no_shell, no_package_manager,"
        " non_root, no_setuid, no_secrets, lint, runnable, max_waste, max_pull_size, reproducible, runs,"
        " serves, healthy"
    )


def test_unknown_keyword_suggests_extra_keys_too() -> None:
    message = error({"imag": "x"}, extra=("image",))
    assert "unknown keyword 'imag' (did you mean 'image'?)" in message
    assert message.endswith(
        "known keywords: max_size, warn_size, max_growth, final_base, exec_form, no_compilers, no_shell,"
        " no_package_manager, non_root, no_setuid, no_secrets, lint, runnable, max_waste, max_pull_size,"
        " reproducible, runs, serves, healthy, image"
    )


def test_unknown_keyword_without_close_match() -> None:
    message = error({"colour": "blue"})
    assert message.startswith(f"{WHERE}: unknown keyword 'colour'; known keywords: ")
    assert "did you mean" not in message


def test_extra_key_not_given_is_unknown() -> None:
    assert "unknown keyword 'image'" in error({"image": "x"})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"max_size": "12 parsecs"}, f"{WHERE}: max_size: not a size: '12 parsecs' (units: "),
        ({"max_size": -1}, f"{WHERE}: max_size: not a size: -1 (a size cannot be negative)"),
        ({"max_size": True}, f"{WHERE}: max_size: not a size: True"),
        ({"max_size": None}, f"{WHERE}: max_size: not a size: None"),
        ({"final_base": 3}, f"{WHERE}: final_base expects an image name or a list of names, got 3"),
        ({"final_base": []}, f"{WHERE}: final_base expects an image name or a list of names, got []"),
        ({"final_base": ""}, f"{WHERE}: final_base expects an image name or a list of names, got ''"),
        ({"final_base": ["debian", 3]}, f"{WHERE}: final_base expects an image name or a list of names, got"
                                        " ['debian', 3]"),
        ({"exec_form": "yes"}, f"{WHERE}: exec_form expects True or False, got 'yes'"),
        ({"exec_form": 1}, f"{WHERE}: exec_form expects True or False, got 1"),
        ({"no_compilers": "gcc"}, f"{WHERE}: no_compilers expects True, False, a list of allowed names/globs, or"
                                  " {'allow': [...]}, got 'gcc'"),
        ({"no_compilers": [1]}, f"{WHERE}: no_compilers expects True"),
        ({"no_compilers": {"allow": "gcc"}}, f"{WHERE}: no_compilers expects True"),
        ({"no_compilers": {"deny": ["gcc"]}}, f"{WHERE}: no_compilers expects True"),
        ({"no_compilers": 1}, f"{WHERE}: no_compilers expects True"),
        ({"runs": 3}, f"{WHERE}: runs expects True, an expected stdout"),
        ({"runs": {"stdoot": "x"}}, f"{WHERE}: runs: unknown key(s) 'stdoot'"),
        ({"runs": {"args": 5}}, f"{WHERE}: runs: args expects a list of strings or a command line as a str, got 5"),
        ({"runs": {"stdout_regex": "("}}, f"{WHERE}: runs: stdout_regex is not a valid regex"),
    ],
)  # fmt: skip
def test_bad_values_name_keyword_and_value(values: dict[str, Any], expected: str) -> None:
    assert error(values).startswith(expected)


def test_first_bad_keyword_is_reported_before_values_are_read() -> None:
    assert "unknown keyword 'nope'" in error({"max_size": "12 parsecs", "nope": 1})


def test_suggest() -> None:
    assert suggest("exec_from", CHECKS) == " (did you mean 'exec_form'?)"
    assert suggest("no_compiler", list(CHECKS)) == " (did you mean 'no_compilers'?)"
    assert suggest("zzz", CHECKS) == ""
