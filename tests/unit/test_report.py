"""Reports over a session's images: terminal rows (and the -q form), Markdown bars, the SVG chart,
the JSON report against its schema, and records merged across xdist workers."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pytest_slimimage.baseline import Baseline, BaselineEntry, BaselineLayer, load_baseline, write_baseline
from pytest_slimimage.glue.session import SlimImageSession
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.report import (
    REPORT_SCHEMA,
    REPORT_VERSION,
    ImageRecord,
    json_report,
    markdown_report,
    merge_records,
    svg_chart,
    terminal_lines,
)

ROOT = Path(__file__).resolve().parents[2]
SVG = "{http://www.w3.org/2000/svg}"


def image_id(char: str) -> str:
    return "sha256:" + char * 64


def hello() -> ImageRecord:
    return ImageRecord(
        "hello",
        image_id("a"),
        761_896,
        "scratch",
        "example_project/Dockerfile.static",
        limit=1_000_000,
        baseline_size=700_000,
        max_growth="5%",
        checks={"max_size": "passed", "max_growth": "failed", "exec_form": "passed"},
        failures={"max_growth": "hello: max_growth: grew +61.9kB (+8.8%) over its baseline of 700kB"},
        layers=[{"instruction": "COPY file:abc in /hello", "size": 761_896, "from_base": False}],
        builder="buildkit",
    )


def api() -> ImageRecord:
    return ImageRecord(
        "api|v2",
        image_id("b"),
        61_000_000,
        "gcr.io/distroless/static",
        "Dockerfile",
        limit=80_000_000,
        warn_size=60_000_000,
        checks={"max_size": "passed"},
        builder="legacy",
    )


def plain() -> ImageRecord:
    """Built but never checked: no budget, no baseline, no verdicts."""
    return ImageRecord("plain", image_id("c"), 2_005_472, "busybox:latest")


def records() -> list[ImageRecord]:
    return merge_records([plain(), hello(), api()])


# ------------------------------------------------------------------------------------------ records
def test_delta_and_headroom() -> None:
    record = hello()
    assert (record.delta, record.headroom) == (61_896, 238_104)
    assert (plain().delta, plain().headroom) == (None, None)


def test_json_round_trip_ignores_the_derived_fields() -> None:
    data = hello().to_json()
    assert (data["delta"], data["headroom"]) == (61_896, 238_104)
    assert ImageRecord.from_json(json.loads(json.dumps(data))) == hello()


def test_merge_records_one_row_per_image_sorted_by_name() -> None:
    assert [r.name for r in merge_records([plain(), hello(), api(), hello(), plain()])] == ["api|v2", "hello", "plain"]


def test_merge_records_folds_what_each_worker_saw() -> None:
    """Two workers ran different checks on one image; a third only built it."""
    first = ImageRecord("hello", image_id("a"), 761_896, "scratch", checks={"max_size": "passed"}, limit=2_000_000)
    second = ImageRecord(
        "hello",
        image_id("a"),
        761_896,
        "scratch",
        limit=1_000_000,
        baseline_size=700_000,
        max_growth="5%",
        checks={"max_size": "failed", "runs": "passed"},
        failures={"max_size": "hello: max_size: too big"},
        layers=[{"instruction": "COPY x", "size": 1, "from_base": False}],
    )
    third = ImageRecord("hello", image_id("a"), 761_896, "scratch", checks={"max_size": "passed"})
    (merged,) = merge_records([first, second, third])
    assert merged.checks == {"max_size": "failed", "runs": "passed"}  # failed wins, whatever the order
    assert merged.failures == {"max_size": "hello: max_size: too big"}
    assert merged.limit == 1_000_000  # the tightest budget
    assert (merged.baseline_size, merged.max_growth) == (700_000, "5%")
    assert merged.layers == [{"instruction": "COPY x", "size": 1, "from_base": False}]
    assert first.checks == {"max_size": "passed"}  # the inputs are left alone
    (reversed_order,) = merge_records([third, second, first])
    assert reversed_order.checks == merged.checks


# ----------------------------------------------------------------------------------------- terminal
def test_terminal_table() -> None:
    assert terminal_lines(records()) == [
        "image     size  budget     headroom      vs baseline  final base                builder   checks",
        "  ".join(["------", "------", "------", "-----------", "---------------", "-" * 24, "-" * 8, "-" * 31]),
        "api|v2    61MB    80MB   19MB (24%)                -  gcr.io/distroless/static  legacy    1 passed",
        "hello    762kB     1MB  238kB (24%)  +61.9kB (+8.8%)  scratch                   buildkit  "
        "2 passed, 1 failed (max_growth)",
        "plain   2.01MB       -            -                -  busybox:latest            -         -",
    ]


def test_terminal_short_form_under_q() -> None:
    assert terminal_lines(records(), verbose=False) == [
        "api|v2: 61MB/80MB",
        "hello: 762kB/1MB (+61.9kB) FAILED",
        "plain: 2.01MB",
    ]


def test_terminal_over_budget_and_shrunk() -> None:
    record = ImageRecord(
        "fat", image_id("d"), 2_285_472, limit=1_000, baseline_size=2_305_472, checks={"max_size": "failed"}
    )
    row = terminal_lines([record])[-1]
    assert re.split(r"\s{2,}", row) == [
        "fat",
        "2.29MB",
        "1kB",
        "over 2.28MB",
        "-20kB (-0.9%)",
        "-",
        "-",
        "0 passed, 1 failed (max_size)",
    ]


def test_no_images_no_lines() -> None:
    assert terminal_lines([]) == []
    assert terminal_lines([], verbose=False) == []


# ----------------------------------------------------------------------------------------- Markdown
def test_markdown_table_with_bars() -> None:
    assert markdown_report(records()).splitlines() == [
        "### Image sizes (pytest-slimimage)",
        "",
        "| image | size | budget | of budget | vs baseline | final base | builder | checks |",
        "|---|--:|--:|---|--:|---|---|---|",
        "| `api\\|v2` | 61MB | 80MB | `███████████████▎····` 76% | - | gcr.io/distroless/static | legacy"
        " | ✅ 1 passed |",
        "| `hello` | 762kB | 1MB | `███████████████▏····` 76% | +61.9kB (+8.8%) | scratch | buildkit"
        " | ❌ 2 passed, 1 failed (max_growth) |",
        "| `plain` | 2.01MB | - | `▋···················` | - | busybox:latest | - | - |",
    ]


@pytest.mark.parametrize(
    ("size", "limit", "bar"),
    [
        (0, 100, "`····················` 0%"),
        (50, 100, "`██████████··········` 50%"),
        (53, 100, "`██████████▌·········` 53%"),
        (100, 100, "`████████████████████` 100%"),
        (300, 100, "`████████████████████▶` 300%"),
    ],
)
def test_markdown_bar_glyphs(size: int, limit: int, bar: str) -> None:
    row = markdown_report([ImageRecord("x", image_id("e"), size, limit=limit)]).splitlines()[-1]
    assert row.split(" | ")[3] == bar


def test_markdown_rows_have_as_many_cells_as_the_header() -> None:
    lines = markdown_report(records()).splitlines()[2:]
    counts = {line.replace("\\|", "").count("|") for line in lines}
    assert counts == {9}


def test_markdown_without_images() -> None:
    assert markdown_report([]).splitlines()[-1] == "| (no images) | | | | | | | |"


# ---------------------------------------------------------------------------------------------- SVG
def test_svg_is_well_formed_with_one_bar_per_image() -> None:
    recs = [*records(), ImageRecord("<&\"'>", image_id("f"), 5, checks={"runs": "failed"})]
    root = ET.fromstring(svg_chart(recs))
    assert root.tag == f"{SVG}svg"
    assert root.findtext(f"{SVG}title") == "pytest-slimimage: image sizes (log scale)"
    bars = root.findall(f"{SVG}rect")
    assert [bar.findtext(f"{SVG}title") for bar in bars] == [
        "api|v2: 61MB",
        "hello: 762kB",
        "plain: 2.01MB",
        "<&\"'>: 5B",
    ]
    assert [bar.get("fill") for bar in bars] == ["#2e86c1", "#c0392b", "#2e86c1", "#c0392b"]  # failed: red
    widths = [float(bar.get("width") or "nan") for bar in bars]
    assert widths[0] > widths[2] > widths[1] > widths[3] > 0  # longer bar, larger image
    budgets = [line.findtext(f"{SVG}title") for line in root.findall(f"{SVG}line")]
    assert budgets == ["budget 80MB", "budget 1MB"]
    baselines = [path.findtext(f"{SVG}title") for path in root.findall(f"{SVG}path")]
    assert baselines == ["baseline 700kB"]
    labels = [text.text for text in root.findall(f"{SVG}text")]
    assert "762kB (+61.9kB (+8.8%))" in labels
    assert int(root.get("height") or 0) >= 32 + 34 * len(recs)


@pytest.mark.parametrize(
    "recs",
    [
        [],
        [ImageRecord("empty", image_id("0"), 0)],
        [ImageRecord("one", image_id("1"), 1, limit=1, baseline_size=1)],
    ],
    ids=["none", "zero-bytes", "one-byte"],
)
def test_svg_edge_cases_are_well_formed(recs: list[ImageRecord]) -> None:
    root = ET.fromstring(svg_chart(recs))
    assert len(root.findall(f"{SVG}rect")) == len(recs)
    for bar in root.findall(f"{SVG}rect"):
        assert float(bar.get("width") or "nan") >= 0


# --------------------------------------------------------------------------------------------- JSON
def validator() -> Any:
    """A validator of the schema's own draft (2020-12), after checking the schema itself."""
    cls = jsonschema.validators.validator_for(REPORT_SCHEMA)
    cls.check_schema(REPORT_SCHEMA)
    assert cls is jsonschema.Draft202012Validator
    return cls(REPORT_SCHEMA)


