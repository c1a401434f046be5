"""Platforms without an engine: the platforms list, budgets per platform, the declarative key,
and what binfmt_misc says the kernel emulates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.buildinputs import parse_platforms
from pytest_slimimage.checks.check import PerPlatform
from pytest_slimimage.checks.declarative import load_declarations
from pytest_slimimage.checks.evaluate import assert_check, evaluate
from pytest_slimimage.checks.registry import REGISTRY
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.spec import SpecError, parse_spec
from pytest_slimimage.emulation import elf_header, emulated, parse_handler
from pytest_slimimage.engine.emulation import engine_emulates
from pytest_slimimage.errors import ImageCheckFailed, SlimImageError
from pytest_slimimage.facts import ImageConfig, ImageFacts, RunResult, ServicePlan, ServiceResult


@dataclass
class PlatformImage:
    """An image of one platform, made of facts."""

    platform: str
    size: int
    default_timeout: float = 30.0
    seen: list[CheckResult] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"hello[{self.platform}]"

    def facts(self, *, filesystem: bool = False, pull: bool = False, rebuild: bool = False) -> ImageFacts:
        os_, arch, *variant = self.platform.split("/")
        config = ImageConfig(cmd=("/hello",), os=os_, architecture=arch, variant="".join(variant))
        return ImageFacts(self.name, "sha256:" + "0" * 64, self.size, config)

    def run(
        self, args: Sequence[str] | None = None, timeout: float | None = None, *, memory: str | None = None
    ) -> RunResult:
        raise AssertionError("no run here")

    def serve(self, plan: ServicePlan) -> ServiceResult:
        raise AssertionError("no service here")

    def observe(self, result: CheckResult) -> CheckResult:
        self.seen.append(result)
        return result

    def growth_baseline(self) -> tuple[BaselineEntry | None, bool]:
        return None, False


# ----------------------------------------------------------------------------- the platforms list
def test_platforms_are_a_list_of_distinct_platforms() -> None:
    assert parse_platforms(["linux/amd64", "Linux/ARM64 "]) == ("linux/amd64", "linux/arm64")
    assert parse_platforms(("linux/arm/v7",)) == ("linux/arm/v7",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("linux/amd64", 'expected a list of platforms such as ["linux/amd64", "linux/arm64"], got \'linux/amd64\''),
        ([], 'expected a list of platforms such as ["linux/amd64", "linux/arm64"], got []'),
        (["linux/amd64", "arm64"], "expected a platform os/arch[/variant] such as linux/amd64, got 'arm64'"),
        (["linux/amd64", "linux/AMD64"], "linux/amd64 is listed twice"),
    ],
)
def test_bad_platforms_say_what_is_wrong(value: object, message: str) -> None:
    with pytest.raises(ValueError) as excinfo:
        parse_platforms(value)
    assert str(excinfo.value) == message


# ------------------------------------------------------------------------------ budgets per platform
def test_a_budget_per_platform_holds_each_image_to_its_own() -> None:
    spec = parse_spec({"max_size": {"linux/amd64": "20MB", "linux/arm64": "22MB"}}, where="here")
    assert spec.max_size == PerPlatform({"linux/amd64": 20_000_000, "linux/arm64": 22_000_000})
    (amd64,) = evaluate(PlatformImage("linux/amd64", 21_000_000), spec)
    (arm64,) = evaluate(PlatformImage("linux/arm64", 21_000_000), spec)
    assert not amd64.passed
    assert amd64.headline.startswith("hello[linux/amd64]: max_size: 21MB (21000000 bytes) exceeds the budget of 20MB")
    assert arm64.passed, arm64.headline
    assert arm64.details["limit"] == 22_000_000


def test_a_variant_falls_back_to_its_os_and_arch() -> None:
    spec = parse_spec({"max_pull_size": {"linux/arm64": "1MB"}, "warn_size": {"linux/arm64": 10}}, where="here")
    expectation = spec.max_pull_size
    assert isinstance(expectation, PerPlatform)
    assert expectation.pick("linux/arm64/v8") == 1_000_000
    assert expectation.pick("linux/amd64") is None


def test_a_platform_without_a_budget_is_an_error_naming_it() -> None:
    spec = parse_spec({"max_size": {"linux/amd64": "20MB"}}, where="here")
    with pytest.raises(SlimImageError) as excinfo:
        evaluate(PlatformImage("linux/arm64", 1), spec)
    assert str(excinfo.value) == (
        "hello[linux/arm64]: max_size is given for linux/amd64, not for linux/arm64 (the image's platform);"
        " add 'linux/arm64': ... to the max_size dict"
    )


def test_the_helpers_take_a_budget_per_platform() -> None:
    image = PlatformImage("linux/arm64", 2_000)
    assert assert_check(image, "max_size", {"linux/arm64": "2kB", "linux/amd64": "1kB"}).passed
    with pytest.raises(ImageCheckFailed, match=r"exceeds the budget of 1kB"):
        assert_check(image, "max_size", {"linux/arm64": "1kB"})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"linux/amd64": "12 parsecs"}, "here: max_size: linux/amd64: "),
        ({"linux/amd64": "1MB", "amd64/": "1MB"}, "here: max_size: "),
    ],
)
def test_a_bad_budget_per_platform_names_the_platform(value: object, message: str) -> None:
    with pytest.raises(SpecError) as excinfo:
        parse_spec({"max_size": value}, where="here")
    assert str(excinfo.value).startswith(message)


def test_only_budgets_take_values_per_platform() -> None:
    per_platform = sorted(check.name for check in REGISTRY if check.per_platform)
    assert per_platform == ["max_pull_size", "max_size", "warn_size"]
    with pytest.raises(SpecError):
        parse_spec({"final_base": {"linux/amd64": "scratch"}}, where="here")


# ------------------------------------------------------------------------------- the declarative key
def declare(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "pyproject.toml"
    path.write_text(f'[tool.slimimage.images.hello]\ncontext = "."\nmax_size = "1MB"\n{body}', encoding="utf-8")
    return path


def test_a_table_declares_its_platforms(tmp_path: Path) -> None:
    found = load_declarations(declare(tmp_path, 'platforms = ["linux/amd64", "linux/arm64"]\n'))
    assert found is not None
    (image,) = found.images
    assert image.platforms == ("linux/amd64", "linux/arm64")
    assert image.platform is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            'platforms = "linux/arm64"\n',
            'platforms: expected a list of platforms such as ["linux/amd64", "linux/arm64"], got \'linux/arm64\'',
        ),
        (
            'platform = "linux/amd64"\nplatforms = ["linux/arm64"]\n',
            "give platform (one build) or platforms (one build each), not both",
        ),
        ('platforms = ["linux/amd64", "linux/amd64"]\n', "platforms: linux/amd64 is listed twice"),
    ],
)
def test_bad_platforms_in_a_table(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(SpecError) as excinfo:
        load_declarations(declare(tmp_path, body))
    assert str(excinfo.value) == f"{tmp_path / 'pyproject.toml'} [tool.slimimage.images.hello]: {message}"


# ----------------------------------------------------------------------------------- binfmt_misc
QEMU_AARCH64 = """enabled
interpreter /usr/bin/qemu-aarch64-static
flags: PF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


