"""Size baselines end to end: record, grow an image past its allowed growth (a failure with the
delta and the layer that grew), accept it with ``--slimimage-update-baseline``; the file's diff
shows exactly what changed. The image grows by a payload of a chosen size, so sizes are exact."""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path

import pytest

from tests.plugin.support import SUITE_WORD, block, outcomes, plain_error, summary_lines

pytestmark = pytest.mark.usefixtures("docker_engine")

DOCKERFILE = f'FROM busybox:latest\nCOPY payload /payload\nCMD ["echo", "{SUITE_WORD}"]\n'

PYPROJECT = """\
[tool.pytest.ini_options]
slimimage_baseline = "sizes/baseline.json"

[tool.slimimage]
max_growth = "5%"

[tool.slimimage.images.strict]
context = "app"
max_size = "10MB"

[tool.slimimage.images.lenient]
context = "app"
max_growth = "2MB"
"""

HASH = re.compile(r"[0-9a-f]{64}")
IDS = {
    "pyproject.toml::strict::max_size",
    "pyproject.toml::strict::max_growth",
    "pyproject.toml::lenient::max_growth",
}


def project(pytester: pytest.Pytester, payload: int) -> Path:
    """Two declared images of one build context whose payload is ``payload`` bytes; the baseline path."""
    pytester.makefile(".toml", pyproject=PYPROJECT)
    app = pytester.path / "app"
    app.mkdir(exist_ok=True)
    (app / "Dockerfile").write_text(DOCKERFILE)
    set_payload(pytester, payload)
    return pytester.path / "sizes" / "baseline.json"


def set_payload(pytester: pytest.Pytester, size: int) -> None:
    (pytester.path / "app" / "payload").write_bytes(b"\0" * size)


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-rA", "-p", "no:randomly", *args)


def test_grow_past_the_baseline_then_accept(pytester: pytest.Pytester) -> None:
    baseline = project(pytester, 10_000)

    # 1. no baseline yet: max_growth fails with the way out
    result = run(pytester)
    assert outcomes(result) == {
        ("PASSED", "pyproject.toml::strict::max_size"),
        ("FAILED", "pyproject.toml::strict::max_growth"),
        ("FAILED", "pyproject.toml::lenient::max_growth"),
    }
    message = plain_error(block(result, "strict::max_growth"), "pyproject.toml", "DeclaredCheckFailed")
    assert message.splitlines() == [
        "strict: max_growth: no baseline entry for this image",
        "  hint: record one with --slimimage-update-baseline (and commit the baseline file)",
    ]
    assert not baseline.exists()

    # 2. record it: every check passes, the file is written (folder made), the summary says so
    result = run(pytester, "--slimimage-update-baseline")
    assert outcomes(result) == {("PASSED", node) for node in IDS}
    assert f"slimimage: wrote {baseline} (size baseline, 2 image(s))" in summary_lines(result)
    recorded = baseline.read_text(encoding="utf-8")
    data = json.loads(recorded)
    assert recorded == json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    assert sorted(data) == ["images", "version"]
    assert list(data["images"]) == ["lenient", "strict"]
    entry = data["images"]["strict"]
    assert entry == data["images"]["lenient"]  # one build, two names
    assert entry["final_base"] == "busybox:latest"
    assert entry["layers"][-1]["size"] == 10_000
    # the legacy builder records COPY's source by content, BuildKit (auto, here) as written
    instruction = entry["layers"][-1]["instruction"]
    assert re.fullmatch(r"COPY (file:[0-9a-f]{64} in |payload )/payload", instruction), instruction
    by_content = instruction.startswith("COPY file:")
    assert entry["size"] == sum(layer["size"] for layer in entry["layers"])
    size = entry["size"]

    # 3. unchanged: passes, and the table shows a zero delta
    result = run(pytester)
    assert outcomes(result) == {("PASSED", node) for node in IDS}
    assert any("+0B (+0.0%)" in line for line in result.outlines), result.outlines

    # 4. grown by 290kB (over 5% of ~2MB, under 2MB): strict fails with the delta, lenient passes
    set_payload(pytester, 300_000)
    result = run(pytester)
    assert outcomes(result) == {
        ("PASSED", "pyproject.toml::strict::max_size"),
        ("FAILED", "pyproject.toml::strict::max_growth"),
        ("PASSED", "pyproject.toml::lenient::max_growth"),
    }
    percent = 290_000 / size * 100
    message = plain_error(block(result, "strict::max_growth"), "pyproject.toml", "DeclaredCheckFailed")
    assert message.splitlines() == [
        f"strict: max_growth: grew +290kB (+{percent:.1f}%) over its baseline of {size / 1e6:.3g}MB,"
        " more than the allowed 5%",
        "  layer changes since the baseline:",
        "     +290kB  COPY file:… in /payload  (changed)"
        if by_content
        else "     +290kB  COPY payload /payload  (changed)",
        "  hint: shrink the layers that grew, or accept the new size with --slimimage-update-baseline",
    ]
    result.stdout.fnmatch_lines(["pyproject.toml:7: DeclaredCheckFailed"])  # strict's table
    rows = [line for line in result.outlines if line.startswith(("strict ", "lenient "))]
    assert len(rows) == 2, result.outlines
    assert all(f"+290kB (+{percent:.1f}%)" in row for row in rows), rows
    assert baseline.read_text(encoding="utf-8") == recorded  # a failing run does not touch it

    # 5. accept the growth: passes; the diff of the file is the payload layer and the sizes
    result = run(pytester, "--slimimage-update-baseline")
    assert outcomes(result) == {("PASSED", node) for node in IDS}
    updated = baseline.read_text(encoding="utf-8")
    diff = list(difflib.unified_diff(recorded.splitlines(), updated.splitlines(), lineterm="", n=0))
    removed = sorted(HASH.sub("<hash>", line[1:].strip()) for line in diff[2:] if line.startswith("-"))
    added = sorted(HASH.sub("<hash>", line[1:].strip()) for line in diff[2:] if line.startswith("+"))
    payload = ['"instruction": "COPY file:<hash> in /payload",'] if by_content else []  # else unchanged
    assert removed == sorted(2 * [*payload, '"size": 10000', f'"size": {size}'])
    assert added == sorted(2 * [*payload, '"size": 300000', f'"size": {size + 290_000}'])
    result = run(pytester)
    assert outcomes(result) == {("PASSED", node) for node in IDS}