def test_json_report_validates_against_its_schema() -> None:
    text = json_report(records(), meta={"duration": 1.5, "session": "abc"})
    data = json.loads(text)
    validator().validate(data)
    assert data["version"] == REPORT_VERSION
    assert data["meta"] == {"duration": 1.5, "session": "abc"}
    assert [image["name"] for image in data["images"]] == ["api|v2", "hello", "plain"]
    assert data["images"][1]["delta"] == 61_896
    assert data["images"][1]["headroom"] == 238_104
    assert text == json.dumps(data, indent=2, sort_keys=True) + "\n"  # sorted, stable


def test_an_empty_json_report_validates() -> None:
    validator().validate(json.loads(json_report([])))


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"id": "abc"}, ["images", 0, "id"]),
        ({"checks": {"max_size": "skipped"}}, ["images", 0, "checks", "max_size"]),
        ({"size": -1}, ["images", 0, "size"]),
        ({"surprise": 1}, ["images", 0]),
        ({"layers": [{"instruction": "RUN x", "size": 1}]}, ["images", 0, "layers", 0]),
    ],
)
def test_the_schema_rejects_what_the_report_never_writes(change: dict[str, Any], path: list[Any]) -> None:
    data = json.loads(json_report([hello()]))
    data["images"][0].update(change)
    errors = list(validator().iter_errors(data))
    assert [list(error.absolute_path) for error in errors] == [path]


