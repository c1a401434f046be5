"""The check registry (no engine): registration rules, the helpers and names derived from it, and
``evaluate`` deciding "cannot apply" in one place, on a stand-in image made of facts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import pytest_slimimage as si
from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.check import REQUIRED, Check
from pytest_slimimage.checks.evaluate import assert_check, evaluate
from pytest_slimimage.checks.helpers import make_helper
from pytest_slimimage.checks.registry import (
    BUILTINS,
    CHECKS,
    REGISTRY,
    Registry,
    RegistryError,
    checks_table,
    marker_help,
    register_check,
)
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.spec import Spec, SpecError, parse_spec
from pytest_slimimage.errors import ImageCheckFailed, SlimImageError, SlimImageWarning
from pytest_slimimage.facts import ImageConfig, ImageFacts, Layer, RunResult, ServicePlan, ServiceResult

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass
class FakeImage:
    """An image made of facts: what evaluate needs, without an engine."""

    name: str = "app"
    size: int = 5_000
    default_timeout: float = 30.0
    seen: list[CheckResult] = field(default_factory=list)
    runs: int = 0

    def facts(self, *, filesystem: bool = False, pull: bool = False, rebuild: bool = False) -> ImageFacts:
        layers = (Layer("COPY app /app", 4_000, False), Layer("RUN true", 1_000, False))
        return ImageFacts(self.name, "sha256:" + "0" * 64, self.size, ImageConfig(cmd=("/app",)), layers)

    def run(
        self, args: Sequence[str] | None = None, timeout: float | None = None, *, memory: str | None = None
    ) -> RunResult:
        self.runs += 1
        return RunResult(0, "hi\n", "", argv=("/app",))

    def serve(self, plan: ServicePlan) -> ServiceResult:
        self.runs += 1
        return ServiceResult(ready=True, argv=("/app",), port=plan.port, host_port=32768, host="127.0.0.1")

    def observe(self, result: CheckResult) -> CheckResult:
        self.seen.append(result)
        return result

    def growth_baseline(self) -> tuple[BaselineEntry | None, bool]:
        return BaselineEntry(4_000), False


@pytest.fixture
def session() -> Iterator[None]:
    """A registration scope, as a pytest session gives a conftest."""
    REGISTRY.begin_session()
    try:
        yield
    finally:
        REGISTRY.end_session()


def layers_check(facts: ImageFacts, limit: int) -> CheckResult:
    n = len(facts.layers)
    return CheckResult("max_layers", facts.name, n <= limit, f"{facts.name}: max_layers: {n} layers, limit {limit}")


# ------------------------------------------------------------------------------------ registration
def test_builtins_are_registered_in_their_canonical_order() -> None:
    assert CHECKS == (
        "max_size", "warn_size", "max_growth", "final_base", "exec_form",
        "no_compilers", "no_shell", "no_package_manager", "non_root", "no_setuid", "no_secrets",
        "lint", "runnable", "max_waste", "max_pull_size", "reproducible", "runs", "serves", "healthy",
    )  # fmt: skip
    assert [c.name for c in BUILTINS] == list(CHECKS)
    assert all(c.builtin for c in BUILTINS)
    assert [c.name for c in REGISTRY][: len(CHECKS)] == list(CHECKS)


@pytest.mark.usefixtures("session")
def test_a_registered_check_works_through_spec_helper_and_assert_check() -> None:
    register_check("max_layers", parse=int)(layers_check)
    assert "max_layers" in REGISTRY
    spec = parse_spec({"max_layers": "1", "max_size": "1MB"}, where="here")
    assert spec.checks == ("max_size", "max_layers")  # built-ins first, then users' checks
    assert spec.max_layers == 1
    image = FakeImage()
    results = evaluate(image, spec)
    assert [r.passed for r in results] == [True, False]
    assert image.seen == results
    with pytest.raises(ImageCheckFailed, match=r"^app: max_layers: 2 layers, limit 1$"):
        assert_check(image, "max_layers", 1)
    with pytest.raises(ImageCheckFailed, match=r"^app: max_layers: 2 layers, limit 1$"):
        si.assert_max_layers(image, limit=1)  # the helper takes the value by the function's name for it
    assert si.assert_max_layers(image, 2).passed


@pytest.mark.usefixtures("session")
def test_the_same_function_may_register_again_but_not_another() -> None:
    register_check("max_layers")(layers_check)
    register_check("max_layers")(layers_check)  # a conftest imported again

    def other(facts: ImageFacts, limit: int) -> CheckResult:
        raise AssertionError

    with pytest.raises(RegistryError, match=r"'max_layers' is already registered by tests\.unit\.test_registry"):
        register_check("max_layers")(other)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("max_size", "register_check: 'max_size' is a built-in check of pytest-slimimage; choose another name"),
        ("image", "register_check: 'image' is a reserved keyword of the marker and the tables"),
        ("build_args", "register_check: 'build_args' is a reserved keyword of the marker and the tables"),
        ("max-layers", "register_check: 'max-layers' is not a usable keyword (a Python identifier, no leading _)"),
        ("_private", "register_check: '_private' is not a usable keyword (a Python identifier, no leading _)"),
    ],
)
@pytest.mark.usefixtures("session")
def test_clashes_and_bad_names_are_errors_at_registration(name: str, message: str) -> None:
    with pytest.raises(RegistryError) as raised:
        register_check(name)(layers_check)
    assert str(raised.value) == message


@pytest.mark.usefixtures("session")
def test_unknown_needs_and_a_taken_helper_name_are_errors() -> None:
    with pytest.raises(RegistryError, match=r"unknown need\(s\) 'layers'; known: dockerfile, filesystem, run"):
        register_check("max_layers", needs=["layers"])(layers_check)
    with pytest.raises(RegistryError, match=r"would have the helper assert_no_lint, which is check 'lint''s"):
        REGISTRY.register(Check("no_lint", layers_check))


def test_sessions_nest_and_each_forgets_only_its_own() -> None:
    registry = Registry(BUILTINS)
    registry.begin_session()
    registry.register(Check("outer", layers_check))
    registry.begin_session()
    registry.register(Check("inner", layers_check))
    assert registry.names()[-2:] == ("outer", "inner")
    registry.end_session()
    assert registry.names()[-1] == "outer"
    registry.end_session()
    assert registry.names() == CHECKS


@pytest.mark.usefixtures("session")
def test_an_unknown_keyword_suggests_registered_names() -> None:
    register_check("max_layers")(layers_check)
    with pytest.raises(SpecError, match=r"unknown keyword 'max_layer' \(did you mean 'max_layers'\?\)"):
        parse_spec({"max_layer": 3}, where="here")
    with pytest.raises(KeyError, match=r"no check named 'max_layer' \(did you mean 'max_layers'\?\)"):
        REGISTRY.get("max_layer")


@pytest.mark.usefixtures("session")
def test_a_user_parse_error_names_the_keyword_and_none_or_false_asks_nothing() -> None:
    register_check("max_layers", parse=int)(layers_check)
    with pytest.raises(SpecError) as raised:
        parse_spec({"max_layers": "many"}, where="@pytest.mark.slimimage on t")
    assert str(raised.value) == (
        "@pytest.mark.slimimage on t: max_layers: invalid literal for int() with base 10: 'many'"
    )
    assert parse_spec({"max_layers": False}, where="t").checks == ()
    assert parse_spec({"max_layers": None}, where="t").checks == ()


@pytest.mark.usefixtures("session")
def test_a_check_must_return_a_check_result() -> None:
    @register_check("broken")
    def broken(facts: ImageFacts, value: object) -> CheckResult:
        return "fine"  # type: ignore[return-value]

    with pytest.raises(SlimImageError, match=r"check 'broken' \(.*broken\) returned str, not a CheckResult"):
        assert_check(FakeImage(), "broken", True)


# ---------------------------------------------------------------------------- one place: cannot apply
@pytest.mark.parametrize("name", ["final_base", "lint"])
def test_a_check_that_needs_a_dockerfile_cannot_apply_without_one(name: str) -> None:
    image = FakeImage()
    value = "scratch" if name == "final_base" else True
    message = (
        f"app: {name} needs the image's Dockerfile; app was not built from one"
        " (for an existing image, pass the dockerfile= it was built from)"
    )
    with pytest.raises(SlimImageError) as raised:
        evaluate(image, parse_spec({name: value, "max_size": "1MB"}, where="t"))
    assert str(raised.value) == message
    assert image.seen == []  # decided before anything ran
    with pytest.raises(SlimImageError) as raised:
        assert_check(image, name, value)
    assert str(raised.value) == message


def test_both_dockerfile_checks_are_named_together() -> None:
    with pytest.raises(SlimImageError, match=r"^app: final_base and lint need the image's Dockerfile;"):
        evaluate(FakeImage(), Spec(final_base=("scratch",), lint=()))


def test_a_run_check_runs_once_and_reads_the_run() -> None:
    image = FakeImage()
    [result] = evaluate(image, parse_spec({"runs": "hi"}, where="t"))
    assert result.passed and image.runs == 1
    assert si.assert_runs(image, "hi").stdout == "hi\n"
    assert image.runs == 2


def test_a_helper_value_is_validated_like_the_marker_keyword() -> None:
    with pytest.raises(SpecError, match=r"^assert_max_size: not a size: '12 parsecs'"):
        si.assert_max_size(FakeImage(), "12 parsecs")
    with pytest.raises(SpecError, match=r"^assert_exec_form: False asks for no check$"):
        si.assert_exec_form(FakeImage(), False)
    with pytest.raises(TypeError, match=r"assert_max_size\(\) missing its 'limit' argument"):
        si.assert_max_size(FakeImage())


def test_warn_size_through_its_helper_warns() -> None:
    with pytest.warns(SlimImageWarning, match=r"^app: 5kB is over its soft budget of 1kB"):
        assert si.assert_warn_size(FakeImage(), "1kB").passed


def test_max_growth_through_a_helper_reads_the_image_s_baseline() -> None:
    with pytest.raises(ImageCheckFailed, match=r"^app: max_growth: grew \+1kB \(\+25.0%\) over its baseline of 4kB"):
        si.assert_max_growth(FakeImage(), "5%")
    assert si.assert_max_growth(FakeImage(), "30%").passed


# ------------------------------------------------------------------------------ derived from the registry
def test_every_builtin_has_its_helper_and_check_function_exported() -> None:
    """A built-in check is one module and one line in BUILTINS: ``pytest_slimimage.check_<name>``
    and ``assert_<name>`` come from the registry (listing them in ``__init__`` only adds static
    names for type checkers)."""
    for check in BUILTINS:
        helper = getattr(si, check.helper_name)
        assert helper.__name__ == check.helper_name
        assert getattr(si, f"check_{check.name}") is check.function
    with pytest.raises(AttributeError, match="has no attribute 'check_nothing'"):
        si.check_nothing  # noqa: B018


def test_a_check_added_to_the_registry_is_exported_without_touching_init() -> None:
    registry = Registry(BUILTINS)
    extra = Check("max_layers", layers_check, builtin=True)
    registry.register(extra)
    import pytest_slimimage.checks.registry as module

    saved = module.REGISTRY
    module.REGISTRY = registry
    try:
        assert si.check_max_layers is layers_check
    finally:
        module.REGISTRY = saved


def test_generated_helpers_have_a_signature() -> None:
    import inspect

    helper = make_helper(REGISTRY.get("no_compilers"))
    assert str(inspect.signature(helper)) == "(image, allow=()) -> pytest_slimimage.checks.result.CheckResult"
    assert str(inspect.signature(make_helper(REGISTRY.get("max_size")))).startswith("(image, limit)")
    assert REGISTRY.get("max_size").helper_default is REQUIRED


def test_the_marker_help_names_every_check() -> None:
    text = marker_help()
    assert text.startswith("slimimage(max_size=..., warn_size=..., ")
    assert all(f"{name}=..." in text for name in CHECKS)


def test_the_readme_check_table_is_the_registrys() -> None:
    """The README's table of marker keywords is rendered from the registry (scripts/readme-tables.py
    rewrites it); a check added or changed without it fails here."""
    assert checks_table() in README.read_text(encoding="utf-8")
