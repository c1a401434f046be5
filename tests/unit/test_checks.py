"""Each check's pass headline and failure text, over facts built by hand (no engine)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest

from pytest_slimimage.analysis.attribution import attribute_layers
from pytest_slimimage.analysis.toolchains import DPKG_STATUS
from pytest_slimimage.checks.exec_form import check_exec_form
from pytest_slimimage.checks.final_base import check_final_base
from pytest_slimimage.checks.no_compilers import check_no_compilers
from pytest_slimimage.checks.registry import CHECKS
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.checks.runs import RunExpectation, check_runs, output_matches, tail
from pytest_slimimage.checks.size import check_max_size
from pytest_slimimage.dockerfile.model import Dockerfile, parse_dockerfile
from pytest_slimimage.facts import FileEntry, FileSystem, ImageConfig, ImageFacts, Layer, RunResult


def dockerfile(text: str, target: str | None = None) -> Dockerfile:
    return parse_dockerfile("Dockerfile", text=text, target=target)


def facts(
    *,
    name: str = "hello",
    size: int = 0,
    config: ImageConfig | None = None,
    layers: Sequence[Layer] = (),
    df: Dockerfile | None = None,
    filesystem: FileSystem | None = None,
    base_size: int | None = None,
) -> ImageFacts:
    return ImageFacts(
        name=name,
        id="sha256:" + "1" * 64,
        size=size,
        config=config or ImageConfig(cmd=("/hello",)),
        layers=tuple(layers),
        dockerfile=df,
        filesystem=filesystem,
        base_size=base_size,
    )


def lines(result: CheckResult) -> list[str]:
    return result.message().splitlines()


# ---------------------------------------------------------------------------------------- max_size
FAT = """\
FROM debian:12
RUN apt-get update && apt-get install -y gcc
COPY hello.c /src/hello.c
RUN gcc -o /hello /src/hello.c
CMD ["/hello"]
"""
FAT_LAYERS = (
    Layer("/bin/sh -c #(nop) ADD file:4b0f in / ", 74_800_000, False, from_base=True),
    Layer('/bin/sh -c #(nop)  CMD ["bash"]', 0, True, from_base=True),
    Layer("RUN /bin/sh -c apt-get update && apt-get install -y gcc # buildkit", 180_000_000, False),
    Layer("COPY hello.c /src/hello.c # buildkit", 120, False),
    Layer("RUN /bin/sh -c gcc -o /hello /src/hello.c # buildkit", 16_384, False),
    Layer('CMD ["/hello"]', 0, True),
)
FAT_SIZE = 74_800_000 + 180_000_000 + 120 + 16_384  # 254_816_504


def fat(base_size: int | None = 74_800_000) -> ImageFacts:
    return facts(size=FAT_SIZE, layers=FAT_LAYERS, df=dockerfile(FAT), base_size=base_size)


def test_max_size_pass() -> None:
    result = check_max_size(fat(), "300MB")
    assert result.passed
    assert (result.check, result.image) == ("max_size", "hello")
    assert result.headline == "hello: max_size: 255MB within 300MB (headroom 45.2MB)"
    assert result.message() == result.headline  # no evidence, no hint
    assert dict(result.details) == {"actual": FAT_SIZE, "limit": 300_000_000}


def test_max_size_exactly_at_the_budget_passes() -> None:
    assert check_max_size(facts(size=1000), 1000).passed
    assert not check_max_size(facts(size=1001), 1000).passed


def test_max_size_fail_text() -> None:
    result = check_max_size(fat(), "100MB")
    assert not result.passed
    assert lines(result) == [
        "hello: max_size: 255MB (254816504 bytes) exceeds the budget of 100MB by +155MB",
        "  largest layers:",
        "     180MB  RUN apt-get update && apt-get install -y gcc  (Dockerfile line 2)",
        "    74.8MB  ADD file:4b0f in /  (base debian:12)",
        "    16.4kB  RUN gcc -o /hello /src/hello.c  (Dockerfile line 4)",
        "      120B  COPY hello.c /src/hello.c  (Dockerfile line 3)",
        "  the final base debian:12 alone is 74.8MB",
        "  hint: shrink the largest layers above: build in a separate stage and COPY --from only the artifact;"
        " clean package caches in the same RUN that creates them",
    ]
    assert dict(result.details) == {"actual": FAT_SIZE, "limit": 100_000_000}


def test_max_size_fail_when_the_base_alone_is_over_budget() -> None:
    result = check_max_size(fat(), "50MB")
    assert result.hint.startswith("the base image debian:12 is already over the budget: copy the built artifact")
    assert sum(1 for line in lines(result) if line.lstrip().startswith("hint:")) == 1


def test_max_size_base_size_unknown() -> None:
    result = check_max_size(fat(base_size=None), "100MB")
    assert not any("alone is" in line for line in result.evidence)
    assert result.hint.startswith("shrink the largest layers above")


def test_max_size_accepts_ints_and_binary_units() -> None:
    assert check_max_size(facts(size=1_048_576), "1MiB").passed
    assert not check_max_size(facts(size=1_048_577), "1MiB").passed
    assert check_max_size(facts(size=10), 10).passed


def test_max_size_bad_budget_raises() -> None:
    with pytest.raises(ValueError, match="not a size: '12 parsecs'"):
        check_max_size(fat(), "12 parsecs")


def test_max_size_lists_five_largest_and_sums_the_rest() -> None:
    layers = [Layer(f"/bin/sh -c step{n}", n * 1_000_000, False) for n in range(1, 8)]
    result = check_max_size(facts(size=28_000_000, layers=layers), "1MB")
    layer_rows = result.evidence[1:]
    assert [row.split()[0] for row in layer_rows] == ["7MB", "6MB", "5MB", "4MB", "3MB", "3MB"]
    assert layer_rows[0] == "     7MB  RUN step7  (build)"
    assert layer_rows[-1] == "     3MB  (2 smaller layers)"  # 2MB + 1MB


def test_max_size_long_instructions_are_cut() -> None:
    long = "/bin/sh -c " + "x" * 200
    result = check_max_size(facts(size=5000, layers=[Layer(long, 5000, False)]), 1000)
    row = result.evidence[1]
    assert row == "     5kB  RUN " + "x" * 83 + "...  (build)"


def test_max_size_without_dockerfile_names_the_base_image_plainly() -> None:
    layers = [Layer("ADD rootfs.tar /", 2000, False, from_base=True), Layer("/bin/sh -c make", 3000, False)]
    result = check_max_size(facts(size=5000, layers=layers), 1000)
    assert result.evidence[1:] == ("     3kB  RUN make  (build)", "     2kB  ADD rootfs.tar /  (base image)")


def test_attribute_layers_through_a_stage_chain() -> None:
    df = dockerfile(
        'FROM alpine:3.20 AS base\nRUN apk add curl\nFROM base AS app\nCOPY app /app\nRUN chmod +x /app\nCMD ["/app"]\n'
    )
    layers = [
        Layer("ADD alpine-minirootfs.tar.gz / # buildkit", 7_000_000, False, from_base=True),
        Layer("RUN /bin/sh -c apk add curl # buildkit", 3_000_000, False),
        Layer("COPY app /app # buildkit", 500, False),
        Layer("RUN /bin/sh -c chmod +x /app # buildkit", 500, False),
        Layer('CMD ["/app"]', 0, True),
        Layer("LABEL x=y", 0, True),  # no such instruction in the Dockerfile
    ]
    wheres = [where for _, where in attribute_layers(facts(layers=layers, df=df))]
    assert wheres == [
        "base alpine:3.20",
        "Dockerfile line 2",
        "Dockerfile line 4",
        "Dockerfile line 5",
        "Dockerfile line 6",
        "build",
    ]


def test_attribute_multiline_instruction_location() -> None:
    df = dockerfile("FROM scratch\nCOPY a \\\n     b /\n")
    [(_, where)] = attribute_layers(facts(layers=[Layer("COPY a b / # buildkit", 10, False)], df=df))
    assert where == "Dockerfile lines 2-3"


# -------------------------------------------------------------------------------------- final_base
CHAIN = """\
FROM golang:1.22 AS build
RUN go build -o /hello .
FROM build AS test
RUN go vet ./...
FROM test AS release
FROM gcr.io/distroless/static-debian12:nonroot AS slim
COPY --from=build /hello /hello
"""


def test_final_base_pass() -> None:
    result = check_final_base(facts(df=dockerfile(CHAIN)), "gcr.io/distroless/static-debian12")
    assert result.passed
    assert result.headline == (
        "hello: final_base: final stage is FROM gcr.io/distroless/static-debian12:nonroot"
        " (expected gcr.io/distroless/static-debian12)"
    )


def test_final_base_pass_with_docker_hub_spellings_and_lists() -> None:
    df = dockerfile("FROM docker.io/library/debian:12-slim\n")
    assert check_final_base(facts(df=df), "debian").passed
    assert check_final_base(facts(df=df), ["alpine", "debian:12-slim"]).passed
    assert not check_final_base(facts(df=df), "debian:12").passed


def test_final_base_fail_follows_the_stage_chain() -> None:
    result = check_final_base(facts(df=dockerfile(CHAIN, target="release")), ["scratch", "gcr.io/distroless/static"])
    assert not result.passed
    assert lines(result) == [
        "hello: final_base: the final stage is FROM golang:1.22, expected scratch or gcr.io/distroless/static",
        "  final stage: stage 2 (release), FROM test AS release (Dockerfile, line 5)",
        "  FROM chain: stage 2 (release) <- stage 1 (test) <- stage 0 (build) <- golang:1.22",
        "  build target: release",
        "  hint: end the Dockerfile with a stage FROM scratch that copies in only what the program needs"
        " (COPY --from=<build stage> /absolute/path ...)",
    ]
    assert dict(result.details) == {"actual": "golang:1.22", "expected": ["scratch", "gcr.io/distroless/static"]}


def test_final_base_fail_single_stage() -> None:
    result = check_final_base(facts(df=dockerfile("# base\nFROM ubuntu:24.04\nRUN true\n")), "scratch")
    assert result.evidence == ("final stage: stage 0, FROM ubuntu:24.04 (Dockerfile, line 2)",)


def test_final_base_needs_a_dockerfile() -> None:
    with pytest.raises(
        ValueError,
        match=r"^final_base needs the image's Dockerfile; hello was not built from one"
        r" \(for an existing image, pass the dockerfile= it was built from\)$",
    ):
        check_final_base(facts(), "scratch")


@pytest.mark.parametrize("bad", [[], "", "  ", [""], ["debian", 3]])
def test_final_base_bad_expectation(bad: object) -> None:
    with pytest.raises(ValueError, match="final_base expects an image name or a list of them"):
        check_final_base(facts(df=dockerfile("FROM scratch\n")), bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------- exec_form
def test_exec_form_pass() -> None:
    df = dockerfile('FROM scratch\nCOPY hello /hello\nENTRYPOINT ["/hello"]\nCMD ["--name", "world"]\n')
    config = ImageConfig(entrypoint=("/hello",), cmd=("--name", "world"))
    result = check_exec_form(facts(df=df, config=config))
    assert result.passed
    assert result.headline == 'hello: exec_form: runs ["/hello", "--name", "world"] directly (exec form)'


def test_exec_form_single_quotes() -> None:
    df = dockerfile("FROM scratch\nCOPY hello /hello\nCMD ['./hello']\n")
    config = ImageConfig(cmd=("/bin/sh", "-c", "['./hello']"))
    result = check_exec_form(facts(df=df, config=config))
    assert not result.passed
    assert lines(result) == [
        "hello: exec_form: CMD is shell form, so Docker runs it through /bin/sh -c",
        "  Dockerfile, line 3: CMD ['./hello']",
        "    single quotes are not JSON, so Docker treats the brackets as a shell command line and runs it with"
        " /bin/sh -c (the shell then looks for a program named '[./hello]')",
        '  hint: use exec form (a JSON array of double-quoted strings): CMD ["./hello"]',
    ]


def test_exec_form_inherited_from_the_base_image() -> None:
    df = dockerfile("FROM debian:12\nCOPY hello /usr/local/bin/hello\n")
    config = ImageConfig(cmd=("/bin/sh", "-c", "hello --serve"))
    result = check_exec_form(facts(df=df, config=config))
    assert not result.passed
    assert result.evidence == ('image config Cmd: ["/bin/sh", "-c", "hello --serve"] (inherited from the base image'
                               " debian:12)",)  # fmt: skip
    assert result.hint == 'use exec form (a JSON array of double-quoted strings): CMD ["hello", "--serve"]'
    assert result.headline == "hello: exec_form: the command is shell form, so Docker runs it through /bin/sh -c"


def test_exec_form_config_shell_wrapper_written_in_the_dockerfile() -> None:
    df = dockerfile('FROM alpine\nCMD ["/bin/sh", "-c", "echo $HOME"]\n')
    config = ImageConfig(cmd=("/bin/sh", "-c", "echo $HOME"))
    result = check_exec_form(facts(df=df, config=config))
    assert not result.passed
    assert result.evidence == ('image config Cmd: ["/bin/sh", "-c", "echo $HOME"] (set at Dockerfile, line 2)',)


def test_exec_form_without_dockerfile() -> None:
    result = check_exec_form(facts(config=ImageConfig(cmd=("sh", "-c", "./run"))))
    assert result.evidence == ('image config Cmd: ["sh", "-c", "./run"] (no Dockerfile known)',)
    assert result.hint.endswith(': CMD ["./run"]')


def test_exec_form_inherited_through_a_stage_chain() -> None:
    df = dockerfile("FROM alpine AS base\nCMD ./serve --port 80\nFROM base\nRUN true\n")
    config = ImageConfig(cmd=("/bin/sh", "-c", "./serve --port 80"))
    result = check_exec_form(facts(df=df, config=config))
    assert lines(result) == [
        "hello: exec_form: CMD is shell form, so Docker runs it through /bin/sh -c",
        "  Dockerfile, line 2: CMD ./serve --port 80",
        "    shell form: Docker runs it as /bin/sh -c, which needs a shell in the image and makes the shell PID 1"
        " (signals do not reach the program)",
        '  hint: use exec form (a JSON array of double-quoted strings): CMD ["./serve", "--port", "80"]',
    ]


def test_exec_form_no_command_at_all() -> None:
    result = check_exec_form(facts(df=dockerfile("FROM scratch\nCOPY hello /hello\n"), config=ImageConfig()))
    assert lines(result) == [
        "hello: exec_form: the image has neither CMD nor ENTRYPOINT",
        "  `docker run` on it fails with 'no command specified'",
        '  hint: add an exec-form command to the final stage, e.g. CMD ["/app"]',
    ]


def test_exec_form_entrypoint_shell_form() -> None:
    df = dockerfile('FROM alpine\nENTRYPOINT ./hello --serve\nCMD ["--port", "80"]\n')
    config = ImageConfig(entrypoint=("/bin/sh", "-c", "./hello --serve"), cmd=("--port", "80"))
    result = check_exec_form(facts(df=df, config=config))
    assert result.headline == "hello: exec_form: ENTRYPOINT is shell form, so Docker runs it through /bin/sh -c"
    assert result.evidence[0] == "Dockerfile, line 2: ENTRYPOINT ./hello --serve"
    assert result.hint == 'use exec form (a JSON array of double-quoted strings): ENTRYPOINT ["./hello", "--serve"]'


def test_exec_form_both_shell_form() -> None:
    df = dockerfile("FROM alpine\nENTRYPOINT ./hello\nCMD ['--x']\n")
    config = ImageConfig(entrypoint=("/bin/sh", "-c", "./hello"), cmd=("/bin/sh", "-c", "['--x']"))
    result = check_exec_form(facts(df=df, config=config))
    assert result.headline == (
        "hello: exec_form: CMD and ENTRYPOINT are shell form, so Docker runs it through /bin/sh -c"
    )
    assert result.hint == 'use exec form (a JSON array of double-quoted strings): ENTRYPOINT ["./hello"]; CMD ["--x"]'
    assert sum(1 for line in lines(result) if "hint:" in line) == 1


# ------------------------------------------------------------------------------------ no_compilers
def exe(path: str, layer: int) -> FileEntry:
    return FileEntry(path, "file", 1000, 0o755, layer=layer)


def toolbox(*entries: FileEntry, contents: dict[str, bytes] | None = None) -> FileSystem:
    return FileSystem(entries={e.path: e for e in entries}, contents=contents or {})


GOLANG_LAYERS = (
    Layer("ADD rootfs.tar / # buildkit", 50_000_000, False, from_base=True),
    Layer("RUN /bin/sh -c install-go # buildkit", 200_000_000, False, from_base=True),
    Layer('CMD ["bash"]', 0, True, from_base=True),
    Layer("COPY hello /hello # buildkit", 1_000_000, False),
)


def test_no_compilers_pass() -> None:
    fs = toolbox(exe("/hello", 0), FileEntry("/etc", "dir", mode=0o755))
    result = check_no_compilers(facts(filesystem=fs))
    assert result.passed
    assert result.headline == "hello: no_compilers: no compiler or toolchain among 2 paths"


def test_no_compilers_fail_text() -> None:
    fs = toolbox(
        exe("/usr/local/go/bin/go", 1),
        exe("/usr/bin/gcc-12", 1),
        FileEntry("/usr/bin/gcc", "symlink", link="gcc-12", layer=1),
        exe("/hello", 2),
        contents={DPKG_STATUS: b"Package: gcc-12\nStatus: install ok installed\n\nPackage: libc6\n"},
    )
    result = check_no_compilers(facts(df=dockerfile("FROM golang:1.22\nCOPY hello /hello\n"), filesystem=fs,
                                      layers=GOLANG_LAYERS))  # fmt: skip
    assert not result.passed
    assert lines(result) == [
        "hello: no_compilers: found 3 toolchain file(s) and 1 package(s) (gcc, gcc-12, go)",
        "  /usr/bin/gcc",
        "  /usr/bin/gcc-12",
        "  /usr/local/go/bin/go",
        "  package gcc-12 (installed, per /var/lib/dpkg/status)",
        "  all of these come with the final stage's base image, golang:1.22",
        "  hint: compile in a builder stage and COPY --from=<builder> only the built artifact into a final stage"
        " without the toolchain (or allow=[...] the tools you ship on purpose)",
    ]
    assert dict(result.details)["found"] == [
        "/usr/bin/gcc",
        "/usr/bin/gcc-12",
        "/usr/local/go/bin/go",
        "package gcc-12 (installed, per /var/lib/dpkg/status)",
    ]


def test_no_compilers_toolchain_added_by_the_dockerfile_is_not_blamed_on_the_base() -> None:
    fs = toolbox(exe("/usr/bin/gcc", 1), exe("/usr/bin/tcc", 2))
    result = check_no_compilers(facts(df=dockerfile("FROM golang:1.22\nRUN x\n"), filesystem=fs, layers=GOLANG_LAYERS))
    assert not any("base image" in line for line in result.evidence)


def test_no_compilers_allow() -> None:
    fs = toolbox(exe("/usr/bin/as", 0), exe("/usr/bin/ld", 0))
    assert not check_no_compilers(facts(filesystem=fs), ["as"]).passed
    result = check_no_compilers(facts(filesystem=fs), ["as", "ld"])
    assert result.passed
    assert dict(result.details)["allow"] == ["as", "ld"]
    assert check_no_compilers(facts(filesystem=toolbox(exe("/usr/bin/as", 0))), "as").passed  # a lone str


def test_no_compilers_headline_abbreviates_many_names() -> None:
    names = ["as", "cc", "gcc", "go", "ld", "tcc", "zig"]
    fs = toolbox(*(exe(f"/usr/bin/{n}", 0) for n in names))
    assert check_no_compilers(facts(filesystem=fs)).headline.endswith("(as, cc, gcc, go, ld, tcc, ...)")
    same = toolbox(*(exe(f"/opt/{n}/bin/gcc", 0) for n in names))  # 7 findings, one name
    assert check_no_compilers(facts(filesystem=same)).headline == (
        "hello: no_compilers: found 7 toolchain file(s) and 0 package(s) (gcc)"
    )


def test_no_compilers_needs_the_filesystem() -> None:
    with pytest.raises(ValueError, match=r"^no_compilers needs the filesystem of hello, which was not indexed$"):
        check_no_compilers(facts())


# -------------------------------------------------------------------------------------------- runs
def run(
    stdout: str = "",
    stderr: str = "",
    exit_code: int = 0,
    argv: tuple[str, ...] = ("./hello",),
    **kwargs: object,
) -> RunResult:
    return RunResult(exit_code, stdout, stderr, argv=argv, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("actual", "expected", "matches"),
    [
        ("hello\n", "hello", True),
        ("hello", "hello\n", True),
        ("hello\r\n\n", "hello\n\n", True),
        ("hello \n", "hello", False),  # only newlines are ignored
        ("\nhello", "hello", False),
        ("Hello", "hello", False),
        ("say hello there", re.compile(r"hel+o"), True),
        ("say hello there", re.compile(r"^hello"), False),
        ("a\nhello\n", re.compile(r"^hello$", re.M), True),
    ],
)
def test_output_matches(actual: str, expected: str | re.Pattern[str], matches: bool) -> None:
    assert output_matches(actual, expected) is matches


def test_runs_pass() -> None:
    result = check_runs(facts(), RunExpectation(stdout="Hello, World!"), run("Hello, World!\n", duration=0.12345))
    assert result.passed
    assert result.headline == 'hello: runs: ["./hello"] exited 0 as expected'
    assert dict(result.details) == {"argv": ["./hello"], "exit_code": 0, "timed_out": False, "duration": 0.123}


def test_runs_pass_with_regex() -> None:
    assert check_runs(facts(), RunExpectation(stdout=re.compile(r"World")), run("Hello, World!\n")).passed


def test_runs_stdout_mismatch_text() -> None:
    result = check_runs(facts(), RunExpectation(stdout="hello\n"), run("Hello, World!\n"))
    assert lines(result) == [
        "hello: runs: stdout 'Hello, World!', expected 'hello'",
        '  command: ["./hello"]',
        "  exit code: 0",
        "  stdout:",
        "    | Hello, World!",
        "  stderr: (empty)",
        "  hint: run the image by hand (docker run --rm IMAGE) and compare with the expectation",
    ]


def test_runs_regex_mismatch_shows_the_pattern() -> None:
    result = check_runs(facts(), RunExpectation(stdout=re.compile(r"^bye$")), run("hi\n"))
    assert result.headline == "hello: runs: stdout 'hi', expected re.compile('^bye$')"


def test_runs_exit_code_and_stderr() -> None:
    expectation = RunExpectation(stderr=re.compile("warning"), exit_code=0)
    result = check_runs(facts(), expectation, run("", "error: bad flag\nusage: hello\n", exit_code=2))
    assert lines(result)[:6] == [
        "hello: runs: exit code 2, expected 0; stderr 'error: bad flag\\nusage: hello', expected re.compile('warning')",
        '  command: ["./hello"]',
        "  exit code: 2",
        "  stdout: (empty)",
        "  stderr:",
        "    | error: bad flag",
    ]


def test_runs_expected_nonzero_exit_code() -> None:
    assert check_runs(facts(), RunExpectation(exit_code=3), run(exit_code=3)).passed
    assert not check_runs(facts(), RunExpectation(exit_code=3), run(exit_code=0)).passed
    assert check_runs(facts(), RunExpectation(exit_code=None), run(exit_code=99)).passed


def test_runs_timed_out() -> None:
    result = check_runs(facts(), RunExpectation(timeout=5.0), run("serving\n", exit_code=137, timed_out=True))
    assert result.headline == "hello: runs: timed out after 5s (killed)"
    assert "exit code: 137 (timed out, killed)" in result.evidence
    assert result.hint == "the program did not exit: a long-running service wants a readiness check, not runs="


def test_runs_did_not_start_dynamic_binary_on_scratch() -> None:
    error = 'failed to create task: exec: "./hello": exec ./hello: no such file or directory'
    result = check_runs(facts(), RunExpectation(stdout="hi"), run(exit_code=-1, start_error=error))
    assert lines(result)[:3] == [
        "hello: runs: the container did not start",
        '  command: ["./hello"]',
        f"  engine: {error}",
    ]
    assert result.hint.startswith("the program or its ELF loader is missing")
    assert "link statically (gcc -static)" in result.hint


def test_runs_single_quoted_json_hint() -> None:
    argv = ("/bin/sh", "-c", "['./hello']")
    result = check_runs(facts(), RunExpectation(), run("", "/bin/sh: [./hello]: not found\n", 127, argv))
    assert result.headline == "hello: runs: exit code 127, expected 0"
    assert result.evidence[0] == 'command: ["/bin/sh", "-c", "[\'./hello\']"]'
    assert result.hint == (
        'the command is not valid JSON, so /bin/sh ran it as a command line: use exec form CMD ["./hello"]'
    )


def test_runs_shell_not_found_hint() -> None:
    argv = ("/bin/sh", "-c", "./missing --x")
    result = check_runs(facts(), RunExpectation(), run("", "/bin/sh: ./missing: not found\n", 127, argv))
    assert result.hint == (
        "the command runs through /bin/sh -c; use exec form (a JSON array) and make sure the program exists"
    )


def test_runs_permission_denied_hint() -> None:
    error = 'exec: "/hello": permission denied'
    result = check_runs(facts(), RunExpectation(), run(exit_code=-1, start_error=error))
    assert result.hint == "the program is not executable in the image: chmod +x it in the build stage (or COPY --chmod)"


def test_runs_long_output_is_tailed_and_truncation_said() -> None:
    out = "".join(f"line {n}\n" for n in range(1, 31))
    result = check_runs(facts(), RunExpectation(stdout="x"), run(out, truncated=True))
    rows = list(result.evidence)
    start = rows.index("stdout:")
    assert rows[start + 1] == "  | ... (10 earlier lines)"
    assert rows[start + 2] == "  | line 11"
    assert rows[start + 21] == "  | line 30"
    assert rows[start + 22] == "stderr: (empty)"
    assert rows[start + 23] == "(output beyond the cap was dropped; the lines above are the end of what was kept)"


def test_runs_headline_cuts_long_output() -> None:
    result = check_runs(facts(), RunExpectation(stdout="hello"), run("x" * 5000))
    assert result.headline.endswith(
        "stdout 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"
        "... (5000 characters), expected 'hello'"
    )
    assert len(result.headline) < 200


def test_runs_no_command_hint() -> None:
    result = check_runs(facts(), RunExpectation(), run(exit_code=-1, start_error="No command specified"))
    assert (
        result.hint == 'the image has no CMD or ENTRYPOINT: add one in exec form to the final stage, e.g. CMD ["/app"]'
    )


def test_runs_without_argv() -> None:
    result = check_runs(facts(), RunExpectation(), run(exit_code=1, argv=()))
    assert result.evidence[0] == "command: (none)"


def test_tail() -> None:
    assert tail("a\nb\nc\n", 2) == ["... (1 earlier lines)", "b", "c"]
    assert tail("a\nb\n", 2) == ["a", "b"]
    assert tail("") == []


# ----------------------------------------------------------------------------------- expectations
def test_from_value_true() -> None:
    assert RunExpectation.from_value(True, default_timeout=9) == RunExpectation(timeout=9)


def test_from_value_str_and_pattern() -> None:
    assert RunExpectation.from_value("hi\n") == RunExpectation(stdout="hi\n")
    pattern = re.compile("h.")
    assert RunExpectation.from_value(pattern).stdout is pattern


def test_from_value_dict() -> None:
    value = {"stdout": "a", "stderr": "b", "exit_code": 2, "args": ["--x", "1"], "timeout": 3}
    assert RunExpectation.from_value(value) == RunExpectation("a", "b", 2, ("--x", "1"), 3.0)


def test_from_value_dict_regexes_and_args_string() -> None:
    expectation = RunExpectation.from_value(
        {"stdout_regex": r"^v\d+", "stderr_regex": "warn", "args": "--name 'big world' -v", "exit_code": None}
    )
    assert isinstance(expectation.stdout, re.Pattern)
    assert expectation.stdout.pattern == r"^v\d+"
    assert isinstance(expectation.stderr, re.Pattern)
    assert expectation.stderr.pattern == "warn"
    assert expectation.args == ("--name", "big world", "-v")
    assert expectation.exit_code is None
    assert expectation.timeout == 30.0


def test_from_value_dict_takes_a_compiled_regex() -> None:
    pattern = re.compile("x+")
    assert RunExpectation.from_value({"stdout_regex": pattern}).stdout is pattern


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"stdoot": "x"}, "unknown key(s) 'stdoot'; expected stdout, stderr"),
        ({"b": 1, "a": 2}, "unknown key(s) 'a', 'b'"),
        ({"stdout": 3}, "stdout expects a str or a compiled regex, got 3"),
        ({"stderr": b"x"}, "stderr expects a str or a compiled regex, got b'x'"),
        ({"exit_code": "0"}, "exit_code expects an int or None, got '0'"),
        ({"exit_code": True}, "exit_code expects an int or None, got True"),
        ({"timeout": 0}, "timeout expects a positive number of seconds, got 0"),
        ({"timeout": "5"}, "timeout expects a positive number of seconds, got '5'"),
        ({"timeout": True}, "timeout expects a positive number of seconds, got True"),
        ({"args": 5}, "args expects a list of strings or a command line as a str, got 5"),
        ({"stdout_regex": "("}, "stdout_regex is not a valid regex"),
        ({"stderr_regex": 3}, "stderr_regex expects a pattern as a str, got 3"),
        (False, "runs expects True, an expected stdout (str or re.Pattern), or a dict"),
        (None, "got None"),
        (3, "got 3"),
        (["hello"], "got ['hello']"),
    ],
)
def test_from_value_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        RunExpectation.from_value(value)
    assert message in str(info.value)


def test_check_names() -> None:
    assert CHECKS == (
        "max_size",
        "warn_size",
        "max_growth",
        "final_base",
        "exec_form",
        "no_compilers",
        "no_shell",
        "no_package_manager",
        "non_root",
        "no_setuid",
        "no_secrets",
        "lint",
        "runnable",
        "max_waste",
        "max_pull_size",
        "reproducible",
        "runs",
        "serves",
        "healthy",
    )


def test_message_hides_hint_when_passed() -> None:
    result = CheckResult("runs", "img", True, "img: runs: ok", ("detail",), "do something")
    assert result.message() == "img: runs: ok\n  detail"
    assert str(result) == result.message()


def test_exec_form_an_entrypoint_resets_the_inherited_shell_cmd() -> None:
    # Stage "app" sets ENTRYPOINT without CMD: the builder drops the CMD it inherits from "base",
    # so the shell-form CMD there never reaches the image (its config has no Cmd).
    text = 'FROM busybox:1.36 AS base\nCMD echo from base\n\nFROM base AS app\nENTRYPOINT ["/bin/app"]\n'
    df = parse_dockerfile("Dockerfile", text=text)
    assert [ins.line if ins else None for ins in df.effective_command()] == [5, None]
    result = check_exec_form(facts(df=df, config=ImageConfig(entrypoint=("/bin/app",))))
    assert result.passed, result.message()


def test_exec_form_a_cmd_in_the_same_stage_survives_its_entrypoint() -> None:
    text = 'FROM busybox:1.36\nCMD run --fast\nENTRYPOINT ["/bin/app"]\n'
    df = parse_dockerfile("Dockerfile", text=text)
    config = ImageConfig(entrypoint=("/bin/app",), cmd=("/bin/sh", "-c", "run --fast"))
    result = check_exec_form(facts(df=df, config=config))
    assert not result.passed
    assert lines(result)[1] == "  Dockerfile, line 2: CMD run --fast"