def test_the_documented_schema_is_the_one_in_the_code() -> None:
    assert json.loads((ROOT / "docs" / "report.schema.json").read_text(encoding="utf-8")) == REPORT_SCHEMA


# ------------------------------------------------------------------------- xdist: the controller's view
def worker_payload(builds: int, *recs: ImageRecord) -> dict[str, Any]:
    summary = {"builds": builds, "checks": 3, "failed": 1, "used": True, "removed_containers": 0}
    payload: dict[str, Any] = json.loads(json.dumps({"summary": summary, "records": [r.to_json() for r in recs]}))
    return payload


def controller(tmp_path: Path, **settings: Any) -> SlimImageSession:
    return SlimImageSession(Settings(**settings), tmp_path, role="controller", shared_dir=tmp_path / "shared")


def test_controller_merges_workers_without_duplicates_or_losses(tmp_path: Path) -> None:
    """gw0 built hello and checked it; gw1 checked hello (built by gw0) and built plain."""
    gw0 = ImageRecord("hello", image_id("a"), 761_896, "scratch", checks={"max_size": "passed"}, limit=1_000_000)
    gw1 = ImageRecord("hello", image_id("a"), 761_896, "scratch", checks={"max_growth": "failed"}, max_growth="5%")
    state = controller(tmp_path)
    state.merge_worker(worker_payload(1, gw0))
    state.merge_worker(worker_payload(1, gw1, plain()))
    merged = state.all_records()
    assert [r.name for r in merged] == ["hello", "plain"]
    assert merged[0].checks == {"max_size": "passed", "max_growth": "failed"}
    assert (merged[0].limit, merged[0].max_growth) == (1_000_000, "5%")
    assert (state.summary.builds, state.summary.checks, state.summary.failed) == (2, 6, 2)
    first = state.summary.lines(keep_images=False)[0]
    assert first.startswith("slimimage: 2 image build(s), 0 reused, 6 check(s) (2 failed)")