def test_an_enabled_fix_binary_qemu_handler_emulates_its_machine() -> None:
    assert emulated({"qemu-aarch64": QEMU_AARCH64}, "amd64") == {
        "arm64": "QEMU (binfmt_misc qemu-aarch64: /usr/bin/qemu-aarch64-static)"
    }


def test_a_handler_that_is_disabled_or_without_fix_binary_does_not_count() -> None:
    disabled = QEMU_AARCH64.replace("enabled", "disabled", 1)
    without_f = QEMU_AARCH64.replace("flags: PF", "flags: P")
    assert emulated({"qemu-aarch64": disabled}, "amd64") == {}
    assert emulated({"qemu-aarch64": without_f}, "amd64") == {}
    assert emulated({}, "amd64") == {}


def test_the_native_machine_is_not_emulated() -> None:
    assert emulated({"qemu-aarch64": QEMU_AARCH64}, "arm64") == {}


def test_handlers_match_by_magic_and_mask() -> None:
    handler = parse_handler("qemu-aarch64", QEMU_AARCH64)
    assert handler.matches(elf_header("arm64"))
    assert not handler.matches(elf_header("amd64"))
    assert not handler.matches(elf_header("arm"))
    by_extension = parse_handler("jar", "enabled\ninterpreter /usr/bin/jexec\nflags: F\nextension .jar\n")
    assert not by_extension.matches(elf_header("arm64"))


def test_a_remote_engine_cannot_be_told_and_an_unmounted_binfmt_emulates_nothing(tmp_path: Path) -> None:
    assert engine_emulates("tcp://10.0.0.1:2375", "amd64") is None
    assert engine_emulates("http+docker://localhost", "amd64", root=str(tmp_path / "absent")) == {}
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    (tmp_path / "qemu-aarch64").write_text(QEMU_AARCH64)
    assert engine_emulates("http+docker://localhost", "amd64", root=str(tmp_path)) == {
        "arm64": "QEMU (binfmt_misc qemu-aarch64: /usr/bin/qemu-aarch64-static)"
    }
