"""Build logs read without an engine: steps as they start (progress), the failing step, failure
texts that name a known cause, on logs captured from engine 20.10 (BuildKit ``--progress=plain``
and the legacy builder); and the BuildKit builder's command line, progress events, failure and
time limit, driven through a stand-in docker client that replays a captured log."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pytest_slimimage.dockerfile.model import Dockerfile, parse_dockerfile
from pytest_slimimage.engine.builder import BuildJob, BuildProgress
from pytest_slimimage.engine.builderchoice import BuilderChoice
from pytest_slimimage.engine.buildkit import BuildKitBuilder, candidate_clients
from pytest_slimimage.engine.buildlog import (
    Cause,
    Step,
    buildkit_failure,
    buildkit_step,
    diagnose,
    failure_text,
    last_buildkit_step,
    last_legacy_step,
    legacy_step,
    running_container,
    step_output,
    timeout_text,
)
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError

DIGEST = "sha256:" + "0" * 64

FAILED_RUN = f"""\
#1 [internal] load build definition from Dockerfile.fails
#1 {DIGEST}
#1 transferring dockerfile: 109B done
#1 DONE 0.0s

#3 [internal] load metadata for docker.io/library/busybox:latest
#3 DONE 0.0s

#4 [1/4] FROM docker.io/library/busybox:latest
#4 CACHED

#5 [2/4] RUN echo one
#5 0.136 one
#5 DONE 0.2s

#6 [3/4] RUN echo fail >&2 && exit 3
#6 {DIGEST}
#6 0.240 fail
#6 ERROR: executor failed running [/bin/sh -c echo fail >&2 && exit 3]: exit code: 3
------
 > [3/4] RUN echo fail >&2 && exit 3:
------
executor failed running [/bin/sh -c echo fail >&2 && exit 3]: exit code: 3
"""

HEREDOC = """\
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 78B done
#1 DONE 0.0s
failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 3: \
unknown instruction: ECHO
"""

LINK = """\
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s
failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 2: \
Unknown flag: link
"""

SYNTAX = """\
#3 resolve image config for docker.io/docker/dockerfile:1
#3 sha256:ac072d521901222eeef550f52282877f196e16b0247844be9ceb1ccc1eac391d
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/docker/dockerfile/manifests/1": dial tcp: \
lookup registry-1.docker.io: no such host
------
 > resolve image config for docker.io/docker/dockerfile:1:
------
failed to solve with frontend dockerfile.v0: failed to solve with frontend gateway.v0: failed to do request: \
Head "https://registry-1.docker.io/v2/docker/dockerfile/manifests/1": dial tcp: \
lookup registry-1.docker.io: no such host
"""

MISSING_BASE = """\
#3 [internal] load metadata for docker.io/library/nosuch:1
#3 sha256:c364b481fc4c94756732b8d1193ad4eef697c756f91f365154717f120aaf3a4b
#3 ERROR: failed to do request: Head "https://registry-1.docker.io/v2/library/nosuch/manifests/1": no such host
------
 > [internal] load metadata for docker.io/library/nosuch:1:
------
failed to solve with frontend dockerfile.v0: failed to create LLB definition: failed to do request: no such host
"""

BUILDX_FAILURE = """\
#6 [build 3/4] RUN make
#6 0.21 make: *** No targets.  Stop.
#6 ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2
------
 > [build 3/4] RUN make:
------
Dockerfile:5
--------
   5 | >>> RUN make