def test_update_keeps_the_entries_of_images_not_built(pytester: pytest.Pytester) -> None:
    baseline = project(pytester, 10_000)
    baseline.parent.mkdir()
    baseline.write_text('{"images": {"elsewhere": {"size": 5}}, "version": 1}\n')
    result = run(pytester, "--slimimage-update-baseline", "-k", "strict")
    result.assert_outcomes(passed=2, deselected=1)
    data = json.loads(baseline.read_text(encoding="utf-8"))
    assert list(data["images"]) == ["elsewhere", "strict"]
    assert data["images"]["elsewhere"] == {"final_base": "", "layers": [], "size": 5}


def test_a_corrupt_baseline_names_the_file_and_update_repairs_it(pytester: pytest.Pytester) -> None:
    baseline = project(pytester, 10_000)
    baseline.parent.mkdir()
    baseline.write_text('{"images": {"strict": {"size": "big"}}, "version": 1}\n')

    result = run(pytester)
    assert outcomes(result) == {
        ("PASSED", "pyproject.toml::strict::max_size"),
        ("FAILED", "pyproject.toml::strict::max_growth"),
        ("FAILED", "pyproject.toml::lenient::max_growth"),
    }
    message = plain_error(block(result, "strict::max_growth"), "pyproject.toml", "SlimImageError")
    assert message == (
        f"the size baseline {baseline} is not valid: strict: size must be a number of bytes, got 'big';"
        " rewrite it with --slimimage-update-baseline"
    )

    result = run(pytester, "--slimimage-update-baseline")
    assert outcomes(result) == {("PASSED", node) for node in IDS}
    assert not [line for line in summary_lines(result) if "failed" in line and "(0 failed)" not in line]
    assert sorted(json.loads(baseline.read_text(encoding="utf-8"))["images"]) == ["lenient", "strict"]


@pytest.mark.parametrize("how", ["option", "ini"])
def test_the_baseline_path_from_option_or_ini(pytester: pytest.Pytester, how: str) -> None:
    """The option wins over the ini key; a relative path is relative to the rootdir."""
    project(pytester, 10_000)
    args = ["--slimimage-update-baseline"] + (["--slimimage-baseline", "other.json"] if how == "option" else [])
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=3)
    written = pytester.path / ("other.json" if how == "option" else "sizes/baseline.json")
    assert written.is_file()
    assert f"slimimage: wrote {written} (size baseline, 2 image(s))" in summary_lines(result)


def test_marker_max_growth_uses_the_same_baseline(pytester: pytest.Pytester) -> None:
    baseline = project(pytester, 10_000)
    pytester.makepyfile(
        test_marker="""
        import pytest
        from pytest_slimimage import image_fixture

        strict = image_fixture("app")

        @pytest.mark.slimimage(max_growth="1kB")
        def test_strict(strict):
            pass
        """
    )
    run(pytester, "--slimimage-update-baseline").assert_outcomes(passed=4)
    set_payload(pytester, 12_000)
    result = run(pytester, "test_marker.py")
    result.assert_outcomes(failed=1)
    message = plain_error(block(result, "test_strict"), "test_marker.py", "MarkerCheckFailed")
    assert message.splitlines()[0].startswith("strict: max_growth: grew +2kB (+0.1%) over its baseline of ")
    assert message.splitlines()[0].endswith(", more than the allowed 1kB")
    assert baseline.is_file()
