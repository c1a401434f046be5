"""pytest-slimimage: assert properties of container images built from Dockerfiles.

Size budgets, the final stage's base, exec-form CMD/ENTRYPOINT, no compilers in the final
image, and the binary running as shipped. See the README for the marker and fixtures.
"""

from pytest_slimimage.assertions import (
    assert_exec_form,
    assert_final_base,
    assert_max_size,
    assert_no_compilers,
    assert_runs,
    evaluate,
)
from pytest_slimimage.checks import (
    CHECKS,
    CheckResult,
    RunExpectation,
    check_exec_form,
    check_final_base,
    check_max_size,
    check_no_compilers,
    check_runs,
)
from pytest_slimimage.dockerfile import Dockerfile, DockerfileError, Stage, exec_form, parse_dockerfile
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError, ImageCheckFailed, SlimImageError
from pytest_slimimage.facts import FileEntry, FileSystem, ImageConfig, ImageFacts, Layer, RunResult
from pytest_slimimage.image import BuiltImage
from pytest_slimimage.plugin import image_fixture
from pytest_slimimage.sizes import format_size, parse_size
from pytest_slimimage.spec import Spec, SpecError, parse_spec

__all__ = [
    "CHECKS",
    "BuiltImage",
    "CheckResult",
    "Dockerfile",
    "DockerfileError",
    "EngineUnavailable",
    "FileEntry",
    "FileSystem",
    "ImageBuildError",
    "ImageCheckFailed",
    "ImageConfig",
    "ImageFacts",
    "Layer",
    "RunExpectation",
    "RunResult",
    "SlimImageError",
    "Spec",
    "SpecError",
    "Stage",
    "assert_exec_form",
    "assert_final_base",
    "assert_max_size",
    "assert_no_compilers",
    "assert_runs",
    "check_exec_form",
    "check_final_base",
    "check_max_size",
    "check_no_compilers",
    "check_runs",
    "evaluate",
    "exec_form",
    "format_size",
    "image_fixture",
    "parse_dockerfile",
    "parse_size",
    "parse_spec",
]
