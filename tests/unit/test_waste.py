"""Wasted bytes over layers built by hand (no engine): N-1 copies, deletions, opaque dirs, attribution, the check."""

from __future__ import annotations

import io
import json
import random
from collections.abc import Iterable

import pytest

from pytest_slimimage.analysis.attribution import attribute_layers
from pytest_slimimage.analysis.layers import LayerIndex, index_layer, merge_layers
from pytest_slimimage.analysis.waste import (
    DELETED,
    HIDDEN,
    OVERWRITTEN,
    LayerWaste,
    Origin,
    WastedPath,
    WasteReport,
    attribute,
    compute_waste,
    format_waste_lines,
    layer_origins,
    mark_empty_layers,
    parse_waste_limit,
)
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.waste import check_max_waste
from pytest_slimimage.dockerfile.model import parse_dockerfile
from pytest_slimimage.facts import FileEntry, ImageConfig, ImageFacts, Layer

from .archives import directory, file, hardlink, make_tar
from .steps import steps

MB = 1_000_000


def f(path: str, size: int) -> FileEntry:
    return FileEntry(path, "file", size)


def d(path: str) -> FileEntry:
    return FileEntry(path, "dir", 0, 0o755)


def sym(path: str, target: str) -> FileEntry:
    return FileEntry(path, "symlink", 0, 0o777, target)


def hard(path: str, target: str) -> FileEntry:
    return FileEntry(path, "hardlink", 0, 0o755, target)


def layer(*entries: FileEntry, whiteouts: Iterable[str] = (), opaque: Iterable[str] = ()) -> LayerIndex:
    return LayerIndex(
        digest="sha256:" + "0" * 64,
        entries={e.path: e for e in entries},
        whiteouts=list(whiteouts),
        opaque_dirs=list(opaque),
        size=sum(e.size for e in entries if e.kind == "file"),
    )


# ------------------------------------------------------------------------------------ the case
BIG = [
    layer(d("/usr"), f("/usr/bin/app", 100_000)),
    layer(f("/big", 50 * MB)),
    layer(whiteouts=["/big"]),
]


def test_a_file_deleted_by_a_later_layer_is_all_wasted() -> None:
    report = compute_waste(BIG)
    assert report.total_bytes == 50 * MB + 100_000
    assert report.wasted_bytes == 50 * MB
    assert report.final_bytes == 100_000
    assert report.efficiency == pytest.approx(100_000 / (50 * MB + 100_000))
    assert report.efficiency < 0.01
    assert report.items == (
        WastedPath(
            "/big", 50 * MB, copies=1, ended=DELETED, written_in=(1,), wasted_in=(1,), ended_in=2, present=False
        ),
    )
    assert [(la.number, la.added, la.wasted, la.removals) for la in report.layers] == [
        (0, 100_000, 0, 0),
        (1, 50 * MB, 50 * MB, 0),
        (2, 0, 0, 1),
    ]


def test_the_deleted_file_names_the_instruction_that_wrote_it_and_the_one_that_deleted_it() -> None:
    history = [  # as the engine's history API gives it: the rm layer has 0 bytes, so it looks empty
        Layer("ADD rootfs.tar / # buildkit", 100_000, False, from_base=True),
        Layer("RUN /bin/sh -c curl -o /big https://example.org/big # buildkit", 50 * MB, False),
        Layer("RUN /bin/sh -c rm /big # buildkit", 0, True),
        Layer('CMD ["/usr/bin/app"]', 0, True),
    ]
    report = compute_waste(BIG)
    origins = attribute(history, BIG)
    assert [(o.layer, o.entry, o.from_base) for o in origins] == [(0, 0, True), (1, 1, False), (2, 2, False)]
    assert format_waste_lines(report, origins=origins) == [
        "top wasted paths:",
        "    50MB  /big  written by RUN curl -o /big https://example.org/big, deleted by RUN rm /big",
        "wasted, by the instruction that wrote it:",
        "    50MB  RUN curl -o /big https://example.org/big  (50MB written)",
        "efficiency: 0.2% (100kB of the 50.1MB written to layers reaches the final filesystem)",
    ]


