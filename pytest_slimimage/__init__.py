"""pytest-slimimage: assert properties of container images built from Dockerfiles.

Size budgets, the final stage's base, exec-form CMD/ENTRYPOINT, no compilers in the final
image, and the binary running as shipped. See the README for the marker and fixtures.

Names are imported on first use (PEP 562), so that loading the plugin does not load the engine
side (docker-py) for a test run that never builds an image.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_slimimage.assertions import (
        assert_exec_form,
        assert_final_base,
        assert_max_size,
        assert_max_waste,
        assert_no_compilers,
        assert_no_lint,
        assert_runnable,
        assert_runs,
        evaluate,
    )
    from pytest_slimimage.baseline import Baseline, BaselineEntry, Growth, load_baseline, parse_growth
    from pytest_slimimage.checks import (
        CHECKS,
        CheckResult,
        RunExpectation,
        check_exec_form,
        check_final_base,
        check_max_growth,
        check_max_size,
        check_no_compilers,
        check_runs,
        check_warn_size,
    )
    from pytest_slimimage.declarative import Declarations, ImageDecl, load_declarations
    from pytest_slimimage.dockerfile import Dockerfile, DockerfileError, Stage, exec_form, parse_dockerfile
    from pytest_slimimage.errors import (
        EngineUnavailable,
        ImageBuildError,
        ImageCheckFailed,
        SlimImageError,
        SlimImageWarning,
    )
    from pytest_slimimage.facts import ElfInfo, FileEntry, FileSystem, ImageConfig, ImageFacts, Layer, RunResult
    from pytest_slimimage.image import BuiltImage
    from pytest_slimimage.lint import RULES as LINT_RULES
    from pytest_slimimage.lint import LintFinding, check_lint, lint, lint_dockerfile
    from pytest_slimimage.plugin import existing_image_fixture, image_fixture
    from pytest_slimimage.report import REPORT_SCHEMA, ImageRecord
    from pytest_slimimage.runnable import Problem, check_runnable, diagnose, explain_run_failure
    from pytest_slimimage.sizes import format_size, parse_size
    from pytest_slimimage.spec import Spec, SpecError, parse_spec
    from pytest_slimimage.waste import WasteReport, check_max_waste, compute_waste

_EXPORTS: dict[str, tuple[str, str]] = {
    "Baseline": ("pytest_slimimage.baseline", "Baseline"),
    "BaselineEntry": ("pytest_slimimage.baseline", "BaselineEntry"),
    "BuiltImage": ("pytest_slimimage.image", "BuiltImage"),
    "CHECKS": ("pytest_slimimage.checks", "CHECKS"),
    "CheckResult": ("pytest_slimimage.checks", "CheckResult"),
    "Declarations": ("pytest_slimimage.declarative", "Declarations"),
    "Dockerfile": ("pytest_slimimage.dockerfile", "Dockerfile"),
    "DockerfileError": ("pytest_slimimage.dockerfile", "DockerfileError"),
    "ElfInfo": ("pytest_slimimage.facts", "ElfInfo"),
    "EngineUnavailable": ("pytest_slimimage.errors", "EngineUnavailable"),
    "FileEntry": ("pytest_slimimage.facts", "FileEntry"),
    "FileSystem": ("pytest_slimimage.facts", "FileSystem"),
    "Growth": ("pytest_slimimage.baseline", "Growth"),
    "ImageBuildError": ("pytest_slimimage.errors", "ImageBuildError"),
    "ImageCheckFailed": ("pytest_slimimage.errors", "ImageCheckFailed"),
    "ImageConfig": ("pytest_slimimage.facts", "ImageConfig"),
    "ImageDecl": ("pytest_slimimage.declarative", "ImageDecl"),
    "ImageFacts": ("pytest_slimimage.facts", "ImageFacts"),
    "ImageRecord": ("pytest_slimimage.report", "ImageRecord"),
    "LINT_RULES": ("pytest_slimimage.lint", "RULES"),
    "Layer": ("pytest_slimimage.facts", "Layer"),
    "LintFinding": ("pytest_slimimage.lint", "LintFinding"),
    "Problem": ("pytest_slimimage.runnable", "Problem"),
    "REPORT_SCHEMA": ("pytest_slimimage.report", "REPORT_SCHEMA"),
    "RunExpectation": ("pytest_slimimage.checks", "RunExpectation"),
    "RunResult": ("pytest_slimimage.facts", "RunResult"),
    "SlimImageError": ("pytest_slimimage.errors", "SlimImageError"),
    "SlimImageWarning": ("pytest_slimimage.errors", "SlimImageWarning"),
    "Spec": ("pytest_slimimage.spec", "Spec"),
    "SpecError": ("pytest_slimimage.spec", "SpecError"),
    "Stage": ("pytest_slimimage.dockerfile", "Stage"),
    "WasteReport": ("pytest_slimimage.waste", "WasteReport"),
    "assert_exec_form": ("pytest_slimimage.assertions", "assert_exec_form"),
    "assert_final_base": ("pytest_slimimage.assertions", "assert_final_base"),
    "assert_max_size": ("pytest_slimimage.assertions", "assert_max_size"),
    "assert_max_waste": ("pytest_slimimage.assertions", "assert_max_waste"),
    "assert_no_compilers": ("pytest_slimimage.assertions", "assert_no_compilers"),
    "assert_no_lint": ("pytest_slimimage.assertions", "assert_no_lint"),
    "assert_runnable": ("pytest_slimimage.assertions", "assert_runnable"),
    "assert_runs": ("pytest_slimimage.assertions", "assert_runs"),
    "check_exec_form": ("pytest_slimimage.checks", "check_exec_form"),
    "check_final_base": ("pytest_slimimage.checks", "check_final_base"),
    "check_lint": ("pytest_slimimage.lint", "check_lint"),
    "check_max_growth": ("pytest_slimimage.checks", "check_max_growth"),
    "check_max_size": ("pytest_slimimage.checks", "check_max_size"),
    "check_max_waste": ("pytest_slimimage.waste", "check_max_waste"),
    "check_no_compilers": ("pytest_slimimage.checks", "check_no_compilers"),
    "check_runnable": ("pytest_slimimage.runnable", "check_runnable"),
    "check_runs": ("pytest_slimimage.checks", "check_runs"),
    "check_warn_size": ("pytest_slimimage.checks", "check_warn_size"),
    "compute_waste": ("pytest_slimimage.waste", "compute_waste"),
    "diagnose": ("pytest_slimimage.runnable", "diagnose"),
    "evaluate": ("pytest_slimimage.assertions", "evaluate"),
    "exec_form": ("pytest_slimimage.dockerfile", "exec_form"),
    "existing_image_fixture": ("pytest_slimimage.plugin", "existing_image_fixture"),
    "explain_run_failure": ("pytest_slimimage.runnable", "explain_run_failure"),
    "format_size": ("pytest_slimimage.sizes", "format_size"),
    "image_fixture": ("pytest_slimimage.plugin", "image_fixture"),
    "lint": ("pytest_slimimage.lint", "lint"),
    "lint_dockerfile": ("pytest_slimimage.lint", "lint_dockerfile"),
    "load_baseline": ("pytest_slimimage.baseline", "load_baseline"),
    "load_declarations": ("pytest_slimimage.declarative", "load_declarations"),
    "parse_dockerfile": ("pytest_slimimage.dockerfile", "parse_dockerfile"),
    "parse_growth": ("pytest_slimimage.baseline", "parse_growth"),
    "parse_size": ("pytest_slimimage.sizes", "parse_size"),
    "parse_spec": ("pytest_slimimage.spec", "parse_spec"),
}

__all__ = [
    "CHECKS",
    "LINT_RULES",
    "REPORT_SCHEMA",
    "Baseline",
    "BaselineEntry",
    "BuiltImage",
    "CheckResult",
    "Declarations",
    "Dockerfile",
    "DockerfileError",
    "ElfInfo",
    "EngineUnavailable",
    "FileEntry",
    "FileSystem",
    "Growth",
    "ImageBuildError",
    "ImageCheckFailed",
    "ImageConfig",
    "ImageDecl",
    "ImageFacts",
    "ImageRecord",
    "Layer",
    "LintFinding",
    "Problem",
    "RunExpectation",
    "RunResult",
    "SlimImageError",
    "SlimImageWarning",
    "Spec",
    "SpecError",
    "Stage",
    "WasteReport",
    "assert_exec_form",
    "assert_final_base",
    "assert_max_size",
    "assert_max_waste",
    "assert_no_compilers",
    "assert_no_lint",
    "assert_runnable",
    "assert_runs",
    "check_exec_form",
    "check_final_base",
    "check_lint",
    "check_max_growth",
    "check_max_size",
    "check_max_waste",
    "check_no_compilers",
    "check_runnable",
    "check_runs",
    "check_warn_size",
    "compute_waste",
    "diagnose",
    "evaluate",
    "exec_form",
    "existing_image_fixture",
    "explain_run_failure",
    "format_size",
    "image_fixture",
    "lint",
    "lint_dockerfile",
    "load_baseline",
    "load_declarations",
    "parse_dockerfile",
    "parse_growth",
    "parse_size",
    "parse_spec",
]


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _EXPORTS[name]
    except KeyError:
        raise AttributeError(f"module 'pytest_slimimage' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