--------
ERROR: failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2
"""


# ------------------------------------------------------------------------------------------ steps
def test_buildkit_steps() -> None:
    assert buildkit_step("#5 [2/4] RUN echo one") == Step(2, 4, "RUN echo one", line="#5 [2/4] RUN echo one")
    assert buildkit_step("#8 [build 3/4] COPY . /src") == Step(
        3, 4, "COPY . /src", stage="build", line="#8 [build 3/4] COPY . /src"
    )
    assert buildkit_step("#9 [stage-1 1/2] FROM docker.io/library/busybox:latest") is not None
    for line in ("#1 [internal] load build definition from Dockerfile", "#5 DONE 0.2s", "#5 0.136 one", ""):
        assert buildkit_step(line) is None
    assert last_buildkit_step(FAILED_RUN) == "#6 [3/4] RUN echo fail >&2 && exit 3"


def test_legacy_steps() -> None:
    assert legacy_step("Step 2/5 : RUN make install\n") == Step(
        2, 5, "RUN make install", line="Step 2/5 : RUN make install"
    )
    assert legacy_step(" ---> Running in 1234") is None
    assert last_legacy_step("Step 1/2 : FROM x\n ---> 1\nStep 2/2 : RUN false\n") == "Step 2/2 : RUN false"
    assert last_legacy_step("") is None


# --------------------------------------------------------------------------------------- failures
def test_a_failed_buildkit_step() -> None:
    assert buildkit_failure(FAILED_RUN) == (
        "executor failed running [/bin/sh -c echo fail >&2 && exit 3]: exit code: 3",
        "#6 [3/4] RUN echo fail >&2 && exit 3",
    )


def test_a_failed_buildx_step() -> None:
    assert buildkit_failure(BUILDX_FAILURE) == (
        'failed to solve: process "/bin/sh -c make" did not complete successfully: exit code: 2',
        "#6 [build 3/4] RUN make",
    )


def test_a_failure_before_any_step() -> None:
    error, step = buildkit_failure(HEREDOC)
    assert error.endswith("dockerfile parse error line 3: unknown instruction: ECHO")
    assert step is None
    assert buildkit_failure("") == ("the build failed without a message", None)


def test_failure_text_has_the_legacy_shape() -> None:
    error, step = buildkit_failure(FAILED_RUN)
    lines = failure_text("app/Dockerfile", error, FAILED_RUN, step=step).splitlines()
    assert lines[:3] == [
        "building app/Dockerfile failed: executor failed running [/bin/sh -c echo fail >&2 && exit 3]: exit code: 3",
        "  failing step: #6 [3/4] RUN echo fail >&2 && exit 3",
        "  build log (last lines):",
    ]
    assert len(lines) == 3 + 15
    assert "    | #6 0.240 fail" in lines
    assert not any(DIGEST in line for line in lines)  # vertex digests are noise


def test_a_failed_steps_own_lines_are_its_tail() -> None:
    """The step's header, what it printed (without BuildKit's timings) and its error: the same text
    every time, where the whole log's tail holds transfer sizes and timings that vary by run."""
    error, step = buildkit_failure(FAILED_RUN)
    assert step is not None
    tail = step_output(FAILED_RUN, step)
    assert tail == [
        "#6 [3/4] RUN echo fail >&2 && exit 3",
        "fail",
        "#6 ERROR: executor failed running [/bin/sh -c echo fail >&2 && exit 3]: exit code: 3",
    ]
    assert failure_text("app/Dockerfile", error, FAILED_RUN, step=step, tail=tail).splitlines()[2:] == [
        "  build log (last lines):",
        *(f"    | {line}" for line in tail),
    ]


def test_failure_text_with_a_cause() -> None:
    text = failure_text("Dockerfile", "boom", "log", step="Step 2/3 : RUN x", cause=Cause("it broke", "fix it"))
    assert text.splitlines() == [
        "building Dockerfile failed: it broke",
        "  failing step: Step 2/3 : RUN x",
        "  the engine said: boom",
        "  hint: fix it",
    ]


LEGACY_TIMED_OUT = """\
Step 1/2 : FROM busybox:latest
 ---> 8289cfae39ff
Step 2/2 : RUN sleep 20
 ---> Running in 8b4328ec2b6f
"""


def test_the_container_of_the_step_a_legacy_build_was_running() -> None:
    assert running_container(LEGACY_TIMED_OUT) == "8b4328ec2b6f"
    done = LEGACY_TIMED_OUT + "Removing intermediate container 8b4328ec2b6f\n ---> 1a2b3c4d5e6f\n"
    assert running_container(done + "Step 3/3 : RUN make\n ---> Running in 0123456789ab\n") == "0123456789ab"
    assert running_container("Step 1/1 : FROM busybox:latest\n ---> 8289cfae39ff\n") is None