def test_the_same_case_from_real_layer_tars() -> None:
    tars = [
        make_tar([directory("usr/"), directory("usr/bin/"), file("usr/bin/app", b"a" * 1000)]),
        make_tar([file("big", b"\0" * 50_000)]),
        make_tar([file(".wh.big")]),
    ]
    report = compute_waste([index_layer(io.BytesIO(t)) for t in tars])
    assert (report.total_bytes, report.wasted_bytes) == (51_000, 50_000)
    assert [(it.path, it.ended, it.written_in, it.ended_in) for it in report.items] == [("/big", DELETED, (1,), 2)]


# ------------------------------------------------------------------------------------------ overwrites
def test_a_path_written_three_times_wastes_two_copies_not_three() -> None:
    report = compute_waste([layer(f("/data", 20 * MB)), layer(f("/data", 20 * MB)), layer(f("/data", 20 * MB))])
    assert report.total_bytes == 60 * MB
    assert report.wasted_bytes == 40 * MB  # N-1 copies; dive (its issue #684) reports all 60MB
    assert report.efficiency == pytest.approx(1 / 3)
    assert report.items == (
        WastedPath("/data", 40 * MB, 3, OVERWRITTEN, written_in=(0, 1, 2), wasted_in=(0, 1), ended_in=2, present=True),
    )
    assert [la.wasted for la in report.layers] == [20 * MB, 20 * MB, 0]


def test_overwriting_with_a_smaller_copy_wastes_the_larger_one() -> None:
    report = compute_waste([layer(f("/etc/db", 900)), layer(f("/etc/db", 100))])
    assert (report.total_bytes, report.wasted_bytes, report.final_bytes) == (1000, 900, 100)


def test_a_chown_layer_rewrites_every_file() -> None:
    files = [f(f"/app/{n}", 1000) for n in range(10)]
    report = compute_waste([layer(d("/app"), *files), layer(d("/app"), *files)])
    assert report.wasted_bytes == 10_000
    assert {it.ended for it in report.items} == {OVERWRITTEN}
    assert report.layers[0].wasted == 10_000


# ----------------------------------------------------------------------------------- whole directories
def test_a_directory_whiteout_deletes_the_subtree_and_nothing_beside_it() -> None:
    lower = layer(
        d("/opt"),
        d("/opt/sdk"),
        f("/opt/sdk/bin/cc", 3000),  # no entry for /opt/sdk/bin: implied directories count too
        d("/opt/sdk/lib"),
        f("/opt/sdk/lib/libc.a", 5000),
        sym("/opt/sdk/lib/libc.so", "libc.a"),
        f("/opt/sdk2/keep", 7),  # shares the prefix "/opt/sdk" as a string, not as a directory
        f("/opt/sdk.txt", 11),
    )
    report = compute_waste([lower, layer(whiteouts=["/opt/sdk"])])
    assert report.wasted_bytes == 8000
    assert [(it.path, it.wasted, it.ended, it.ended_in) for it in report.items] == [
        ("/opt/sdk/lib/libc.a", 5000, DELETED, 1),
        ("/opt/sdk/bin/cc", 3000, DELETED, 1),
    ]
    assert report.final_bytes == 18
    assert set(merge_layers([lower, layer(whiteouts=["/opt/sdk"])]).entries) >= {"/opt/sdk2/keep", "/opt/sdk.txt"}


def test_an_opaque_directory_hides_what_lower_layers_put_in_it() -> None:
    lower = layer(d("/var/cache"), f("/var/cache/apt/pkgcache.bin", 30_000), f("/var/cached/keep", 5))
    upper = layer(d("/var/cache"), f("/var/cache/fresh", 10), opaque=["/var/cache"])
    report = compute_waste([lower, upper])
    assert report.items == (WastedPath("/var/cache/apt/pkgcache.bin", 30_000, 1, HIDDEN, (0,), (0,), 1, present=False),)
    assert report.final_bytes == 15  # the opaque layer's own file and the sibling directory stay


