"""Dockerfile edge cases: stages, the final base, ARGs in FROM, line numbers, exec form, references, variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_slimimage.dockerfile.model import (
    AUTOMATIC_ARGS,
    Dockerfile,
    DockerfileError,
    ImageRef,
    exec_form,
    parse_dockerfile,
    parse_ref,
    parser_directives,
)
from pytest_slimimage.dockerfile.variables import arg_declarations, env_declarations, expand
from pytest_slimimage.errors import SlimImageError

MULTI_STAGE = """\
# syntax=docker/dockerfile:1
ARG GO_VERSION=1.22
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build
WORKDIR /src
RUN go build \\
    -ldflags=-s \\
    -o /hello .

FROM build As test
CMD ["go", "test"]

FROM scratch
COPY --from=build /hello /hello
CMD ["/hello"]
"""


def parse(text: str, **kwargs: object) -> Dockerfile:
    return parse_dockerfile("Dockerfile", text=text, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ stages
def test_stages_names_and_bases() -> None:
    df = parse(MULTI_STAGE)
    assert [(st.index, st.name, st.base) for st in df.stages] == [
        (0, "build", "golang:1.22"),
        (1, "test", "build"),
        (2, None, "scratch"),
    ]
    assert [st.label for st in df.stages] == ["stage 0 (build)", "stage 1 (test)", "stage 2"]


def test_final_stage_is_the_last_one() -> None:
    df = parse(MULTI_STAGE)
    assert df.final_stage.index == 2
    assert df.final_base == "scratch"


def test_target_selects_the_final_stage_and_follows_from_chain() -> None:
    df = parse(MULTI_STAGE, target="test")
    assert df.final_stage.name == "test"
    assert df.final_stage.base == "build"  # as written
    assert df.final_base == "golang:1.22"  # followed to the external image
    assert [st.index for st in df.chain()] == [1, 0]


def test_target_is_case_insensitive_and_may_be_an_index() -> None:
    assert parse(MULTI_STAGE, target="BUILD").final_stage.index == 0
    assert parse(MULTI_STAGE, target="1").final_stage.name == "test"


def test_from_chain_of_several_stages() -> None:
    df = parse("FROM alpine:3.20 AS one\nFROM one AS two\nFROM two AS three\nFROM three\n")
    assert [st.index for st in df.chain()] == [3, 2, 1, 0]
    assert df.final_base == "alpine:3.20"
    assert df.base_of(df.stage("two")) == "alpine:3.20"
    assert df.parent(df.stage("one")) is None


def test_stage_names_are_case_insensitive_in_from() -> None:
    df = parse("from debian:12 as Builder\nfrom BUILDER\ncmd x\n")
    assert df.stages[0].name == "builder"
    assert df.final_base == "debian:12"
    assert df.final_stage.last("CMD") is not None  # lower-case instructions are read


def test_from_a_later_stage_name_is_an_external_image() -> None:
    # Only earlier stages can be FROM'd; a later stage's name is an image reference.
    df = parse("FROM later AS first\nFROM alpine AS later\nFROM first\n")
    assert df.final_base == "later"


def test_stage_lookup_error_lists_stages() -> None:
    df = parse(MULTI_STAGE)
    with pytest.raises(DockerfileError, match=r"Dockerfile: no build stage named 'nope' \(stages: build, test, 2\)"):
        df.stage("nope")


def test_unknown_target_raises_at_parse_time() -> None:
    with pytest.raises(DockerfileError) as info:
        parse(MULTI_STAGE, target="release")
    assert str(info.value) == "Dockerfile: no build stage named 'release' (stages: build, test, 2)"


def test_platform_flag_is_ignored() -> None:
    df = parse("FROM --platform=linux/arm64 alpine:3.20 AS base\nFROM --platform=$TARGETPLATFORM base\n")
    assert df.stages[0].base == "alpine:3.20"
    assert df.stages[0].name == "base"
    assert df.final_base == "alpine:3.20"


# --------------------------------------------------------------------------------------- ARG / FROM
def test_global_arg_default_is_substituted() -> None:
    df = parse("ARG BASE=debian:12-slim\nFROM $BASE\n")
    assert df.final_base == "debian:12-slim"


def test_build_arg_overrides_default() -> None:
    df = parse("ARG BASE=debian:12-slim\nFROM ${BASE}\n", build_args={"BASE": "alpine:3.20"})
    assert df.final_base == "alpine:3.20"
    assert df.build_args == {"BASE": "alpine:3.20"}


def test_build_arg_fills_an_arg_without_default() -> None:
    df = parse("ARG TAG\nFROM debian:$TAG\n", build_args={"TAG": "11"})
    assert df.final_base == "debian:11"


def test_arg_substitution_in_tag_part() -> None:
    df = parse('ARG V="3.20"\nFROM alpine:${V} AS a\nFROM a\n')
    assert df.final_base == "alpine:3.20"  # quotes of the default removed


def test_several_args_on_one_line_and_defaults_referring_to_earlier_args() -> None:
    df = parse("ARG REG=registry.local:5000 NAME=app\nARG IMAGE=$REG/$NAME\nFROM ${IMAGE}:1\n")
    assert df.final_base == "registry.local:5000/app:1"


@pytest.mark.parametrize(
    ("text", "build_args", "expected"),
    [
        ("FROM ${BASE:-debian:12}\n", {}, "debian:12"),
        ("ARG BASE\nFROM ${BASE:-debian:12}\n", {}, "debian:12"),
        ("ARG BASE=alpine\nFROM ${BASE:-debian:12}\n", {}, "alpine"),
        ("ARG BASE\nFROM ${BASE:-debian:12}\n", {"BASE": "busybox"}, "busybox"),
        ("ARG SUFFIX=1\nFROM debian${SUFFIX:+-slim}\n", {}, "debian-slim"),
        ("ARG SUFFIX\nFROM debian${SUFFIX:+-slim}\n", {}, "debian"),
    ],
)
def test_arg_default_modifiers(text: str, build_args: dict[str, str], expected: str) -> None:
    assert parse(text, build_args=build_args).final_base == expected


def test_arg_inside_a_stage_does_not_reach_a_later_from() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile:3: FROM '\$X' uses an ARG with no default"):
        parse("FROM alpine\nARG X=debian\nFROM $X\n")


@pytest.mark.parametrize(
    ("text", "line", "name"),
    [
        ("ARG BASE\nFROM $BASE\n", 2, "BASE"),
        ("FROM $NOPE\n", 1, "NOPE"),
        ("ARG TAG\nFROM debian:${TAG}\n", 2, "TAG"),
        ("FROM alpine AS a\n\nFROM ${IMG} AS b\n", 3, "IMG"),
    ],
)
def test_from_with_an_arg_that_has_no_value(text: str, line: int, name: str) -> None:
    with pytest.raises(DockerfileError) as info:
        parse(text)
    message = str(info.value)
    assert message.startswith(f"Dockerfile:{line}: FROM ")
    assert "uses an ARG with no default and no build arg" in message
    assert message.endswith(name)


def test_undeclared_build_arg_does_not_reach_from() -> None:
    with pytest.raises(
        DockerfileError, match="a build arg reaches FROM only when an ARG before the first FROM declares"
    ):
        parse("FROM debian:$TAG\n", build_args={"TAG": "12"})


def test_from_that_substitutes_to_nothing() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: FROM '\$X' names no image once ARGs are substituted$"):
        parse("ARG X=\nFROM $X\n")


def test_buildkit_platform_args_are_left_as_written() -> None:
    assert parse("FROM tonistiigi/xx:$TARGETARCH\n").final_base == "tonistiigi/xx:$TARGETARCH"
    assert parse("FROM img-$TARGETARCH\n", build_args={"TARGETARCH": "arm64"}).final_base == "img-arm64"


# ------------------------------------------------------------------------------ lines and comments
def test_line_numbers_are_one_based_and_span_continuations() -> None:
    df = parse(MULTI_STAGE)
    build = df.stages[0]
    assert build.from_instruction.line == 3
    workdir, run = build.instructions
    assert (workdir.keyword, workdir.line, workdir.end_line, workdir.location) == ("WORKDIR", 4, 4, "line 4")
    assert (run.keyword, run.line, run.end_line, run.location) == ("RUN", 5, 7, "lines 5-7")
    assert run.text == "RUN go build -ldflags=-s -o /hello ."
    final = df.final_stage
    assert [(ins.keyword, ins.line) for ins in final.instructions] == [("COPY", 13), ("CMD", 14)]
    assert final.instructions[0].text == "COPY --from=build /hello /hello"
    assert build.from_instruction.text == "FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS Build"


def test_comments_are_not_instructions() -> None:
    text = "# leading comment\nFROM alpine\n# RUN not-an-instruction\nRUN echo one \\\n# inside\n    two\nCMD x\n"
    df = parse(text)
    keywords = [(ins.keyword, ins.line, ins.end_line) for ins in df.final_stage.instructions]
    assert keywords == [("RUN", 4, 6), ("CMD", 7, 7)]


def test_crlf_line_endings() -> None:
    df = parse("FROM alpine\r\nRUN a \\\r\n  b\r\nCMD x\r\n")
    assert [(ins.keyword, ins.line) for ins in df.final_stage.instructions] == [("RUN", 2), ("CMD", 4)]


def test_heredoc_bodies_are_part_of_their_instruction() -> None:
    text = (
        "# syntax=docker/dockerfile:1\n"
        "FROM debian:12\n"
        "RUN <<EOF\n"
        "apt-get update\n"
        "# not a comment of the Dockerfile\n"
        "set -e\n"
        "EOF\n"
        "COPY <<-EOT /etc/motd\n"
        "\thello\n"
        "\tEOT\n"
        'CMD ["/bin/true"]\n'
    )
    df = parse(text)
    instructions = df.final_stage.instructions
    assert [(ins.keyword, ins.line, ins.end_line) for ins in instructions] == [
        ("RUN", 3, 7),
        ("COPY", 8, 10),
        ("CMD", 11, 11),
    ]


def test_instructions_keep_their_order_and_last_finds_the_last() -> None:
    df = parse('FROM alpine\nCMD ["a"]\nUSER 1000\nCMD ["b"]\n')
    final = df.final_stage
    last = final.last("CMD")
    assert last is not None
    assert last.value == '["b"]'
    assert [ins.value for ins in final.all("CMD")] == ['["a"]', '["b"]']
    assert final.last("ENTRYPOINT") is None


# ------------------------------------------------------------------------------------ inheritance
def test_effective_cmd_inherited_through_stage_chain() -> None:
    text = 'FROM alpine AS base\nCMD ["/base"]\nUSER app\nFROM base AS mid\nRUN x\nFROM mid\nUSER root\n'
    df = parse(text)
    cmd = df.effective("CMD")
    assert cmd is not None
    assert (cmd.value, cmd.line) == ('["/base"]', 2)
    user = df.effective("USER")
    assert user is not None
    assert user.value == "root"  # nearest stage wins
    assert df.effective("ENTRYPOINT") is None


def test_effective_is_none_when_only_the_external_base_sets_it() -> None:
    df = parse('FROM alpine AS other\nCMD ["/other"]\nFROM debian:12\nRUN true\n')
    assert df.effective("CMD") is None  # stage 0 is not in the final stage's chain


def test_effective_for_a_given_stage() -> None:
    df = parse(MULTI_STAGE)
    cmd = df.effective("CMD", df.stage("test"))
    assert cmd is not None
    assert cmd.value == '["go", "test"]'


# ----------------------------------------------------------------------------------------- errors
def test_errors_are_slimimage_errors() -> None:
    assert issubclass(DockerfileError, SlimImageError)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(missing)
    assert str(info.value) == f"Dockerfile not found: {missing}"


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(tmp_path)
    assert str(info.value) == f"Dockerfile path is a directory, not a file: {tmp_path}"


def test_label_names_the_file_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("FROM alpine\nFORM x\n")
    with pytest.raises(DockerfileError, match=r"^app/Dockerfile:2: unknown instruction 'FORM': FORM x$"):
        parse_dockerfile(path, label="app/Dockerfile")


def test_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile.prod"
    path.write_text(MULTI_STAGE)
    df = parse_dockerfile(path)
    assert df.path == str(path)
    assert df.final_base == "scratch"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_bytes(b"FROM alpine\nLABEL x=\xff\xfe\n")
    with pytest.raises(DockerfileError, match=rf"^cannot read Dockerfile {path}: "):
        parse_dockerfile(path)


@pytest.mark.parametrize("text", ["", "\n\n", "# just a comment\n", "ARG X=1\n"])
def test_empty_or_no_from(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(DockerfileError) as info:
        parse_dockerfile(path)
    assert str(info.value) == f"{path}: no FROM instruction (is this a Dockerfile?)"


def test_instruction_before_from() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("ARG X=1\n\nRUN echo hi\nFROM alpine\n")
    assert str(info.value) == "Dockerfile:3: RUN before the first FROM (only ARG may come before FROM)"


def test_unknown_instruction() -> None:
    with pytest.raises(DockerfileError) as info:
        parse("FROM alpine\nRUN true\nFORM debian\n")
    assert str(info.value) == "Dockerfile:3: unknown instruction 'FORM': FORM debian"


def test_from_without_image() -> None:
    with pytest.raises(DockerfileError, match=r"^Dockerfile:2: FROM names no image: FROM$"):
        parse("ARG X=1\nFROM\n")


# -------------------------------------------------------------------------------------- exec form
@pytest.mark.parametrize(
    ("value", "argv"),
    [
        ('["./hello"]', ("./hello",)),
        ('["/app", "--port", "8080"]', ("/app", "--port", "8080")),
        ('  [ "/bin/echo" ,"a b" ]  ', ("/bin/echo", "a b")),
        ('["/bin/sh", "-c", "echo hi"]', ("/bin/sh", "-c", "echo hi")),  # JSON: exec form, even though a shell
    ],
)
def test_exec_form_json_array(value: str, argv: tuple[str, ...]) -> None:
    form = exec_form(value)
    assert form.is_exec
    assert form.argv == argv
    assert form.reason == ""


def test_single_quotes_are_shell_form() -> None:
    form = exec_form("['./hello']")
    assert not form.is_exec
    assert "single quotes" in form.reason
    assert "JSON" in form.reason
    assert "'[./hello]'" in form.reason  # the program the shell then looks for
    assert form.argv == ("./hello",)
    assert form.rewrite == '["./hello"]'


def test_single_quotes_several_items() -> None:
    form = exec_form("['/app', '--port', '80']")
    assert not form.is_exec
    assert form.rewrite == '["/app", "--port", "80"]'


def test_plain_shell_form_and_its_rewrite() -> None:
    form = exec_form("./hello --name world")
    assert not form.is_exec
    assert form.reason.startswith("shell form: Docker runs it as /bin/sh -c")
    assert form.rewrite == '["./hello", "--name", "world"]'


def test_shell_form_with_shell_syntax_keeps_the_shell_in_the_rewrite() -> None:
    form = exec_form("echo $HOME && ./hello")
    assert not form.is_exec
    assert form.argv == ("/bin/sh", "-c", "echo $HOME && ./hello")
    assert form.rewrite == '["/bin/sh", "-c", "echo $HOME && ./hello"]'


@pytest.mark.parametrize("value", ['["a", 1]', "[]", '["a",', "[./hello]", '{"a": "b"}'])
def test_invalid_arrays_are_not_exec_form(value: str) -> None:
    form = exec_form(value)
    assert not form.is_exec
    assert form.reason


@pytest.mark.parametrize(
    ("value", "kind"),
    [('["/app"]', "exec"), ("['/app']", "single-quoted"), ('["a", 1]', "invalid-array"), ("/app --x", "shell")],
)
def test_exec_form_kind(value: str, kind: str) -> None:
    form = exec_form(value)
    assert (form.kind, form.is_exec) == (kind, kind == "exec")


def test_array_with_a_number_has_no_rewrite() -> None:
    form = exec_form('["a", 1]')
    assert form.argv is None
    assert form.rewrite is None
    assert form.reason == "the brackets do not hold a valid JSON array of strings, so Docker uses shell form"


# ------------------------------------------------------------------------------------- references
@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("debian", ImageRef("debian")),
        ("debian:12", ImageRef("debian", "12")),
        ("docker.io/library/debian:12", ImageRef("debian", "12")),
        ("index.docker.io/library/debian:12", ImageRef("debian", "12")),
        ("library/debian:12", ImageRef("debian", "12")),
        ("docker.io/bitnami/redis", ImageRef("bitnami/redis")),
        ("localhost:5000/x:1", ImageRef("localhost:5000/x", "1")),
        ("localhost:5000/x", ImageRef("localhost:5000/x")),
        ("ghcr.io/Org/App:V1", ImageRef("ghcr.io/org/app", "v1")),
        ("debian@sha256:abc", ImageRef("debian", None, "sha256:abc")),
        ("debian:12@sha256:abc", ImageRef("debian", "12", "sha256:abc")),
        ("scratch", ImageRef("scratch")),
    ],
)
def test_parse_ref(text: str, ref: ImageRef) -> None:
    assert parse_ref(text) == ref


def test_ref_str() -> None:
    assert str(parse_ref("docker.io/library/debian:12@sha256:abc")) == "debian:12@sha256:abc"
    assert str(parse_ref("localhost:5000/x")) == "localhost:5000/x"


@pytest.mark.parametrize(
    ("actual", "expected", "matches"),
    [
        ("docker.io/library/debian:12", "debian", True),
        ("debian:12", "docker.io/library/debian:12", True),
        ("library/debian:12", "debian:12", True),
        ("debian:12", "debian:11", False),
        ("debian:12-slim", "debian:12", False),
        ("debian", "debian:latest", True),
        ("debian", "debian:12", False),
        ("debian:12", "ubuntu", False),
        ("gcr.io/distroless/static-debian12:nonroot", "gcr.io/distroless/static-debian12", True),
        ("gcr.io/distroless/static-debian12", "distroless/static-debian12", False),
        ("localhost:5000/x:1", "localhost:5000/x", True),
        ("localhost:5000/x:1", "localhost:5000/x:1", True),
        ("localhost:5000/x:1", "localhost:5000/x:2", False),
        ("localhost:5000/x:1", "x:1", False),
        ("debian@sha256:aaa", "debian", True),
        ("debian@sha256:aaa", "debian@sha256:aaa", True),
        ("debian@sha256:aaa", "debian@sha256:bbb", False),
        ("debian:12@sha256:aaa", "debian:12", True),
        ("debian:12", "debian@sha256:aaa", False),
        ("scratch", "scratch", True),
        ("scratch", "busybox", False),
    ],
)
def test_ref_matches(actual: str, expected: str, matches: bool) -> None:
    assert parse_ref(actual).matches(parse_ref(expected)) is matches


@pytest.mark.parametrize(
    "run",
    ['RUN cat <<<"hello" > /greeting', "RUN echo $((1<<2))", 'RUN echo "<<EOF"', "RUN cat<<EOF"],
)
def test_things_that_look_like_heredocs_are_not(run: str) -> None:
    df = parse(f'FROM alpine\n{run}\nCMD ["/bin/true"]\n')
    assert [(ins.keyword, ins.line, ins.end_line) for ins in df.final_stage.instructions] == [
        ("RUN", 2, 2),
        ("CMD", 3, 3),
    ]


def test_heredoc_with_fd_and_quoted_terminator() -> None:
    df = parse("FROM alpine\nRUN python3 3<<'PY' <<-\"SH\"\nprint(1)\nPY\n\techo\n\tSH\nUSER app\n")
    assert [(ins.keyword, ins.line, ins.end_line) for ins in df.final_stage.instructions] == [
        ("RUN", 2, 6),
        ("USER", 7, 7),
    ]
    assert [ins.heredocs for ins in df.final_stage.instructions] == [("PY", "SH"), ()]


def test_heredocs_of_run_copy_and_add_only() -> None:
    df = parse(
        "FROM alpine\n# RUN <<NOT in a comment\nRUN cat <<<'x' && echo $((1<<2))\n"
        "COPY <<EOF /etc/conf\nk=v\nEOF\nADD --chmod=644 <<A <<B /d/\na\nA\nb\nB\nCMD echo <<C\n"
    )
    assert [(ins.keyword, ins.line, ins.heredocs) for ins in df.instructions] == [
        ("FROM", 1, ()),
        ("RUN", 3, ()),
        ("COPY", 4, ("EOF",)),
        ("ADD", 7, ("A", "B")),
        ("CMD", 12, ()),  # only RUN, COPY and ADD open heredocs
    ]
    assert df.first(lambda ins: bool(ins.heredocs)) == df.final_stage.instructions[1]
    assert parse("FROM alpine\nRUN echo hi\n").first(lambda ins: bool(ins.heredocs)) is None


# ------------------------------------------------------------------------- variables (ARG, ENV, $X)
@pytest.mark.parametrize(
    ("word", "values", "text"),
    [
        ("$A/${A}x", {"A": "v"}, "v/vx"),
        ("$Ax", {"A": "v", "Ax": "w"}, "w"),  # a bare name runs as far as it can
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A-d}", {"A": ""}, ""),  # without the colon, only unset takes the default
        ("${A-d}", {"A": None}, "d"),
        ("${A:+alt}", {"A": "v"}, "alt"),
        ("${A:+alt}", {"A": ""}, ""),
        ("${A+alt}", {"A": ""}, "alt"),
        ("${A:-$B/c}", {"B": "b"}, "b/c"),  # the default is expanded too
        ("${A:-${B:-x}}y", {}, "xy"),
        ('${A:-"a }"}', {}, "a }"),  # quotes inside the default
        (r"\$A", {"A": "v"}, "$A"),  # escaped: a literal dollar
        ("a\\ b\\", {}, "a b"),  # backslash escapes the next character; a trailing one is dropped
        ("'$A \\x'", {"A": "v"}, "$A \\x"),  # nothing expands inside single quotes
        ('"$A b"', {"A": "v"}, "v b"),
        (r'"\$A \" \\ \x"', {"A": "v"}, r'$A " \ \x'),  # in double quotes \ escapes only $ " \
        ("'unterminated", {}, "unterminated"),
        ("$", {}, "$"),
        ("a$$", {}, "a$$"),
        ("$1 ${1} ${}", {"1": "x"}, "$1 ${1} ${}"),  # not names: literal
        ("${A", {"A": "v"}, "${A"),  # unterminated: literal
        ("${A:-d", {}, "${A:-d"),
        ("${A$B}", {"B": "b"}, "${Ab}"),  # not a substitution: only $B is one
        ("${A%.*} ${A/x/y} ${A:?no}", {"A": "v.1"}, "${A%.*} ${A/x/y} ${A:?no}"),  # other modifiers: as written
    ],
)
def test_expand_follows_dockers_rules(word: str, values: dict[str, str | None], text: str) -> None:
    assert expand(word, values).text == text


def test_expand_reports_names_without_a_value() -> None:
    bare = expand("$A-$B-${A}", {"B": None})
    assert (bare.text, bare.unset, bare.unsettled, bare.known) == ("--", ("A", "B", "A"), (), None)
    assert expand("${A:-$B}", {"A": "v"}).unset == ()  # the default is not used: neither is $B
    assert expand("${A:-$B}", {}).unset == ("B",)
    assert expand("${A:+$B}", {}).unset == ()
    alternative = expand("x${A:+-alt}", {})
    assert (alternative.text, alternative.unset, alternative.unsettled, alternative.known) == ("x", (), ("A",), None)
    assert expand("${A:-d}", {}).known == "d"
    assert expand("${A%.*}", {"A": "v.1"}).known is None


def test_expand_keeps_names_as_written_only_without_a_value() -> None:
    platform = {"TARGETARCH", "TARGETOS"}
    kept = expand("$TARGETARCH/${TARGETOS:-$X}", {}, as_written=platform)
    assert (kept.text, kept.unset, kept.unsettled) == ("$TARGETARCH/${TARGETOS:-$X}", (), ("TARGETARCH", "TARGETOS"))
    assert expand("$TARGETARCH", {"TARGETARCH": "arm64"}, as_written=platform).text == "arm64"
    assert expand("$TARGETARCH", {"TARGETARCH": None}, as_written=platform).unset == ("TARGETARCH",)


def test_arg_and_env_declarations_keep_values_as_written() -> None:
    assert arg_declarations('A=1 B="x y" C D=') == [("A", "1"), ("B", '"x y"'), ("C", None), ("D", "")]
    assert env_declarations('A=1 B="$A y"') == [("A", "1"), ("B", '"$A y"')]
    assert env_declarations("A x  y") == [("A", "x y")]  # the legacy form: the rest of the line


def test_from_uses_the_expander() -> None:
    assert parse("ARG V=3.20\nFROM alpine:${X:-$V}\n").final_base == "alpine:3.20"
    assert parse("ARG V='$X'\nFROM alpine:${V}\n").final_base == "alpine:$X"  # single quotes: not expanded
    assert parse('FROM "alpine:3.20"\n').final_base == "alpine:3.20"
    with pytest.raises(DockerfileError, match=r"^Dockerfile:1: FROM 'alpine:\${X:-\$Y}' uses an ARG .*: Y$"):
        parse("FROM alpine:${X:-$Y}\n")


# -------------------------------------------------------------------- flags, --from, WORKDIR facts
def test_instruction_flags_arguments_and_from_refs() -> None:
    df = parse(
        "FROM --platform=linux/amd64 alpine AS a\n"
        "RUN --mount=type=cache,target=/c --mount=type=bind,from=a,source=/x,target=/y make\n"
        "COPY --from='a' --chmod=755 x /x\n"
    )
    run, copy = df.final_stage.instructions
    assert df.final_stage.from_instruction.flags == ("--platform=linux/amd64",)
    assert df.final_stage.from_instruction.arguments == "alpine AS a"
    assert (run.from_refs, copy.from_refs) == (("a",), ("a",))
    assert (copy.flags, copy.arguments, copy.flag("from"), copy.flag("link")) == (
        ("--from='a'", "--chmod=755"),
        "x /x",
        "a",
        None,
    )


def test_the_first_instruction_with_a_flag() -> None:
    df = parse(
        "FROM --platform=linux/amd64 alpine AS a\n"
        "# COPY --link in a comment\n"
        "RUN cp --link a b\n"  # an argument, not a flag
        "FROM scratch\n"
        "COPY \\\n  --link  --chmod=755 x /x\n"
        "COPY --link=true y /y\n"
    )
    copy = df.first_with_flag("link")
    assert copy is not None and (copy.line, copy.end_line, copy.text) == (5, 6, "COPY --link --chmod=755 x /x")
    assert [copy.has_flag(name) for name in ("link", "chmod", "chm", "from")] == [True, True, False, False]
    assert df.first_with_flag("chmod") is copy
    assert df.first_with_flag("platform") is df.stages[0].from_instruction
    assert df.first_with_flag("mount") is None
    assert [ins.line for ins in df.instructions] == [1, 3, 4, 5, 7]  # file order, each FROM included


def test_find_stage_by_name_or_index_and_stage_from_with_build_args() -> None:
    df = parse("FROM alpine AS Build\nFROM scratch\n", build_args={"B": "build"})
    assert df.find_stage("BUILD") is df.find_stage(0) is df.find_stage("0") is df.stages[0]
    assert df.find_stage("alpine:3.20") is None
    assert df.stage_from("${B}") is df.stages[0]
    assert df.stage_from("${NOPE}") is None


def test_workdir_follows_the_chain_args_env_and_quotes() -> None:
    df = parse(
        "FROM alpine AS base\nENV APP=/app\nARG SUB=srv\nWORKDIR $APP\n"
        "FROM base AS build\nWORKDIR \"${SUB:-x} dir\"\nWORKDIR '$APP'\n"
        "FROM base AS other\nWORKDIR $SUB\n"
        "FROM scratch\n"
    )
    assert df.workdir(df.stage("base")) == ("$APP", "/app")
    assert df.workdir(df.stage("build")) == ("'$APP'", "/app/x dir/$APP")  # ARGs are scoped to their stage
    assert df.workdir(df.stage("other")) == ("$SUB", None)
    assert df.workdir(df.final_stage) == ("", "/")


# ------------------------------------------------------------------- BuildKit's automatic platform ARGs
CROSS = """\
FROM --platform=$BUILDPLATFORM gcc:12 AS build
ARG TARGETARCH
RUN make ARCH=$TARGETARCH

