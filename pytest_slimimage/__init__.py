"""pytest-slimimage: assert properties of container images built from Dockerfiles.

Size budgets, the final stage's base, exec-form CMD/ENTRYPOINT, no compilers in the final
image, the binary running as shipped, and the checks users register themselves
(:func:`register_check`). See the README for the marker, the helpers and the fixtures.

Names are imported on first use (PEP 562), so that loading the plugin does not load the engine
side (docker-py) for a test run that never builds an image. ``assert_<name>`` exists for every
registered check, built-in or not (:mod:`pytest_slimimage.checks.helpers`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pytest_slimimage.analysis.runnable import Problem, diagnose
    from pytest_slimimage.analysis.waste import WasteReport, compute_waste
    from pytest_slimimage.baseline import Baseline, BaselineEntry, Growth, load_baseline, parse_growth
    from pytest_slimimage.checks.check import Check, ParseContext
    from pytest_slimimage.checks.declarative import Declarations, ImageDecl, load_declarations
    from pytest_slimimage.checks.evaluate import assert_check, evaluate
    from pytest_slimimage.checks.exec_form import check_exec_form
    from pytest_slimimage.checks.final_base import check_final_base
    from pytest_slimimage.checks.growth import check_max_growth
    from pytest_slimimage.checks.healthy import check_healthy
    from pytest_slimimage.checks.helpers import assert_runs
    from pytest_slimimage.checks.lint import check_lint
    from pytest_slimimage.checks.no_compilers import check_no_compilers
    from pytest_slimimage.checks.no_package_manager import check_no_package_manager
    from pytest_slimimage.checks.no_secrets import check_no_secrets
    from pytest_slimimage.checks.no_setuid import check_no_setuid
    from pytest_slimimage.checks.no_shell import check_no_shell
    from pytest_slimimage.checks.non_root import check_non_root
    from pytest_slimimage.checks.pull_size import check_max_pull_size
    from pytest_slimimage.checks.registry import CHECKS, REGISTRY, RegistryError, register_check
    from pytest_slimimage.checks.reproducible import check_reproducible
    from pytest_slimimage.checks.result import CheckResult
    from pytest_slimimage.checks.runnable import check_runnable
    from pytest_slimimage.checks.runs import RunExpectation, check_runs
    from pytest_slimimage.checks.serves import check_serves
    from pytest_slimimage.checks.size import check_max_size, check_warn_size
    from pytest_slimimage.checks.spec import Spec, SpecError, parse_spec
    from pytest_slimimage.checks.waste import check_max_waste
    from pytest_slimimage.dockerfile.lint import RULES as LINT_RULES
    from pytest_slimimage.dockerfile.lint import LintFinding, lint, lint_dockerfile
    from pytest_slimimage.dockerfile.model import Dockerfile, DockerfileError, Stage, exec_form, parse_dockerfile
    from pytest_slimimage.engine.archive import ArchiveImage
    from pytest_slimimage.engine.image import BuiltImage
    from pytest_slimimage.errors import (
        EngineUnavailable,
        ImageBuildError,
        ImageCheckFailed,
        SlimImageError,
        SlimImageWarning,
    )
    from pytest_slimimage.facts import (
        ElfInfo,
        FileEntry,
        FileState,
        FileSystem,
        Healthcheck,
        HealthProbe,
        ImageConfig,
        ImageFacts,
        Layer,
        PulledLayer,
        Rebuild,
        RunResult,
        SecretFinding,
        ServicePlan,
        ServiceResult,
    )
    from pytest_slimimage.glue.archives import archive_fixture
    from pytest_slimimage.glue.fixtures import existing_image_fixture, image_fixture
    from pytest_slimimage.report import REPORT_SCHEMA, ImageRecord
    from pytest_slimimage.sizes import format_size, parse_size

_EXPORTS: dict[str, tuple[str, str]] = {
    "ArchiveImage": ("pytest_slimimage.engine.archive", "ArchiveImage"),
    "Baseline": ("pytest_slimimage.baseline", "Baseline"),
    "BaselineEntry": ("pytest_slimimage.baseline", "BaselineEntry"),
    "BuiltImage": ("pytest_slimimage.engine.image", "BuiltImage"),
    "CHECKS": ("pytest_slimimage.checks.registry", "CHECKS"),
    "Check": ("pytest_slimimage.checks.check", "Check"),
    "CheckResult": ("pytest_slimimage.checks.result", "CheckResult"),
    "Declarations": ("pytest_slimimage.checks.declarative", "Declarations"),
    "Dockerfile": ("pytest_slimimage.dockerfile.model", "Dockerfile"),
    "DockerfileError": ("pytest_slimimage.dockerfile.model", "DockerfileError"),
    "ElfInfo": ("pytest_slimimage.facts", "ElfInfo"),
    "EngineUnavailable": ("pytest_slimimage.errors", "EngineUnavailable"),
    "FileEntry": ("pytest_slimimage.facts", "FileEntry"),
    "FileSystem": ("pytest_slimimage.facts", "FileSystem"),
    "FileState": ("pytest_slimimage.facts", "FileState"),
    "Growth": ("pytest_slimimage.baseline", "Growth"),
    "HealthProbe": ("pytest_slimimage.facts", "HealthProbe"),
    "Healthcheck": ("pytest_slimimage.facts", "Healthcheck"),
    "ImageBuildError": ("pytest_slimimage.errors", "ImageBuildError"),
    "ImageCheckFailed": ("pytest_slimimage.errors", "ImageCheckFailed"),
    "ImageConfig": ("pytest_slimimage.facts", "ImageConfig"),
    "ImageDecl": ("pytest_slimimage.checks.declarative", "ImageDecl"),
    "ImageFacts": ("pytest_slimimage.facts", "ImageFacts"),
    "ImageRecord": ("pytest_slimimage.report", "ImageRecord"),
    "LINT_RULES": ("pytest_slimimage.dockerfile.lint", "RULES"),
    "Layer": ("pytest_slimimage.facts", "Layer"),
    "LintFinding": ("pytest_slimimage.dockerfile.lint", "LintFinding"),
    "ParseContext": ("pytest_slimimage.checks.check", "ParseContext"),
    "Problem": ("pytest_slimimage.analysis.runnable", "Problem"),
    "PulledLayer": ("pytest_slimimage.facts", "PulledLayer"),
    "REGISTRY": ("pytest_slimimage.checks.registry", "REGISTRY"),
    "REPORT_SCHEMA": ("pytest_slimimage.report", "REPORT_SCHEMA"),
    "Rebuild": ("pytest_slimimage.facts", "Rebuild"),
    "RegistryError": ("pytest_slimimage.checks.registry", "RegistryError"),
    "RunExpectation": ("pytest_slimimage.checks.runs", "RunExpectation"),
    "RunResult": ("pytest_slimimage.facts", "RunResult"),
    "SecretFinding": ("pytest_slimimage.facts", "SecretFinding"),
    "ServicePlan": ("pytest_slimimage.facts", "ServicePlan"),
    "ServiceResult": ("pytest_slimimage.facts", "ServiceResult"),
    "SlimImageError": ("pytest_slimimage.errors", "SlimImageError"),
    "SlimImageWarning": ("pytest_slimimage.errors", "SlimImageWarning"),
    "Spec": ("pytest_slimimage.checks.spec", "Spec"),
    "SpecError": ("pytest_slimimage.checks.spec", "SpecError"),
    "Stage": ("pytest_slimimage.dockerfile.model", "Stage"),
    "WasteReport": ("pytest_slimimage.analysis.waste", "WasteReport"),
    "archive_fixture": ("pytest_slimimage.glue.archives", "archive_fixture"),
    "assert_check": ("pytest_slimimage.checks.evaluate", "assert_check"),
    "assert_runs": ("pytest_slimimage.checks.helpers", "assert_runs"),
    "check_exec_form": ("pytest_slimimage.checks.exec_form", "check_exec_form"),
    "check_final_base": ("pytest_slimimage.checks.final_base", "check_final_base"),
    "check_healthy": ("pytest_slimimage.checks.healthy", "check_healthy"),
    "check_lint": ("pytest_slimimage.checks.lint", "check_lint"),
    "check_max_growth": ("pytest_slimimage.checks.growth", "check_max_growth"),
    "check_max_pull_size": ("pytest_slimimage.checks.pull_size", "check_max_pull_size"),
    "check_max_size": ("pytest_slimimage.checks.size", "check_max_size"),
    "check_max_waste": ("pytest_slimimage.checks.waste", "check_max_waste"),
    "check_no_compilers": ("pytest_slimimage.checks.no_compilers", "check_no_compilers"),
    "check_no_package_manager": ("pytest_slimimage.checks.no_package_manager", "check_no_package_manager"),
    "check_no_secrets": ("pytest_slimimage.checks.no_secrets", "check_no_secrets"),
    "check_no_setuid": ("pytest_slimimage.checks.no_setuid", "check_no_setuid"),
    "check_no_shell": ("pytest_slimimage.checks.no_shell", "check_no_shell"),
    "check_non_root": ("pytest_slimimage.checks.non_root", "check_non_root"),
    "check_reproducible": ("pytest_slimimage.checks.reproducible", "check_reproducible"),
    "check_runnable": ("pytest_slimimage.checks.runnable", "check_runnable"),
    "check_runs": ("pytest_slimimage.checks.runs", "check_runs"),
    "check_serves": ("pytest_slimimage.checks.serves", "check_serves"),
    "check_warn_size": ("pytest_slimimage.checks.size", "check_warn_size"),
    "compute_waste": ("pytest_slimimage.analysis.waste", "compute_waste"),
    "diagnose": ("pytest_slimimage.analysis.runnable", "diagnose"),
    "evaluate": ("pytest_slimimage.checks.evaluate", "evaluate"),
    "exec_form": ("pytest_slimimage.dockerfile.model", "exec_form"),
    "existing_image_fixture": ("pytest_slimimage.glue.fixtures", "existing_image_fixture"),
    "format_size": ("pytest_slimimage.sizes", "format_size"),
    "image_fixture": ("pytest_slimimage.glue.fixtures", "image_fixture"),
    "lint": ("pytest_slimimage.dockerfile.lint", "lint"),
    "lint_dockerfile": ("pytest_slimimage.dockerfile.lint", "lint_dockerfile"),
    "load_baseline": ("pytest_slimimage.baseline", "load_baseline"),
    "load_declarations": ("pytest_slimimage.checks.declarative", "load_declarations"),
    "parse_dockerfile": ("pytest_slimimage.dockerfile.model", "parse_dockerfile"),
    "parse_growth": ("pytest_slimimage.baseline", "parse_growth"),
    "parse_size": ("pytest_slimimage.sizes", "parse_size"),
    "parse_spec": ("pytest_slimimage.checks.spec", "parse_spec"),
    "register_check": ("pytest_slimimage.checks.registry", "register_check"),
}

__all__ = [
    "CHECKS",
    "LINT_RULES",
    "REGISTRY",
    "REPORT_SCHEMA",
    "ArchiveImage",
    "Baseline",
    "BaselineEntry",
    "BuiltImage",
    "Check",
    "CheckResult",
    "Declarations",
    "Dockerfile",
    "DockerfileError",
    "ElfInfo",
    "EngineUnavailable",
    "FileEntry",
    "FileState",
    "FileSystem",
    "Growth",
    "HealthProbe",
    "Healthcheck",
    "ImageBuildError",
    "ImageCheckFailed",
    "ImageConfig",
    "ImageDecl",
    "ImageFacts",
    "ImageRecord",
    "Layer",
    "LintFinding",
    "ParseContext",
    "Problem",
    "PulledLayer",
    "Rebuild",
    "RegistryError",
    "RunExpectation",
    "RunResult",
    "SecretFinding",
    "ServicePlan",
    "ServiceResult",
    "SlimImageError",
    "SlimImageWarning",
    "Spec",
    "SpecError",
    "Stage",
    "WasteReport",
    "archive_fixture",
    "assert_check",
    "assert_exec_form",
    "assert_final_base",
    "assert_healthy",
    "assert_max_growth",
    "assert_max_pull_size",
    "assert_max_size",
    "assert_max_waste",
    "assert_no_compilers",
    "assert_no_lint",
    "assert_no_package_manager",
    "assert_no_secrets",
    "assert_no_setuid",
    "assert_no_shell",
    "assert_non_root",
    "assert_reproducible",
    "assert_runnable",
    "assert_runs",
    "assert_serves",
    "assert_warn_size",
    "check_exec_form",
    "check_final_base",
    "check_healthy",
    "check_lint",
    "check_max_growth",
    "check_max_pull_size",
    "check_max_size",
    "check_max_waste",
    "check_no_compilers",
    "check_no_package_manager",
    "check_no_secrets",
    "check_no_setuid",
    "check_no_shell",
    "check_non_root",
    "check_reproducible",
    "check_runnable",
    "check_runs",
    "check_serves",
    "check_warn_size",
    "compute_waste",
    "diagnose",
    "evaluate",
    "exec_form",
    "existing_image_fixture",
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
    "register_check",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module), attribute)
    elif name.startswith("assert_"):
        value = importlib.import_module("pytest_slimimage.checks.helpers").helper(name)
        if value is None:
            raise AttributeError(f"module 'pytest_slimimage' has no attribute {name!r} (no check has that helper)")
        if name not in __all__:  # a user's check may be registered again: look it up each time
            return value
    elif name.startswith("check_"):  # a built-in check's pure function, named for its check
        registry = importlib.import_module("pytest_slimimage.checks.registry").REGISTRY
        found = registry.get(name[len("check_") :]) if name[len("check_") :] in registry else None
        if found is None or not found.builtin:
            raise AttributeError(f"module 'pytest_slimimage' has no attribute {name!r}")
        value = found.function
        if name not in __all__:
            return value
    else:
        raise AttributeError(f"module 'pytest_slimimage' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