def test_an_opaque_root_hides_everything_below() -> None:
    report = compute_waste([layer(f("/a", 1), f("/b/c", 2)), layer(f("/d", 4), opaque=["/"])])
    assert (report.wasted_bytes, report.final_bytes) == (3, 4)


def test_a_file_deleted_then_written_again() -> None:
    report = compute_waste([layer(f("/etc/conf", 10)), layer(whiteouts=["/etc/conf"]), layer(f("/etc/conf", 12))])
    assert report.wasted_bytes == 10
    assert report.items == (WastedPath("/etc/conf", 10, 2, DELETED, (0, 2), (0,), 1, present=True),)


def test_a_whiteout_in_the_same_layer_as_a_new_copy_deletes_only_the_lower_one() -> None:
    report = compute_waste([layer(f("/x", 5)), layer(f("/x", 7), whiteouts=["/x"])])
    assert (report.wasted_bytes, report.final_bytes) == (5, 7)
    assert report.items[0].ended == DELETED


def test_a_file_over_a_directory_deletes_what_the_directory_held() -> None:
    report = compute_waste([layer(d("/srv"), f("/srv/a", 3), f("/srv/b/c", 4)), layer(f("/srv", 1))])
    assert (report.wasted_bytes, report.final_bytes) == (7, 1)
    assert {(it.path, it.ended) for it in report.items} == {("/srv/a", DELETED), ("/srv/b/c", DELETED)}


def test_a_directory_over_a_file_overwrites_it() -> None:
    report = compute_waste([layer(f("/srv", 9)), layer(d("/srv"), f("/srv/a", 3))])
    assert (report.wasted_bytes, report.final_bytes) == (9, 3)
    assert report.items[0].ended == OVERWRITTEN


# ------------------------------------------------------------------------------------- what weighs 0
def test_nothing_wasted() -> None:
    report = compute_waste(
        [
            layer(d("/usr"), d("/usr/bin"), f("/usr/bin/a", 10), sym("/usr/bin/sh", "a")),
            layer(d("/usr"), d("/usr/bin"), f("/usr/bin/b", 20), sym("/usr/bin/sh", "b")),  # dirs, symlinks: 0
            layer(whiteouts=["/nowhere", "/usr/bin/sh"]),
        ]
    )
    assert (report.total_bytes, report.wasted_bytes, report.efficiency, report.items) == (30, 0, 1.0, ())


def test_a_file_replaced_by_a_symlink_is_wasted_but_the_symlink_weighs_nothing() -> None:
    report = compute_waste([layer(f("/bin/sh", 100)), layer(sym("/bin/sh", "busybox")), layer(f("/bin/sh", 0))])
    assert (report.total_bytes, report.wasted_bytes) == (100, 100)
    assert report.items == (WastedPath("/bin/sh", 100, 3, OVERWRITTEN, (0, 1, 2), (0,), 1, present=True),)


def test_empty_image() -> None:
    report = compute_waste([])
    assert report == WasteReport()
    assert (report.total_bytes, report.wasted_bytes, report.efficiency, report.final_bytes) == (0, 0, 1.0, 0)
    assert format_waste_lines(report) == [
        "efficiency: 100.0% (0B of the 0B written to layers reaches the final filesystem)"
    ]
    assert compute_waste([layer(d("/tmp")), layer(whiteouts=["/tmp"])]).efficiency == 1.0


def test_hard_links_weigh_nothing_and_keep_their_bytes_alive() -> None:
    lower = layer(f("/usr/bin/git", 1000), hard("/usr/libexec/git-core/git-add", "/usr/bin/git"))
    assert compute_waste([lower]).total_bytes == 1000
    kept = compute_waste([lower, layer(whiteouts=["/usr/bin/git"])])
    assert kept.wasted_bytes == 0  # the link still reaches the bytes
    gone = compute_waste([lower, layer(whiteouts=["/usr/bin/git", "/usr/libexec/git-core"])])
    assert gone.items == (WastedPath("/usr/bin/git", 1000, 1, DELETED, (0,), (0,), 1, present=False),)