def test_a_timeout_names_the_limit_the_step_and_how_to_give_it_longer() -> None:
    text = timeout_text("app/Dockerfile", 3, "stopped", LEGACY_TIMED_OUT, step="Step 2/2 : RUN sleep 20")
    assert text.splitlines() == [
        "building app/Dockerfile failed: the build exceeded 3 s (stopped)",
        "  stopped at step: Step 2/2 : RUN sleep 20",
        "  build log (last lines):",
        "    | Step 1/2 : FROM busybox:latest",
        "    |  ---> 8289cfae39ff",
        "    | Step 2/2 : RUN sleep 20",
        "    |  ---> Running in 8b4328ec2b6f",
        "  hint: a build may take 3 s (--slimimage-build-timeout, ini slimimage_build_timeout): raise it if this"
        " build needs longer, or make the step faster",
    ]
    assert timeout_text("Dockerfile", 0.5, "stopped", "").splitlines()[0] == (
        "building Dockerfile failed: the build exceeded 0.5 s (stopped)"
    )


# ----------------------------------------------------------------------------------------- causes
def parsed(text: str) -> Dockerfile:
    return parse_dockerfile("Dockerfile", text=text)


HEREDOC_DOCKERFILE = "FROM busybox\n# RUN <<NOT a heredoc in a comment\nRUN <<EOT\necho hi\nEOT\n"
TOO_OLD = (
    "the engine's built-in Dockerfile frontend is too old for {what}; a '# syntax=docker/dockerfile:1' line would"
    " fetch a newer frontend from a registry, which fails without one"
)


def test_buildkit_heredoc() -> None:
    cause = diagnose("buildkit", buildkit_failure(HEREDOC)[0], HEREDOC, parsed(HEREDOC_DOCKERFILE))
    assert cause is not None
    assert cause.headline == TOO_OLD.format(what="heredocs (line 3: RUN <<EOT)")
    assert cause.hint.startswith("use an engine whose built-in frontend knows it (Docker 23.0 or later)")


def test_buildkit_copy_link() -> None:
    dockerfile = "FROM busybox\n# COPY --link in a comment\nCOPY --link a /a\n"
    cause = diagnose("buildkit", buildkit_failure(LINK)[0], LINK, parsed(dockerfile))
    assert cause is not None
    assert cause.headline == TOO_OLD.format(what="COPY --link (line 3: COPY --link a /a)")


def test_buildkit_other_unknown_flag() -> None:
    log = "dockerfile parse error line 2: Unknown flag: parents\n"
    cause = diagnose("buildkit", log, log, parsed("FROM x\nCOPY --parents a/ /b/\n"))
    assert cause is not None and cause.headline.startswith(
        "the engine's built-in Dockerfile frontend is too old for --parents (line 2: COPY --parents a/ /b/)"
    )


def test_buildkit_syntax_frontend_not_pulled() -> None:
    cause = diagnose("buildkit", buildkit_failure(SYNTAX)[0], SYNTAX, parsed("# syntax=docker/dockerfile:1\nFROM x\n"))
    assert cause is not None
    assert cause.headline == (
        "the Dockerfile's '# syntax=docker/dockerfile:1' line asks BuildKit for a frontend image, and it could"
        " not be pulled from a registry"
    )
    # the same log without the directive at the top is not that cause
    assert diagnose("buildkit", "x", SYNTAX, parsed("FROM x\n# syntax=docker/dockerfile:1\n")) is None


def test_buildkit_missing_base_image() -> None:
    cause = diagnose("buildkit", buildkit_failure(MISSING_BASE)[0], MISSING_BASE, parsed("FROM nosuch:1\n"))
    assert cause is not None
    assert cause.headline == (
        "the base image docker.io/library/nosuch:1 is not on the engine, and it could not be pulled"
    )


FOREIGN_RUN = """#5 [2/2] RUN echo hi > /x
#5 sha256:51f3d81197f73c1e05a0d79155034b3a178e59f35224d990bf514951ec602531
#5 0.174 exec /bin/sh: exec format error
#5 ERROR: executor failed running [/bin/sh -c echo hi > /x]: exit code: 1
------
 > [2/2] RUN echo hi > /x:
------
executor failed running [/bin/sh -c echo hi > /x]: exit code: 1
"""
"""A --platform linux/arm64 build's RUN step on an amd64 engine without QEMU (engine 20.10, as seen)."""


