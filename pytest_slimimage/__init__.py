"""pytest-slimimage: assert properties of container images built from Dockerfiles.

Size budgets, the final stage's base, exec-form CMD/ENTRYPOINT, no compilers in the final
image, and the binary running as shipped. See the README for the marker and fixtures.
"""

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