def test_a_hard_link_before_its_target_in_the_tar_still_shares_its_bytes() -> None:
    lower = index_layer(io.BytesIO(make_tar([hardlink("b", "a"), file("a", b"x" * 100)])))
    report = compute_waste([lower, layer(whiteouts=["/a"])])
    assert (report.total_bytes, report.wasted_bytes) == (100, 0)


def reference_waste(layers: list[LayerIndex]) -> tuple[dict[str, int], list[int]]:
    """Wasted bytes per path and per layer, the slow obvious way (no hard links, no file over a directory)."""
    present: dict[str, tuple[int, int]] = {}
    per_path: dict[str, int] = {}
    per_layer = [0] * len(layers)

    def gone(path: str) -> None:
        number, size = present.pop(path)
        if size:
            per_path[path] = per_path.get(path, 0) + size
            per_layer[number] += size

    for number, la in enumerate(layers):
        for opaque_dir in la.opaque_dirs:
            for path in [p for p in present if p.startswith(opaque_dir.rstrip("/") + "/")]:
                gone(path)
        for whiteout in la.whiteouts:
            for path in [p for p in present if p == whiteout or p.startswith(whiteout + "/")]:
                gone(path)
        for path, entry in la.entries.items():
            if path in present:
                gone(path)
            present[path] = (number, entry.size)
    return per_path, per_layer


@pytest.mark.parametrize("seed", range(20))
def test_random_layers_agree_with_a_reference_and_the_merged_filesystem(seed: int) -> None:
    rng = random.Random(seed)
    names = [f"/d{a}/s{b}/f{c}" for a in range(3) for b in range(3) for c in range(5)]
    dirs = [f"/d{a}" for a in range(3)] + [f"/d{a}/s{b}" for a in range(3) for b in range(3)]
    layers = []
    for _ in range(rng.randrange(1, 9)):
        entries = [f(n, rng.randrange(0, 1000)) for n in rng.sample(names, rng.randrange(0, 30))]
        whiteouts = rng.sample(names + dirs, rng.randrange(0, 5))
        opaque = rng.sample(dirs, 1) if rng.random() < 0.3 else []
        layers.append(layer(*entries, whiteouts=whiteouts, opaque=opaque))
    report = compute_waste(layers)
    per_path, per_layer = reference_waste(layers)
    assert {it.path: it.wasted for it in report.items} == per_path
    assert [la.wasted for la in report.layers] == per_layer
    merged = merge_layers(layers)
    assert report.final_bytes == sum(e.size for e in merged.entries.values() if e.kind == "file")
    assert report.wasted_bytes == sum(it.wasted for it in report.items) == sum(per_layer)
    assert report.total_bytes == sum(la.added for la in report.layers)
    assert all(it.present == (it.path in merged.entries) for it in report.items)
    assert [it.wasted for it in report.items] == sorted((it.wasted for it in report.items), reverse=True)


# -------------------------------------------------------------------------------------- complexity