def test_a_foreign_run_step_without_emulation() -> None:
    cause = diagnose("buildkit", buildkit_failure(FOREIGN_RUN)[0], FOREIGN_RUN, parsed("FROM arm64v8/busybox\n"))
    assert cause is not None
    assert cause.headline.startswith(
        "a RUN step started a program built for another architecture than the engine's, which does not emulate it"
    )
    assert "bash scripts/emulation.sh" in cause.hint
    assert "FROM --platform=$BUILDPLATFORM" in cause.hint


def test_an_ordinary_failure_has_no_cause() -> None:
    heredoc = parsed("FROM busybox\nRUN <<EOT\n")
    assert diagnose("buildkit", buildkit_failure(FAILED_RUN)[0], FAILED_RUN, heredoc) is None
    assert (
        diagnose("legacy", "The command '/bin/sh -c false' returned a non-zero code: 1", "", parsed("FROM x\n")) is None
    )


USE_BUILDKIT = "build it with BuildKit: builder='auto' (the default) or 'buildkit'"


@pytest.mark.parametrize(
    ("error", "dockerfile", "headline"),
    [
        (
            "the --mount option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how",
            "FROM x\nRUN --mount=type=cache,target=/c make\n",
            "RUN --mount needs BuildKit, and the legacy builder built this image"
            " (line 2: RUN --mount=type=cache,target=/c make)",
        ),
        (
            "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how",
            "FROM x\nCOPY --chmod=755 a /a\n",
            "COPY --chmod needs BuildKit, and the legacy builder built this image (line 2: COPY --chmod=755 a /a)",
        ),
        (  # older engines say it so
            "dockerfile parse error line 2: Unknown flag: chmod",
            "FROM x\nCOPY --chmod=755 a /a\n",
            "COPY --chmod needs BuildKit, and the legacy builder built this image (line 2: COPY --chmod=755 a /a)",
        ),
        (
            "dockerfile parse error line 2: Unknown flag: link",
            "FROM x\nCOPY --link a /a\n",
            "COPY --link needs BuildKit, and the legacy builder built this image (line 2: COPY --link a /a)",
        ),
        (
            "dockerfile parse error line 4: unknown instruction: ECHO",
            HEREDOC_DOCKERFILE,
            "heredocs need BuildKit, and the legacy builder built this image (line 3: RUN <<EOT)",
        ),
        (
            "invalid reference format",
            "FROM busybox AS base-amd64\nFROM base-${TARGETARCH}\n",
            "BuildKit's automatic platform ARGs (TARGETARCH, TARGETOS, ...) in FROM need BuildKit, and the legacy"
            " builder built this image (line 2: FROM base-${TARGETARCH})",
        ),
        (  # the FROM whose image uses them is named, not one whose --platform flag does
            "invalid reference format",
            "FROM --platform=$BUILDPLATFORM busybox AS base-amd64\nFROM base-${TARGETARCH:-amd64}\n",
            "BuildKit's automatic platform ARGs (TARGETARCH, TARGETOS, ...) in FROM need BuildKit, and the legacy"
            " builder built this image (line 2: FROM base-${TARGETARCH:-amd64})",
        ),
        (  # continuation lines joined: the instruction as one line, from its first line
            "the --chmod option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how",
            "FROM x\n# COPY --chmod=644 in a comment\nCOPY \\\n  --chmod=755 a /a\n",
            "COPY --chmod needs BuildKit, and the legacy builder built this image (line 3: COPY --chmod=755 a /a)",
        ),
    ],
)
def test_buildkit_syntax_under_legacy(error: str, dockerfile: str, headline: str) -> None:
    assert diagnose("legacy", error, "Step 1/2 : FROM x\n", parsed(dockerfile)) == Cause(headline, USE_BUILDKIT)


def test_without_the_dockerfile_only_the_logs_causes_are_named() -> None:
    """No parsed Dockerfile: a cause the log alone shows is named without its line; one that needs
    the Dockerfile (heredocs, platform ARGs in FROM, a ``# syntax=`` frontend) is not named."""
    cause = diagnose("buildkit", buildkit_failure(LINK)[0], LINK, None)
    assert cause is not None and cause.headline == TOO_OLD.format(what="COPY --link")
    legacy = diagnose("legacy", "the --mount option requires BuildKit.", "", None)
    assert legacy == Cause("RUN --mount needs BuildKit, and the legacy builder built this image", USE_BUILDKIT)
    assert diagnose("buildkit", buildkit_failure(HEREDOC)[0], HEREDOC, None) is None
    assert diagnose("legacy", "dockerfile parse error line 4: unknown instruction: ECHO", "", None) is None
    assert diagnose("legacy", "invalid reference format", "", None) is None
    assert diagnose("buildkit", buildkit_failure(SYNTAX)[0], SYNTAX, None) is None
    missing = diagnose("buildkit", buildkit_failure(MISSING_BASE)[0], MISSING_BASE, None)
    assert missing is not None and missing.headline.startswith("the base image docker.io/library/nosuch:1 ")