def test_controller_writes_the_merged_reports(tmp_path: Path) -> None:
    state = controller(
        tmp_path,
        report=tmp_path / "out" / "report.json",
        markdown=tmp_path / "out" / "sizes.md",
        chart=tmp_path / "out" / "sizes.svg",
    )
    state.merge_worker(worker_payload(1, hello()))
    state.merge_worker(worker_payload(0, hello(), api()))
    state.write_files()
    assert state.summary.errors == []
    assert state.summary.written == [str(tmp_path / "out" / name) for name in ("report.json", "sizes.md", "sizes.svg")]
    data = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    validator().validate(data)
    assert [image["name"] for image in data["images"]] == ["api|v2", "hello"]
    assert set(data["meta"]) == {"duration", "session", "exitstatus"}
    markdown = (tmp_path / "out" / "sizes.md").read_text(encoding="utf-8")
    assert markdown.count("| `hello` |") == 1
    ET.fromstring((tmp_path / "out" / "sizes.svg").read_text(encoding="utf-8"))


def test_updating_the_baseline_keeps_other_images(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    other = BaselineEntry(5, "scratch")
    write_baseline(path, Baseline({"other": other, "hello": BaselineEntry(1)}))
    state = controller(tmp_path, baseline=path, update_baseline=True)
    state.merge_worker(worker_payload(1, hello()))
    state.write_files()
    assert state.summary.written == [f"{path} (size baseline, 1 image(s))"]
    assert load_baseline(path).images == {
        "other": other,
        "hello": BaselineEntry(761_896, "scratch", (BaselineLayer("COPY file:abc in /hello", 761_896),)),
    }


def test_updating_repairs_a_malformed_baseline(tmp_path: Path) -> None:
    """The error for a malformed file says to rewrite it with --slimimage-update-baseline: that must work."""
    path = tmp_path / "baseline.json"
    path.write_text("{oops")
    state = controller(tmp_path, baseline=path, update_baseline=True, report=tmp_path / "report.json")
    assert state.baseline_entry("hello") is None  # no error while updating
    state.merge_worker(worker_payload(1, hello()))
    state.write_files()
    assert state.summary.errors == []
    assert list(load_baseline(path).images) == ["hello"]
    assert (tmp_path / "report.json").is_file()


def test_a_malformed_baseline_is_an_error_when_not_updating(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text("{oops")
    state = controller(tmp_path, baseline=path)
    with pytest.raises(Exception, match=r"^the size baseline .*baseline\.json is not valid: "):
        state.baseline_entry("hello")


def test_a_report_that_cannot_be_written_does_not_cost_the_others(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    state = controller(tmp_path, report=blocker / "report.json", markdown=tmp_path / "sizes.md")
    state.merge_worker(worker_payload(1, hello()))
    state.write_files()
    assert state.summary.written == [str(tmp_path / "sizes.md")]
    (error,) = state.summary.errors
    assert error.startswith(f"writing reports: [Errno 17] File exists: {str(blocker)!r}")


def test_the_builder_is_a_column_merged_like_the_other_facts() -> None:
    worker = ImageRecord("hello", image_id("a"), 761_896, builder="buildkit")
    controller = ImageRecord("hello", image_id("a"), 761_896)
    (merged,) = merge_records([controller, worker])
    assert merged.builder == "buildkit"
    assert json.loads(json_report([merged]))["images"][0]["builder"] == "buildkit"
    with pytest.raises(ValueError, match="a check cannot set the report column 'builder'"):
        merged.set_columns({"builder": "legacy"})