FROM scratch AS binaries-linux
COPY --from=build /out/hello /hello

FROM busybox:1.36 AS binaries-windows
FROM binaries-$TARGETOS
"""


def test_platform_args_resolve_in_from_and_stage_chains() -> None:
    df = parse_dockerfile("Dockerfile", text=CROSS, platform="linux/arm64")
    assert df.final_stage.base == "binaries-linux"
    assert df.final_base == "scratch"
    assert df.platform == "linux/arm64"
    windows = parse_dockerfile("Dockerfile", text=CROSS, platform="windows/amd64")
    assert windows.final_base == "busybox:1.36"


def test_without_a_platform_the_automatic_args_stay_as_written() -> None:
    df = parse_dockerfile("Dockerfile", text=CROSS)
    assert df.final_stage.base == "binaries-$TARGETOS"


def test_a_bare_global_arg_of_an_automatic_name_keeps_its_value() -> None:
    """``ARG TARGETARCH`` before FROM declares it for FROM; BuildKit supplies the value."""
    text = "ARG TARGETARCH\nFROM base-${TARGETARCH}\n"
    assert parse_dockerfile("Dockerfile", text=text, platform="linux/amd64").final_base == "base-amd64"
    assert parse_dockerfile("Dockerfile", text=text).final_base == "base-${TARGETARCH}"
    pinned = "ARG TARGETARCH=riscv64\nFROM base-${TARGETARCH}\n"
    assert parse_dockerfile("Dockerfile", text=pinned, platform="linux/amd64").final_base == "base-riscv64"


def test_the_automatic_platform_args_an_instruction_uses() -> None:
    assert sorted(AUTOMATIC_ARGS) == [
        "BUILDARCH", "BUILDOS", "BUILDPLATFORM", "BUILDVARIANT",
        "TARGETARCH", "TARGETOS", "TARGETPLATFORM", "TARGETVARIANT",
    ]  # fmt: skip
    df = parse(
        "FROM --platform=$BUILDPLATFORM gcc AS build\n"
        "RUN echo ${TARGETOS:-linux}/$TARGETARCH $TARGETARCH '$BUILDARCH' \\$TARGETVARIANT $TARGETARCHX $OTHER\n"
        "FROM base-${TARGETARCH}\n",
        platform="linux/arm64",
    )
    assert [ins.platform_args for ins in df.instructions] == [
        (),  # flags are not read
        ("TARGETOS", "TARGETARCH"),  # once each; not quoted, escaped or a longer name
        ("TARGETARCH",),  # as written, whatever the platform resolved it to
    ]
    assert df.final_stage.base == "base-arm64"


def test_platform_args() -> None:
    from pytest_slimimage.dockerfile.model import platform_args

    assert platform_args("linux/arm64/v8", "linux/amd64") == {
        "TARGETPLATFORM": "linux/arm64/v8", "TARGETOS": "linux", "TARGETARCH": "arm64", "TARGETVARIANT": "v8",
        "BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64", "BUILDVARIANT": "",
    }  # fmt: skip
    assert platform_args(None) == {}
    with pytest.raises(SlimImageError, match=r"not a platform: 'arm64' \(expected os/arch\[/variant\]"):
        platform_args("arm64")


# ------------------------------------------------------------------------------ parser directives
@pytest.mark.parametrize(
    ("text", "directives"),
    [
        ("# syntax=docker/dockerfile:1\nFROM x\n", {"syntax": "docker/dockerfile:1"}),
        (
            "#Syntax = docker/dockerfile:1.4 extra \n# escape=`\nFROM x\n",
            {"syntax": "docker/dockerfile:1.4 extra", "escape": "`"},
        ),
        ("#!/usr/bin/env docker-build\n# syntax=a/b:1\n# syntax=c/d:2\nFROM x\n", {"syntax": "a/b:1"}),
        ("# check=skip=all\nFROM x\n", {"check": "skip=all"}),
        ("\n# syntax=docker/dockerfile:1\nFROM x\n", {}),  # after a blank line: a comment
        ("# a comment\n# syntax=docker/dockerfile:1\nFROM x\n", {}),
        ("# unknown=1\n# syntax=docker/dockerfile:1\nFROM x\n", {}),
        ("  # syntax=docker/dockerfile:1\nFROM x\n", {}),
        ("FROM x\n# syntax=docker/dockerfile:1\n", {}),
        ("# syntax=\nFROM x\n", {}),
    ],
)
def test_parser_directives_are_read_as_buildkit_reads_them(text: str, directives: dict[str, str]) -> None:
    assert parser_directives(text) == directives
    assert parse(text).directives == directives


def test_the_syntax_directive_names_a_frontend_image(tmp_path: Path) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text("# syntax = docker/dockerfile:1.4 extra\nFROM x\n")
    assert parse_dockerfile(path).syntax == "docker/dockerfile:1.4"
    assert parse("FROM x\n").syntax is None
    assert parse("# escape=`\nFROM x\n").syntax is None
    assert parser_directives("\ufeff# syntax=docker/dockerfile:1\n") == {"syntax": "docker/dockerfile:1"}  # a BOM
