"""Dockerfile lint: each rule's findings and wording, the article's Dockerfiles, check_lint's text (no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_slimimage.checks.lint import check_lint
from pytest_slimimage.dockerfile.lint import RULES, LintFinding, lint, lint_dockerfile
from pytest_slimimage.dockerfile.model import Dockerfile, DockerfileError, parse_dockerfile
from pytest_slimimage.facts import ImageConfig, ImageFacts

EXAMPLES = Path(__file__).resolve().parents[2] / "example_project"


def parse(text: str, **kwargs: object) -> Dockerfile:
    return parse_dockerfile("Dockerfile", text=text, **kwargs)  # type: ignore[arg-type]


def found(text: str, **kwargs: object) -> list[tuple[str, int, str]]:
    return [(f.rule, f.line, f.severity) for f in lint(parse(text, **kwargs))]


def only(text: str, **kwargs: object) -> LintFinding:
    findings = lint(parse(text, **kwargs))
    assert len(findings) == 1, findings
    return findings[0]


def facts(df: Dockerfile | None, name: str = "hello") -> ImageFacts:
    return ImageFacts(name=name, id="sha256:" + "1" * 64, size=0, config=ImageConfig(cmd=("/hello",)), dockerfile=df)


# ------------------------------------------------------------------------------ the article's files
def test_multistage_relative_copy_from_and_single_quoted_cmd() -> None:
    findings = lint_dockerfile(EXAMPLES / "Dockerfile.multistage")
    assert findings == [
        LintFinding(
            rule="SI001",
            line=10,
            message="relative source 'hello' in COPY --from: Docker reads it from the root of stage 0 (build), not"
            " from a WORKDIR, so it works only while the file is built in /",
            fix="COPY --from=build /hello .",
            severity="warning",
            instruction="COPY --from=build hello .",
        ),
        LintFinding(
            rule="SI003",
            line=11,
            message="CMD uses single quotes, which are not JSON, so Docker does not read it as exec form and runs it"
            " with /bin/sh -c; the shell then looks for a program named '[./hello]'",
            fix='CMD ["./hello"]',
            severity="error",
            instruction="CMD ['./hello']",
        ),
    ]


def test_scratch_relative_copy_from() -> None:
    findings = lint_dockerfile(EXAMPLES / "Dockerfile.scratch")
    assert [(f.rule, f.line, f.fix) for f in findings] == [("SI001", 9, "COPY --from=build /hello .")]


def test_static_is_clean() -> None:
    assert lint_dockerfile(EXAMPLES / "Dockerfile.static") == []


def test_naive_untagged_final_base() -> None:
    assert lint_dockerfile(EXAMPLES / "Dockerfile.naive") == [
        LintFinding(
            rule="SI004",
            line=2,
            message="the final image is built FROM gcc with no tag, which means gcc:latest: the same Dockerfile"
            " builds on a different base whenever latest moves",
            fix="FROM gcc:<version> (or pin a digest: gcc@sha256:<digest>)",
            severity="warning",
            instruction="FROM gcc",
        )
    ]


def test_busybox_untagged_final_base_but_not_the_build_stage() -> None:
    findings = lint_dockerfile(EXAMPLES / "Dockerfile.busybox")
    assert [(f.rule, f.line, f.instruction, f.fix) for f in findings] == [
        ("SI004", 7, "FROM busybox", "FROM busybox:<version> (or pin a digest: busybox@sha256:<digest>)")
    ]


def test_lint_dockerfile_passes_target_and_build_args(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("ARG BASE=alpine:3.20\nFROM ${BASE} AS one\nCMD run\nFROM scratch\nCOPY --from=one /x /x\n")
    assert lint_dockerfile(path) == []
    assert [f.rule for f in lint_dockerfile(path, target="one")] == ["SI002"]
    assert [f.rule for f in lint_dockerfile(path, target="one", build_args={"BASE": "alpine"})] == ["SI004", "SI002"]


def test_lint_dockerfile_raises_parse_errors(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError, match="Dockerfile not found"):
        lint_dockerfile(tmp_path / "missing")


# ------------------------------------------------------------------------------------------ SI001
def test_copy_from_relative_source_with_a_workdir_copies_the_wrong_path() -> None:
    finding = only("FROM gcc:13 AS build\nWORKDIR /src\nRUN make\nFROM scratch\nCOPY --from=build hello /hello\n")
    assert finding == LintFinding(
        rule="SI001",
        line=5,
        message="relative source 'hello' in COPY --from: Docker reads it from the root of stage 0 (build), not"
        " from its WORKDIR /src, so this copies /hello, not /src/hello",
        fix="COPY --from=build /src/hello /hello",
        severity="error",
        instruction="COPY --from=build hello /hello",
    )


def test_copy_from_root_workdir_is_like_none() -> None:
    finding = only("FROM gcc:13 AS build\nWORKDIR /\nFROM scratch\nCOPY --from=build hello /hello\n")
    assert (finding.severity, finding.fix) == ("warning", "COPY --from=build /hello /hello")
    assert finding.message.endswith("not from a WORKDIR, so it works only while the file is built in /")


def test_copy_from_stage_by_index() -> None:
    finding = only("FROM gcc:13\nWORKDIR /src\nFROM scratch\nCOPY --from=0 hello /hello\n")
    assert finding.fix == "COPY --from=0 /src/hello /hello"
    assert "from the root of stage 0, not from its WORKDIR /src" in finding.message


def test_copy_from_stage_name_is_case_insensitive() -> None:
    finding = only("FROM gcc:13 AS Build\nWORKDIR /src\nFROM scratch\nCOPY --from=BUILD hello /hello\n")
    assert finding.fix == "COPY --from=BUILD /src/hello /hello"


def test_copy_from_an_image() -> None:
    finding = only("FROM scratch\nCOPY --from=alpine:3.20 etc/os-release /etc/\n")
    assert finding == LintFinding(
        rule="SI001",
        line=2,
        message="relative source 'etc/os-release' in COPY --from: Docker reads it from the root of the image"
        " alpine:3.20, never from its WORKDIR; an absolute path says which file is meant",
        fix="COPY --from=alpine:3.20 /etc/os-release /etc/",
        severity="warning",
        instruction="COPY --from=alpine:3.20 etc/os-release /etc/",
    )


def test_copy_from_follows_the_source_stages_from_chain_and_relative_workdirs() -> None:
    text = (
        "FROM golang:1.22 AS base\nWORKDIR /app\n"
        "FROM base AS build\nWORKDIR cmd\nWORKDIR ./server\nRUN go build -o server .\n"
        "FROM scratch\nCOPY --from=build server /server\n"
    )
    finding = only(text)
    assert finding.fix == "COPY --from=build /app/cmd/server/server /server"
    assert "not from its WORKDIR /app/cmd/server, so this copies /server, not /app/cmd/server/server" in (
        finding.message
    )


def test_copy_from_globs_dot_slash_and_several_sources() -> None:
    text = "FROM gcc:13 AS build\nWORKDIR /src\nFROM scratch\nCOPY --from=build ./bin/* lib/*.so /etc/app.conf out/ /\n"
    finding = only(text)
    assert finding.fix == "COPY --from=build /src/bin/* /src/lib/*.so /etc/app.conf /src/out/ /"
    assert finding.message == (
        "relative sources './bin/*', 'lib/*.so', 'out/' in COPY --from: Docker reads them from the root of stage 0"
        " (build), not from its WORKDIR /src, so this copies /bin/*, /lib/*.so, /out/, not /src/bin/*,"
        " /src/lib/*.so, /src/out/"
    )


def test_copy_from_several_sources_without_workdir() -> None:
    finding = only("FROM gcc:13 AS build\nFROM scratch\nCOPY --from=build a b /dst/\n")
    assert finding.message.endswith("Docker reads them from the root of stage 0 (build), not from a WORKDIR, so it"
                                    " works only while the files are built in /")  # fmt: skip
    assert finding.fix == "COPY --from=build /a /b /dst/"


def test_copy_from_json_form() -> None:
    finding = only('FROM gcc:13 AS build\nWORKDIR /src\nFROM scratch\nCOPY --from=build ["hello", "/hello"]\n')
    assert finding.fix == 'COPY --from=build ["/src/hello", "/hello"]'


def test_copy_from_absolute_or_variable_sources_are_fine() -> None:
    text = (
        "FROM gcc:13 AS build\nWORKDIR /src\nENV OUT=/out\n"
        "FROM scratch\nCOPY --from=build /src/hello /hello\nCOPY --from=build $OUT/lib ${OUT}/bin /\n"
    )
    assert found(text) == []


def test_plain_copy_and_heredoc_copy_are_not_copy_from() -> None:
    assert found("FROM scratch\nCOPY hello .\nCOPY <<EOF /motd\nhi\nEOF\n") == []


def test_copy_from_multi_line_instruction_keeps_its_first_line_and_flags() -> None:
    text = (
        "FROM gcc:13 AS build\nWORKDIR /src\n\nFROM scratch\n"
        "COPY --from=build \\\n    --chmod=755 \\\n    hello \\\n    /hello\n"
    )
    finding = only(text)
    assert finding.line == 5
    assert finding.instruction == "COPY --from=build --chmod=755 hello /hello"
    assert finding.fix == "COPY --from=build --chmod=755 /src/hello /hello"


def test_copy_from_tab_separated_flags_and_a_dot_source() -> None:
    finding = only("FROM gcc:13 AS build\nWORKDIR /src\nFROM scratch\nCOPY\t--from=build\t--link\t.\t/app/\n")
    assert finding.fix == "COPY --from=build --link /src /app/"


def test_copy_from_workdir_from_arg_env_and_build_args() -> None:
    text = (
        "FROM gcc:13 AS build\nARG DIR=/src\nENV SUB=cmd\nWORKDIR ${DIR}/$SUB\n"
        "FROM scratch\nCOPY --from=build hello /hello\n"
    )
    assert only(text).fix == "COPY --from=build /src/cmd/hello /hello"
    assert only(text, build_args={"DIR": "/w"}).fix == "COPY --from=build /w/cmd/hello /hello"


def test_copy_from_env_is_inherited_through_the_chain_but_args_are_not() -> None:
    text = (
        "FROM gcc:13 AS base\nENV APP=/app\nARG DIR=/src\n"
        "FROM base AS build\nWORKDIR $APP\n"
        "FROM base AS other\nWORKDIR $DIR\n"
        "FROM scratch\nCOPY --from=build a /a\nCOPY --from=other b /b\n"
    )
    first, second = lint(parse(text))
    assert first.fix == "COPY --from=build /app/a /a"
    assert second.severity == "warning"
    assert second.message == (
        "relative source 'b' in COPY --from: Docker reads it from the root of stage 2 (other), not from its WORKDIR"
        " $DIR, so this copies /b"
    )
    assert (
        second.fix == "COPY --from=other /b /b (or the absolute path under WORKDIR $DIR, if the build writes it there)"
    )


def test_copy_from_variable_default_in_workdir() -> None:
    text = "FROM gcc:13 AS build\nWORKDIR ${DIR:-/opt/x}\nFROM scratch\nCOPY --from=build a /a\n"
    assert only(text).fix == "COPY --from=build /opt/x/a /a"


def test_copy_from_ref_from_a_build_arg() -> None:
    text = "ARG BUILDER=build\nFROM gcc:13 AS build\nWORKDIR /src\nFROM scratch\nCOPY --from=${BUILDER} a /a\n"
    assert only(text, build_args={"BUILDER": "build"}).fix == "COPY --from=${BUILDER} /src/a /a"
    unknown = only(text)
    assert unknown.fix == "COPY --from=${BUILDER} /a /a"
    assert "from the root of the stage or image ${BUILDER}, never from its WORKDIR" in unknown.message


def test_copy_from_in_stages_that_do_not_reach_the_final_image_is_not_linted() -> None:
    text = (
        "FROM gcc:13 AS build\nRUN make\n"
        "FROM debian:12 AS test\nCOPY --from=build hello .\n"
        "FROM scratch\nCOPY --from=build /hello /hello\n"
    )
    assert found(text) == []


def test_copy_from_in_stages_reached_through_copy_from_and_run_mount_is_linted() -> None:
    text = (
        "FROM gcc:13 AS tools\n"  # 1
        "FROM gcc:13 AS deps\nCOPY --from=tools lib /lib\n"  # 2-3: reached through build's RUN --mount
        "FROM gcc:13 AS build\nRUN --mount=type=bind,from=deps,source=/lib,target=/l make\n"  # 4-5
        "COPY --from=tools bin /bin\n"  # 6
        "FROM scratch\nCOPY --from=build /hello /hello\n"  # 7-8
    )
    df = parse(text)
    assert [st.name for st in df.contributing_stages()] == ["tools", "deps", "build", None]
    assert found(text) == [("SI001", 3, "warning"), ("SI001", 6, "warning")]


def test_target_selects_an_earlier_stage_and_later_stages_are_not_linted() -> None:
    text = (
        "FROM gcc:13 AS build\nWORKDIR /src\nCOPY --from=alpine:3.20 etc/passwd /p\n"
        "FROM scratch\nCOPY --from=build hello /hello\nCMD ./hello\n"
    )
    assert [(f.rule, f.line) for f in lint(parse(text))] == [("SI001", 3), ("SI001", 5), ("SI002", 6)]
    assert found(text, target="build") == [("SI001", 3, "warning")]


# ------------------------------------------------------------------------------------------ SI002
def test_shell_form_cmd() -> None:
    assert only("FROM debian:12\nCMD ./hello --serve\n") == LintFinding(
        rule="SI002",
        line=2,
        message="CMD is shell form: Docker runs it with /bin/sh -c, which needs a shell in the image and makes the"
        " shell PID 1 (signals do not reach the program)",
        fix='CMD ["./hello", "--serve"]',
        severity="warning",
        instruction="CMD ./hello --serve",
    )


def test_shell_form_on_scratch_is_an_error() -> None:
    finding = only("FROM scratch\nCOPY hello /hello\nENTRYPOINT /hello\n")
    assert finding.severity == "error"
    assert finding.message.endswith(
        "(signals do not reach the program); the image is built FROM scratch, which has no /bin/sh unless one is"
        " copied in"
    )
    assert finding.fix == 'ENTRYPOINT ["/hello"]'


def test_shell_form_with_shell_features() -> None:
    finding = only("FROM debian:12\nCMD ./serve --port $PORT | tee log\n")
    assert finding.fix == (
        "exec the program directly as a JSON array; if it needs the shell's features, say so:"
        ' CMD ["/bin/sh", "-c", "./serve --port $PORT | tee log"]'
    )


def test_brackets_that_are_not_json() -> None:
    finding = only('FROM debian:12\nCMD ["./hello", 1]\n')
    assert finding.rule == "SI002"
    assert finding.message == (
        "CMD is not a valid JSON array of strings, so Docker uses shell form and runs it with /bin/sh -c"
    )
    assert finding.fix == 'write CMD as a JSON array of double-quoted strings, e.g. CMD ["/app", "--flag"]'


def test_exec_form_and_empty_cmd_are_fine() -> None:
    assert found('FROM debian:12\nENTRYPOINT ["/app"]\nCMD []\n') == []


def test_shell_form_inherited_through_a_from_chain() -> None:
    assert found("FROM debian:12 AS base\nCMD ./serve\nFROM base\nRUN true\n") == [("SI002", 2, "warning")]


def test_only_the_command_that_reaches_the_image_is_linted() -> None:
    text = (
        "FROM gcc:13 AS build\nCMD make\n"  # build-only stage
        "FROM debian:12 AS base\nCMD ./old\n"  # overridden below
        'FROM base\nCMD ./a\nCMD ["./b"]\n'  # the last CMD wins
    )
    assert found(text) == []


def test_entrypoint_resets_an_inherited_cmd() -> None:
    text = 'FROM debian:12 AS base\nCMD ./serve\nFROM base\nENTRYPOINT ["/app"]\n'
    assert found(text) == []
    same_stage = 'FROM debian:12\nCMD ./serve\nENTRYPOINT ["/app"]\n'
    assert found(same_stage) == [("SI002", 2, "warning")]


# ------------------------------------------------------------------------------------------ SI003
def test_single_quotes_are_si003_not_si002() -> None:
    finding = only("FROM debian:12\nENTRYPOINT ['./hello', '--name', 'my app']\n")
    assert finding.rule == "SI003"
    assert finding.fix == 'ENTRYPOINT ["./hello", "--name", "my app"]'
    assert finding.message.endswith("the shell then looks for a program named '[./hello,'")


def test_single_quotes_on_scratch() -> None:
    assert found("FROM scratch\nCMD ['./hello']\n") == [("SI003", 2, "error")]


# ------------------------------------------------------------------------------------------ SI004
@pytest.mark.parametrize(
    "base",
    [
        "scratch",
        "debian:12",
        "busybox@sha256:" + "a" * 64,
        "busybox:latest@sha256:" + "a" * 64,
        "localhost:5000/team/app:1.2",
        "docker.io/library/alpine:3.20",
    ],
)
def test_pinned_bases_are_fine(base: str) -> None:
    assert found(f'FROM {base}\nCMD ["/app"]\n') == []


def test_latest_tag() -> None:
    finding = only("FROM --platform=linux/amd64 busybox:latest AS app\n")
    assert finding.message == (
        "the final image is built FROM busybox:latest: latest moves, so the same Dockerfile builds on a different"
        " base over time"
    )
    assert finding.fix == (
        "FROM --platform=linux/amd64 busybox:<version> AS app (or pin a digest: busybox@sha256:<digest>)"
    )


def test_untagged_image_on_a_registry_with_a_port() -> None:
    finding = only("FROM localhost:5000/team/app\n")
    assert finding.fix == (
        "FROM localhost:5000/team/app:<version> (or pin a digest: localhost:5000/team/app@sha256:<digest>)"
    )


def test_untagged_root_of_the_final_stages_from_chain() -> None:
    text = "FROM alpine AS base\nRUN true\nFROM base AS app\nFROM gcc AS build\nFROM app\n"
    finding = only(text)
    assert (finding.line, finding.instruction) == (1, "FROM alpine AS base")
    assert finding.message.startswith(
        "the final image is built FROM alpine (FROM chain: stage 3 <- stage 1 (app) <- stage 0 (base) <- alpine)"
        " with no tag"
    )
    assert finding.fix == "FROM alpine:<version> AS base (or pin a digest: alpine@sha256:<digest>)"


def test_untagged_base_through_an_arg() -> None:
    finding = only("ARG BASE=alpine\nFROM --platform=$BUILDPLATFORM ${BASE}\n")
    assert (finding.line, finding.instruction) == (2, "FROM --platform=$BUILDPLATFORM ${BASE}")
    assert finding.message.startswith("the final image is built FROM alpine with no tag")
    assert finding.fix == "set ${BASE} to a pinned image: alpine:<version> or alpine@sha256:<digest>"
    assert found("ARG BASE=alpine\nFROM ${BASE}\n", build_args={"BASE": "alpine:3.20"}) == []


# --------------------------------------------------------------------------------------- ordering
def test_findings_are_sorted_by_line() -> None:
    text = "FROM gcc AS build\nFROM debian\nCMD ./x\nCOPY --from=build a /a\n"
    assert found(text) == [("SI004", 2, "warning"), ("SI002", 3, "warning"), ("SI001", 4, "warning")]


def test_rules_are_documented() -> None:
    assert list(RULES) == ["SI001", "SI002", "SI003", "SI004"]
    assert all(description and "\n" not in description for description in RULES.values())


# ------------------------------------------------------------------------------------- check_lint
def test_check_lint_pass() -> None:
    result = check_lint(facts(parse_dockerfile(EXAMPLES / "Dockerfile.static")))
    assert result.passed
    assert result.check == "lint"
    assert result.headline == "hello: lint: no findings (4 rules checked: SI001, SI002, SI003, SI004)"


def test_check_lint_fail_text() -> None:
    df = parse_dockerfile(EXAMPLES / "Dockerfile.multistage", label="example_project/Dockerfile.multistage")
    result = check_lint(facts(df, name="multistage"))
    assert not result.passed
    assert result.message().splitlines() == [
        "multistage: lint: 2 finding(s) (SI001, SI003)",
        "  example_project/Dockerfile.multistage:10: SI001 relative source 'hello' in COPY --from: Docker reads it"
        " from the root of stage 0 (build), not from a WORKDIR, so it works only while the file is built in /",
        "    COPY --from=build hello .",
        "    fix: COPY --from=build /hello .",
        "  example_project/Dockerfile.multistage:11: SI003 CMD uses single quotes, which are not JSON, so Docker does"
        " not read it as exec form and runs it with /bin/sh -c; the shell then looks for a program named '[./hello]'",
        "    CMD ['./hello']",
        '    fix: CMD ["./hello"]',
        "  hint: apply the fix under each finding; a rule broken on purpose can be ignored by its id (SI001, SI003)",
    ]
    assert json.loads(json.dumps(result.details))["findings"][1]["rule"] == "SI003"


def test_check_lint_ignore() -> None:
    df = parse_dockerfile(EXAMPLES / "Dockerfile.multistage")
    result = check_lint(facts(df), ignore=["SI001"])
    assert result.headline == "hello: lint: 1 finding(s) (SI003)"
    assert result.details["ignored_findings"] == 1
    passed = check_lint(facts(df), ignore=("si003", "SI001"))
    assert passed.passed
    assert passed.headline == "hello: lint: no findings (2 rules checked: SI002, SI004; ignored: SI001, SI003)"


def test_check_lint_ignore_takes_a_single_id() -> None:
    assert check_lint(facts(parse_dockerfile(EXAMPLES / "Dockerfile.naive")), ignore="SI004").passed


def test_check_lint_unknown_ignore_id() -> None:
    with pytest.raises(ValueError) as info:
        check_lint(facts(parse("FROM scratch\n")), ignore=["SI001", "DL3006"])
    assert str(info.value) == "lint: unknown rule id(s) in ignore: DL3006 (known: SI001, SI002, SI003, SI004)"


def test_check_lint_needs_a_dockerfile() -> None:
    with pytest.raises(
        ValueError,
        match=r"^lint needs the image's Dockerfile; hello was not built from one"
        r" \(for an existing image, pass the dockerfile= it was built from\)$",
    ):
        check_lint(facts(None))


@pytest.mark.parametrize("source", ["c:/app.exe", "C:\\app\\app.exe", "/app", "$OUT/app"])
def test_absolute_copy_from_sources_are_not_si001(source: str) -> None:
    """A Windows image's ``c:/app.exe`` is absolute too."""
    text = f"FROM mcr.microsoft.com/windows/nanoserver:ltsc2022 AS build\nFROM build\nCOPY --from=build {source} /app\n"
    df = parse_dockerfile("Dockerfile", text=text)
    assert [f.rule for f in lint(df) if f.rule == "SI001"] == []