# --------------------------------------------------------------------- the BuildKit builder itself
FAKE_CLIENT = """\
#!{python}
# A stand-in docker client: refuses to run without DOCKER_BUILDKIT=1 and an empty stdin (so the
# tests prove the builder sets both), records its arguments, replays a log, writes the image id.
import os, sys, time
args = sys.argv[1:]
if os.environ.get("DOCKER_BUILDKIT") != "1" or sys.stdin.read() != "":
    sys.exit("expected DOCKER_BUILDKIT=1 and an empty stdin")
with open(os.environ["FAKE_ARGS"], "w") as out:
    out.write("\\n".join(args))
sys.stdout.write(open(os.environ["FAKE_LOG"]).read())
sys.stdout.flush()
if os.environ.get("FAKE_SLEEP"):
    time.sleep(float(os.environ["FAKE_SLEEP"]))
code = int(os.environ.get("FAKE_CODE", "0"))
if code == 0:
    open(args[args.index("--iidfile") + 1], "w").write("sha256:" + "ab" * 32)
sys.exit(code)
"""

SUCCESS = """\
#1 [internal] load build definition from Dockerfile
#1 DONE 0.0s

#4 [build 1/3] FROM docker.io/library/busybox:latest
#4 DONE 0.0s

#5 [build 2/3] RUN echo one
#5 0.136 one
#5 DONE 0.2s

#6 [build 3/3] RUN echo two
#6 DONE 0.1s

#5 [build 2/3] RUN echo one
#5 0.2 one again

#7 [stage-1 1/1] COPY --from=build /a /a
#7 DONE 0.0s
"""


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "bin" / "docker"
    path.parent.mkdir()
    path.write_text(FAKE_CLIENT.format(python=sys.executable))
    path.chmod(0o755)
    monkeypatch.setenv("FAKE_ARGS", str(tmp_path / "args"))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "log"))
    (tmp_path / "log").write_text(SUCCESS)
    return path


def job(tmp_path: Path, **changes: object) -> BuildJob:
    context = tmp_path / "ctx"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text("FROM busybox\nRUN <<EOT\necho hi\nEOT\n")
    values: dict[str, object] = {"context": context, "dockerfile": "Dockerfile", "display": "ctx/Dockerfile"}
    values["tag"] = "pytest-slimimage/x:1"
    values.update(changes)
    return BuildJob(**values)  # type: ignore[arg-type]


def test_the_client_is_found_on_path_then_usr_bin(client: Path) -> None:
    found = candidate_clients({"PATH": f"{client.parent}:/nowhere"})
    assert found[0] == str(client)
    assert found[1:] in ([], ["/usr/bin/docker"])


def test_the_command_line(client: Path, tmp_path: Path) -> None:
    builder = BuildKitBuilder(BuilderChoice("buildkit", str(client)))
    secret = tmp_path / "token"
    the_job = job(
        tmp_path,
        target="build",
        build_args={"A": "1 2"},
        secrets={"token": secret},
        platform="linux/arm64",
        no_cache=True,
        labels={"k": "v"},
    )
    assert builder.argv(the_job, "/tmp/iid") == [
        str(client), "build", "--progress=plain", "--iidfile", "/tmp/iid", "-t", "pytest-slimimage/x:1",
        "-f", str(tmp_path / "ctx" / "Dockerfile"), "--target", "build", "--build-arg", "A=1 2",
        "--label", "k=v", "--secret", f"id=token,src={secret}", "--platform", "linux/arm64", "--no-cache",
        str(tmp_path / "ctx"),
    ]  # fmt: skip
    buildx = BuildKitBuilder(BuilderChoice("buildkit", str(client), buildx=True, buildx_builder="remote"))
    assert buildx.argv(job(tmp_path), "/i")[:5] == [str(client), "buildx", "build", "--load", "--builder"]
    assert buildx.name == "buildkit:remote"