def data_image(groups: int, per_group: int) -> list[LayerIndex]:
    """``groups`` directories of ``per_group`` files under ``/data``, then layers that delete whole
    directories and single files, rewrite files, hide a directory (opaque) and delete many files."""
    files = [f(f"/data/{n // per_group}/{n}", 100) for n in range(groups * per_group)]
    base = layer(d("/data"), *[d(f"/data/{g}") for g in range(groups)], *files)
    group_1 = [f"/data/1/{n}" for n in range(per_group, 2 * per_group)]
    deletes = layer(whiteouts=[f"/data/{g}" for g in range(0, groups, 2)] + group_1)
    rewrites = layer(*[f(f"/data/{g}/{g * per_group + 7}", 100) for g in range(3, groups, 2)], opaque=["/data/5"])
    many = [f"/data/{g}/{g * per_group + k}" for g in range(7, groups, 2) for k in range(per_group // 2)]
    return [base, deletes, rewrites, layer(whiteouts=many)]


def test_100k_files_with_deletions_rewrites_and_an_opaque_dir_add_up() -> None:
    report = compute_waste(data_image(100, 1000))
    assert report.total_bytes == 100_000 * 100 + 49 * 100
    # even groups, all of group 1, the lower copies of 48 rewrites, group 5, then 500 files of 47 groups
    # (whose rewritten file already has its item: its second copy adds 100 bytes to it)
    assert len(report.items) == 50_000 + 1000 + 48 + 1000 + 47 * 500 - 47
    assert report.wasted_bytes == (len(report.items) + 47) * 100


def test_twice_the_files_and_whiteouts_take_twice_the_steps_not_four_times() -> None:
    """compute_waste is linear: a whiteout or an opaque directory visits only what it removes.
    (A whiteout that looked at every path present would make the second figure 4x the first.)"""
    small = steps(lambda: compute_waste(data_image(16, 200)))
    large = steps(lambda: compute_waste(data_image(32, 200)))
    assert large < 2.3 * small, f"{small} steps for 3200 files, {large} for 6400: {large / small:.2f}x"


# -------------------------------------------------------------------------------------- attribution
DOCKERFILE = """\
FROM debian:12
RUN curl -o /big https://example.org/big
RUN rm /big
WORKDIR /app
COPY app /app/app
ENV MODE=prod
CMD ["/app/app"]
"""
HISTORY = (
    Layer("/bin/sh -c #(nop) ADD file:4b0f in / ", 74_800_000, False, from_base=True),
    Layer('/bin/sh -c #(nop)  CMD ["bash"]', 0, True, from_base=True),
    Layer("RUN /bin/sh -c curl -o /big https://example.org/big # buildkit", 50 * MB, False),
    Layer("RUN /bin/sh -c rm /big # buildkit", 0, True),
    Layer("WORKDIR /app", 0, True),
    Layer("COPY app /app/app # buildkit", 1 * MB, False),
    Layer("ENV MODE=prod", 0, True),
    Layer('CMD ["/app/app"]', 0, True),
)
LAYERS = [
    layer(d("/usr"), f("/usr/lib/x86_64-linux-gnu/libc.so.6", 74_800_000)),
    layer(f("/big", 50 * MB)),
    layer(whiteouts=["/big"]),
    layer(d("/app")),
    layer(d("/app"), f("/app/app", 1 * MB)),
]


def facts(
    *, waste: object = None, history: tuple[Layer, ...] = HISTORY, dockerfile: str | None = DOCKERFILE
) -> ImageFacts:
    return ImageFacts(
        name="hello",
        id="sha256:" + "1" * 64,
        size=125_800_000,
        config=ImageConfig(cmd=("/app/app",)),
        layers=history,
        dockerfile=parse_dockerfile("Dockerfile", text=dockerfile) if dockerfile is not None else None,
        waste=waste,
    )


def test_attribute_pairs_in_order_when_the_history_marks_empty_entries_exactly() -> None:
    made = {0, 2, 3, 4, 5}  # the image config's empty_layer flags: the rm and the WORKDIR made layers
    exact = [Layer(h.created_by, h.size, i not in made, h.from_base) for i, h in enumerate(HISTORY)]
    assert [o.entry for o in attribute(exact, LAYERS)] == [0, 2, 3, 4, 5]


def test_attribute_aligns_zero_byte_layers_the_engine_history_calls_empty() -> None:
    wheres = [where for _, where in attribute_layers(facts())]
    origins = attribute(HISTORY, LAYERS, wheres)
    assert origins == layer_origins(facts(), compute_waste(LAYERS))
    assert [(o.entry, o.label) for o in origins] == [
        (0, "ADD file:4b0f in / (base debian:12)"),
        (2, "RUN curl -o /big https://example.org/big (Dockerfile line 2)"),
        (3, "RUN rm /big (Dockerfile line 3)"),
        (4, "WORKDIR /app (Dockerfile line 4)"),
        (5, "COPY app /app/app (Dockerfile line 5)"),
    ]
    assert [o.from_base for o in origins] == [True, False, False, False, False]


def test_attribute_gives_a_deleting_layer_to_the_run_not_the_workdir() -> None:
    layers = [LAYERS[0], LAYERS[1], LAYERS[2], LAYERS[4]]  # the WORKDIR made no layer: its directory existed
    origins = attribute(HISTORY, layers)  # rm and WORKDIR both 0 bytes; a WORKDIR makes a directory, never deletes
    assert [o.instruction for o in origins] == [
        "ADD file:4b0f in /",
        "RUN curl -o /big https://example.org/big",
        "RUN rm /big",
        "COPY app /app/app",
    ]


def test_mark_empty_layers_takes_the_config_flags() -> None:
    config = {"history": [{"created_by": "x", **({"empty_layer": True} if i in (1, 6, 7) else {})} for i in range(8)]}
    marked = mark_empty_layers(HISTORY, config)
    assert [h.empty for h in marked] == [False, True, False, False, False, False, True, True]
    assert [h.created_by for h in marked] == [h.created_by for h in HISTORY]
    assert [o.entry for o in attribute(marked, LAYERS)] == [0, 2, 3, 4, 5]
    assert mark_empty_layers(HISTORY, {"history": [{}]}) == HISTORY  # does not line up: unchanged
    assert mark_empty_layers(HISTORY, {}) == HISTORY


def test_attribute_never_gives_a_layer_to_a_config_instruction() -> None:
    history = [Layer("ADD rootfs.tar /", 10, False), Layer("ENV A=b", 0, True), Layer("CMD x", 0, True)]
    origins = attribute(history, [layer(f("/a", 10)), layer(whiteouts=["/a"])])
    assert [o.entry for o in origins] == [0, None]
    assert origins[1].label == "layer 1"


def test_attribute_without_history_numbers_the_layers() -> None:
    origins = attribute([], LAYERS[:2])
    assert origins == [Origin(0, None), Origin(1, None)]
    assert [o.label for o in origins] == ["layer 0", "layer 1"]


def test_attribute_accepts_a_reports_layers() -> None:
    report = compute_waste(LAYERS)
    assert attribute(HISTORY, report.layers) == attribute(HISTORY, LAYERS)
    assert isinstance(report.layers[0], LayerWaste)


# ------------------------------------------------------------------------------------------- check
def lines(result: CheckResult) -> list[str]:
    return result.message().splitlines()


def test_max_waste_pass_with_bytes() -> None:
    result = check_max_waste(facts(waste=compute_waste(LAYERS)), 60 * MB)
    assert result.passed
    assert (result.check, result.image) == ("max_waste", "hello")
    assert result.message() == "hello: max_waste: 50MB wasted, efficiency 60.3%, within the limit of 60MB"
    assert result.details["wasted"] == 50 * MB
    assert result.details["total"] == 125_800_000
    assert result.details["limit"] == 60 * MB
    json.dumps(dict(result.details))


def test_max_waste_pass_with_a_percentage() -> None:
    result = check_max_waste(facts(waste=compute_waste(LAYERS)), "40%")
    assert result.headline == "hello: max_waste: 50MB wasted, efficiency 60.3%, within the limit of 40% (50.3MB)"


def test_max_waste_fail_text() -> None:
    result = check_max_waste(facts(waste=compute_waste(LAYERS)), "10MB")
    assert not result.passed
    assert lines(result) == [
        "hello: max_waste: 50MB wasted (39.7% of 126MB), over the limit of 10MB",
        "  top wasted paths:",
        "      50MB  /big  written by RUN curl -o /big https://example.org/big"
        " (Dockerfile line 2), deleted by RUN rm /big (Dockerfile line 3)",
        "  wasted, by the instruction that wrote it:",
        "      50MB  RUN curl -o /big https://example.org/big  (Dockerfile line 2; 50MB written)",
        "  efficiency: 60.3% (75.8MB of the 126MB written to layers reaches the final filesystem)",
        "  hint: delete temporary files in the same RUN that creates them (a later RUN rm hides them but their"
        " layer still ships them), or build in a separate stage and COPY --from only the result",
    ]
    assert result.details["limit_text"] == "10MB"
    assert result.details["paths"] == [
        {"path": "/big", "wasted": 50 * MB, "copies": 1, "ended": DELETED, "written_in": [1], "ended_in": 2}
    ]


def test_max_waste_fail_with_a_percentage() -> None:
    result = check_max_waste(facts(waste=compute_waste(LAYERS)), "10%")
    assert result.headline == "hello: max_waste: 50MB wasted (39.7% of 126MB), over the limit of 10% (12.6MB)"
    assert result.details["limit"] == 12_580_000


def test_max_waste_exactly_at_the_limit_passes() -> None:
    report = compute_waste(LAYERS)
    assert check_max_waste(facts(waste=report), 50 * MB).passed
    assert not check_max_waste(facts(waste=report), 50 * MB - 1).passed
    assert check_max_waste(facts(waste=compute_waste([])), "0%").passed


def test_max_waste_lists_the_top_paths_and_counts_the_rest() -> None:
    many = [layer(*[f(f"/tmp/f{n}", 1000 * (n + 1)) for n in range(8)]), layer(whiteouts=["/tmp"])]
    history = (Layer("/bin/sh -c make", 36_000, False), Layer("/bin/sh -c rm -rf /tmp", 0, True))
    result = check_max_waste(facts(waste=compute_waste(many), history=history, dockerfile=None), 0)
    assert lines(result)[1:9] == [
        "  top wasted paths:",
        "       8kB  /tmp/f7  written by RUN make (build), deleted by RUN rm -rf /tmp (build)",
        "       7kB  /tmp/f6  written by RUN make (build), deleted by RUN rm -rf /tmp (build)",
        "       6kB  /tmp/f5  written by RUN make (build), deleted by RUN rm -rf /tmp (build)",
        "       5kB  /tmp/f4  written by RUN make (build), deleted by RUN rm -rf /tmp (build)",
        "       4kB  /tmp/f3  written by RUN make (build), deleted by RUN rm -rf /tmp (build)",
        "       6kB  (3 more paths)",
        "  wasted, by the instruction that wrote it:",
    ]


def test_max_waste_names_overwritten_copies() -> None:
    layers = [layer(f("/data", 20 * MB)), layer(f("/data", 20 * MB)), layer(f("/data", 20 * MB))]
    history = (
        Layer("COPY data /data # buildkit", 20 * MB, False),
        Layer("RUN /bin/sh -c chown app /data # buildkit", 20 * MB, False),
        Layer("RUN /bin/sh -c chmod 600 /data # buildkit", 20 * MB, False),
    )
    df = "FROM scratch\nCOPY data /data\nRUN chown app /data\nRUN chmod 600 /data\n"
    result = check_max_waste(facts(waste=compute_waste(layers), history=history, dockerfile=df), "50%")
    assert lines(result)[:3] == [
        "hello: max_waste: 40MB wasted (66.7% of 60MB), over the limit of 50% (30MB)",
        "  top wasted paths:",
        "      40MB  /data  written by COPY data /data (Dockerfile line 2), RUN chown app"
        " /data (Dockerfile line 3), overwritten by RUN chmod 600 /data"
        " (Dockerfile line 4)  (2 of 3 copies wasted)",
    ]
    assert result.hint.startswith("write each file in one layer: set owner and mode as you copy (COPY --chown")


def test_max_waste_hint_for_apt_lists() -> None:
    layers = [
        layer(f("/var/lib/apt/lists/deb.debian.org_dists_bookworm_main", 9 * MB), f("/usr/bin/curl", MB)),
        layer(whiteouts=["/var/lib/apt/lists"]),
    ]
    history = (
        Layer("RUN /bin/sh -c apt-get update && apt-get install -y curl", 10 * MB, False),
        Layer("RUN /bin/sh -c rm -rf /var/lib/apt/lists/*", 0, True),
    )
    result = check_max_waste(facts(waste=compute_waste(layers), history=history, dockerfile=None), "1MB")
    assert result.hint.startswith("run apt-get update, apt-get install and rm -rf /var/lib/apt/lists/* in one RUN")
    assert sum(1 for line in lines(result) if line.lstrip().startswith("hint:")) == 1


def test_max_waste_hint_when_the_waste_is_in_the_base_image() -> None:
    layers = [layer(f("/usr/share/doc/big", 30 * MB)), layer(whiteouts=["/usr/share/doc"])]
    history = (
        Layer("ADD rootfs.tar / # buildkit", 30 * MB, False, from_base=True),
        Layer("RUN /bin/sh -c rm -rf /usr/share/doc # buildkit", 0, True),
    )
    result = check_max_waste(facts(waste=compute_waste(layers), history=history), "1MB")
    assert "30MB  ADD rootfs.tar /  (base debian:12; 30MB written)" in result.message()
    assert result.hint.startswith("most of the waste is in the base image's layers")


def test_max_waste_without_analysis_names_the_image() -> None:
    with pytest.raises(ValueError, match=r"^max_waste needs the layers of hello, which were not indexed$"):
        check_max_waste(facts(), "10%")


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("12 parsecs", "max_waste expects bytes, a size like '20MB' or a percentage like '10%', got '12 parsecs'"),
        ("150%", "max_waste expects a percentage from 0% to 100%, got '150%'"),
        ("-5%", "max_waste expects a percentage from 0% to 100%, got '-5%'"),
        (-1, "max_waste expects a size of 0 or more, got -1"),
        (True, "max_waste expects bytes, a size like '20MB' or a percentage like '10%', got True"),
        (1.5, "max_waste expects bytes, a size like '20MB' or a percentage like '10%', got 1.5"),
        ("", "max_waste expects bytes, a size like '20MB' or a percentage like '10%', got ''"),
    ],
)
def test_bad_limits_are_rejected_naming_them(limit: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_waste_limit(limit)
    assert str(info.value) == message
    with pytest.raises(ValueError, match="max_waste expects"):
        check_max_waste(facts(), limit)  # type: ignore[arg-type]  # the limit is checked before the analysis


@pytest.mark.parametrize(
    ("limit", "total", "allowance", "shown"),
    [
        (20 * MB, 100 * MB, 20 * MB, "20MB"),
        ("20MB", 100 * MB, 20 * MB, "20MB"),
        ("1.5 MiB", 100 * MB, 1_572_864, "1.57MB"),
        ("10%", 100 * MB, 10 * MB, "10% (10MB)"),
        (" 2.5 % ", 1000, 25, "2.5% (25B)"),
        ("0%", 1000, 0, "0% (0B)"),
        ("100%", 1000, 1000, "100% (1kB)"),
    ],
)
def test_limits(limit: int | str, total: int, allowance: int, shown: str) -> None:
    parsed = parse_waste_limit(limit)
    assert parsed.allowance(total) == allowance
    assert parsed.describe(total) == shown
    assert parse_waste_limit(parsed) is parsed


def test_report_to_json() -> None:
    report = compute_waste(BIG)
    data = json.loads(json.dumps(report.to_json()))
    assert data["wasted_bytes"] == 50 * MB
    assert data["efficiency"] == round(report.efficiency, 4)
    assert data["paths"][0]["path"] == "/big"
    assert [la["wasted"] for la in data["layers"]] == [0, 50 * MB, 0]
