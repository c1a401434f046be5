"""BuildKit builds through a docker client: ``docker buildx build --load`` or, with a client that
runs BuildKit itself, ``DOCKER_BUILDKIT=1 docker build``; and the probe that asks a client what
it can do (:func:`probe_client`), for :func:`~pytest_slimimage.engine.builderchoice.choose`.

The client talks to the engine docker-py uses: it inherits the environment (``DOCKER_HOST``,
``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``). Secrets are handed to the client as file paths
(``--secret id=ID,src=PATH``); the plugin never reads or writes their contents.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from pytest_slimimage.engine.builder import BuildJob, BuildOutcome, BuildProgress
from pytest_slimimage.engine.builderchoice import BuilderChoice, ClientProbe
from pytest_slimimage.engine.buildlog import (
    ANSI_ESCAPE,
    buildkit_failure,
    buildkit_step,
    diagnose,
    failure_text,
    last_buildkit_step,
    step_output,
    timeout_text,
)
from pytest_slimimage.errors import EngineUnavailable, ImageBuildError

__all__ = ["BuildKitBuilder", "candidate_clients", "probe_client"]

PROBE_TIMEOUT = 20.0
"""Seconds a client may take to say its version (it does not contact the engine)."""
_ENGINE_GONE = ("Cannot connect to the Docker daemon", "error during connect")


def candidate_clients(env: Mapping[str, str] | None = None) -> list[str]:
    """Every ``docker`` executable on ``PATH``, in order, then ``/usr/bin/docker``; one per real file."""
    env = os.environ if env is None else env
    found: list[str] = []
    seen: set[str] = set()
    dirs = [d for d in env.get("PATH", os.defpath).split(os.pathsep) if d]
    for candidate in [*(os.path.join(d, "docker") for d in dirs), "/usr/bin/docker"]:
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        real = os.path.realpath(candidate)
        if real not in seen:
            seen.add(real)
            found.append(candidate)
    return found


def _ask(argv: Sequence[str], env: Mapping[str, str]) -> tuple[int, str]:
    try:
        proc = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            env=dict(env),
            timeout=PROBE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return -1, f"no answer within {PROBE_TIMEOUT:g} s"
    except OSError as exc:
        return -1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def probe_client(path: str, env: Mapping[str, str] | None = None) -> ClientProbe:
    """Ask the client at ``path`` ``buildx version``, then (without buildx) ``--version``."""
    env = os.environ if env is None else env
    code, out = _ask([path, "buildx", "version"], env)
    if code == 0 and out:
        return ClientProbe(path, None, buildx=out.splitlines()[0].strip())
    said = _last_line(out)
    code, out = _ask([path, "--version"], env)
    if code != 0:
        return ClientProbe(path, None, said=_last_line(out) or f"exit code {code}")
    version = out.split(",")[0].removeprefix("Docker version").strip() if out else ""
    return ClientProbe(path, version or out, said=said)


def _shown(job: BuildJob) -> str:
    """The build as messages name it: the Dockerfile, and the platform asked for (``for linux/arm64``)."""
    return f"{job.display} for {job.platform}" if job.platform else job.display


class BuildKitBuilder:
    """Builds with BuildKit through the docker client ``choice`` names."""

    def __init__(self, choice: BuilderChoice, env: Mapping[str, str] | None = None) -> None:
        if choice.kind != "buildkit" or not choice.client:
            raise ValueError(f"not a BuildKit choice: {choice!r}")
        self.choice = choice
        self.client: str = choice.client
        self.env = dict(os.environ if env is None else env)

    @property
    def name(self) -> str:
        return self.choice.name

    def __repr__(self) -> str:
        return f"<BuildKitBuilder {self.choice.describe()}>"

    def argv(self, job: BuildJob, iidfile: str) -> list[str]:
        """The client's command line for ``job`` (secrets as paths: the client reads them)."""
        choice = self.choice
        argv = [self.client]
        if choice.buildx:
            argv += ["buildx", "build", "--load"]
            if choice.buildx_builder:
                argv += ["--builder", choice.buildx_builder]
        else:
            argv += ["build"]
        dockerfile = Path(job.dockerfile)
        if not dockerfile.is_absolute():
            dockerfile = job.context / dockerfile
        argv += ["--progress=plain", "--iidfile", iidfile, "-t", job.tag, "-f", str(dockerfile)]
        if job.target:
            argv += ["--target", job.target]
        for key, value in job.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        for key, value in job.labels.items():
            argv += ["--label", f"{key}={value}"]
        for secret, path in job.secrets.items():
            argv += ["--secret", f"id={secret},src={path}"]
        if job.platform:
            argv += ["--platform", job.platform]
        if job.no_cache:
            argv += ["--no-cache"]
        argv.append(str(job.context))
        return argv

    def build(self, job: BuildJob) -> BuildOutcome:
        """Run the client; a failure raises :class:`ImageBuildError` with the failing step and the
        cause when the log shows a known one, a build over ``job.timeout`` kills the client."""
        with tempfile.TemporaryDirectory(prefix="slimimage-build-") as tmp:
            iidfile = os.path.join(tmp, "iid")
            argv = self.argv(job, iidfile)
            env = {**self.env, "DOCKER_BUILDKIT": "1"}
            log: list[str] = []
            try:
                code = self._run(argv, env, job, log)
            finally:
                if job.progress is not None:
                    job.progress(BuildProgress(job.display, done=True))
            text = "".join(log)
            if code != 0:
                raise self._failure(job, text)
            try:
                image_id = Path(iidfile).read_text(encoding="utf-8").strip()
            except OSError:
                image_id = ""
        if not image_id:
            raise ImageBuildError(failure_text(_shown(job), "the client wrote no image id", text), log=text)
        return BuildOutcome(image_id, text, self.name)

    def _run(self, argv: list[str], env: Mapping[str, str], job: BuildJob, log: list[str]) -> int:
        """Run ``argv``, collecting its output into ``log`` and reporting steps; the exit code."""
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=dict(env),
                cwd=str(job.context),
                start_new_session=True,  # its own process group: a timeout kills the client and its helpers
            )
        except OSError as exc:
            raise ImageBuildError(f"building {_shown(job)} failed: cannot run {argv[0]}: {exc}") from None
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
        reader.start()
        deadline = None if job.timeout is None else time.monotonic() + job.timeout
        seen: set[str] = set()
        try:
            while True:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise self._timed_out(job, proc, log)
                try:
                    line = lines.get(timeout=remaining)
                except queue.Empty:
                    continue
                if line is None:
                    break
                log.append(line)
                self._report(job, line, seen)
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return proc.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                raise self._timed_out(job, proc, log) from None
        finally:
            if proc.poll() is None:
                _kill(proc)
            reader.join(timeout=5)
            if proc.stdout is not None:
                proc.stdout.close()

    @staticmethod
    def _report(job: BuildJob, line: str, seen: set[str]) -> None:
        if job.progress is None:
            return
        step = buildkit_step(line)
        if step is None:
            return
        vertex = line.split(" ", 1)[0]
        if vertex in seen:  # plain progress repeats a step's header when its output resumes
            return
        seen.add(vertex)
        instruction = f"[{step.stage}] {step.instruction}" if step.stage else step.instruction
        job.progress(BuildProgress(job.display, step=step.step, steps=step.steps, instruction=instruction))

    def _timed_out(self, job: BuildJob, proc: subprocess.Popen[bytes], log: list[str]) -> ImageBuildError:
        _kill(proc)
        text = "".join(log)
        step = buildkit_failure(text)[1] or last_buildkit_step(text)
        how = "the docker client was stopped, which cancels it on the engine"
        tail = step_output(text, step) if step else None
        message = timeout_text(_shown(job), job.timeout or 0, how, text, step=step, tail=tail)
        return ImageBuildError(message, log=text, step=step)

    def _failure(self, job: BuildJob, text: str) -> ImageBuildError | EngineUnavailable:
        error, step = buildkit_failure(text)
        if any(marker in text for marker in _ENGINE_GONE):
            return EngineUnavailable(f"the engine stopped answering during the build of {_shown(job)}: {error}")
        cause = diagnose("buildkit", error, text, job.dockerfile_model())
        tail = step_output(text, step) if step else None  # the step's own lines: timings and transfers vary
        message = failure_text(_shown(job), error, text, step=step, cause=cause, tail=tail)
        return ImageBuildError(message, log=text, step=step)


def _pump(proc: subprocess.Popen[bytes], lines: queue.Queue[str | None]) -> None:
    """Move the client's output to ``lines``, a line at a time; None at its end."""
    try:
        with contextlib.suppress(ValueError, OSError):  # closed under us after a timeout
            for raw in proc.stdout or ():
                lines.put(ANSI_ESCAPE.sub("", raw.decode("utf-8", errors="replace")).replace("\r", ""))
    finally:
        lines.put(None)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