def test_a_build_reports_each_step_once_then_done(client: Path, tmp_path: Path) -> None:
    events: list[BuildProgress] = []
    outcome = BuildKitBuilder(BuilderChoice("buildkit", str(client))).build(job(tmp_path, progress=events.append))
    assert (outcome.image_id, outcome.builder) == ("sha256:" + "ab" * 32, "buildkit")
    assert outcome.log == SUCCESS
    assert events == [
        BuildProgress("ctx/Dockerfile", 1, 3, "[build] FROM docker.io/library/busybox:latest"),
        BuildProgress("ctx/Dockerfile", 2, 3, "[build] RUN echo one"),
        BuildProgress("ctx/Dockerfile", 3, 3, "[build] RUN echo two"),
        BuildProgress("ctx/Dockerfile", 1, 1, "[stage-1] COPY --from=build /a /a"),
        BuildProgress("ctx/Dockerfile", done=True),
    ]


def test_a_failed_build_names_the_cause(client: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CODE", "1")
    (tmp_path / "log").write_text(HEREDOC)
    events: list[BuildProgress] = []
    with pytest.raises(ImageBuildError) as raised:
        BuildKitBuilder(BuilderChoice("buildkit", str(client))).build(job(tmp_path, progress=events.append))
    assert str(raised.value).splitlines()[0] == (
        "building ctx/Dockerfile failed: " + TOO_OLD.format(what="heredocs (line 2: RUN <<EOT)")
    )
    assert raised.value.log == HEREDOC
    assert events == [BuildProgress("ctx/Dockerfile", done=True)]


def test_a_failures_cause_is_read_from_the_jobs_parsed_dockerfile(
    client: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session hands the builder the Dockerfile it parsed (here one whose heredoc is on line 3, the
    file's is on line 2); without it the builder parses the file; a file it cannot parse names no cause."""
    monkeypatch.setenv("FAKE_CODE", "1")
    (tmp_path / "log").write_text(HEREDOC)
    builder = BuildKitBuilder(BuilderChoice("buildkit", str(client)))
    model = parsed("FROM busybox\n\nRUN <<EOT\necho hi\nEOT\n")
    with pytest.raises(ImageBuildError) as raised:
        builder.build(job(tmp_path, parsed=model))
    assert str(raised.value).splitlines()[0].endswith(TOO_OLD.format(what="heredocs (line 3: RUN <<EOT)"))
    assert job(tmp_path).dockerfile_model() == parse_dockerfile(tmp_path / "ctx" / "Dockerfile", label="ctx/Dockerfile")
    unparsed = job(tmp_path)
    (tmp_path / "ctx" / "Dockerfile").write_text("RUN <<EOT\necho hi\nEOT\n")  # no FROM: not a Dockerfile
    with pytest.raises(ImageBuildError) as raised:
        builder.build(unparsed)
    assert str(raised.value).splitlines()[:2] == [
        "building ctx/Dockerfile failed: " + buildkit_failure(HEREDOC)[0],
        "  build log (last lines):",
    ]


def test_a_build_over_its_time_limit_is_stopped(client: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_SLEEP", "60")
    (tmp_path / "log").write_text("#5 [2/3] RUN sleep 60\n")
    with pytest.raises(ImageBuildError) as raised:
        BuildKitBuilder(BuilderChoice("buildkit", str(client))).build(job(tmp_path, timeout=0.5))
    assert str(raised.value).splitlines()[:2] == [
        "building ctx/Dockerfile failed: the build exceeded 0.5 s (the docker client was stopped, which cancels it"
        " on the engine)",
        "  stopped at step: #5 [2/3] RUN sleep 60",
    ]


def test_an_engine_that_does_not_answer(client: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_CODE", "1")
    (tmp_path / "log").write_text("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\n")
    with pytest.raises(EngineUnavailable, match="the engine stopped answering during the build of ctx/Dockerfile"):
        BuildKitBuilder(BuilderChoice("buildkit", str(client))).build(job(tmp_path))


def test_a_legacy_choice_is_not_a_buildkit_builder() -> None:
    with pytest.raises(ValueError, match="not a BuildKit choice"):
        BuildKitBuilder(BuilderChoice("legacy"))
