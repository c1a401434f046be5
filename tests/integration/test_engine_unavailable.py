"""Without an engine the integration tests skip with one reason, and ERROR when it is required
(``CI`` set, or ``--slimimage-require-engine``): a CI run must never pass by skipping them.

Each case runs one module of this folder in a subprocess whose ``DOCKER_HOST`` points nowhere
(``-vv``: the short summary keeps whole lines).
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest

from tests.integration.conftest import ROOT, clean_env

MODULE = "tests/integration/test_assertions.py"


def run_without_engine(*args: str, ci: bool) -> tuple[subprocess.CompletedProcess[str], str]:
    host = f"unix:///nonexistent-{uuid.uuid4().hex[:8]}/docker.sock"
    env = clean_env()
    env.pop("CI", None)
    env["DOCKER_HOST"] = host
    if ci:
        env["CI"] = "true"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", MODULE, "-p", "no:cacheprovider", "-vv", "-rsE", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, host


def outcomes(stdout: str) -> dict[str, int]:
    last = stdout.strip().splitlines()[-1]
    return {outcome: int(n) for n, outcome in re.findall(r"(\d+) (passed|failed|skipped|errors?|xfailed)", last)}


def test_skips_with_one_reason() -> None:
    proc, host = run_without_engine(ci=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    counts = outcomes(proc.stdout)
    assert set(counts) == {"skipped"} and counts["skipped"] > 10, proc.stdout
    reasons = {line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("SKIPPED [")}
    assert len(reasons) == 1, reasons
    (reason,) = reasons
    assert reason.startswith(f"slimimage integration tests need a Docker engine; none answers at {host}: ")
    assert reason.endswith("(set CI or pass --slimimage-require-engine to make this an error)")


@pytest.mark.parametrize(
    ("args", "ci"), [((), True), (("--slimimage-require-engine",), False)], ids=["CI", "require-engine"]
)
def test_errors_when_the_engine_is_required(args: tuple[str, ...], ci: bool) -> None:
    proc, host = run_without_engine(*args, ci=ci)
    assert proc.returncode == pytest.ExitCode.TESTS_FAILED, proc.stdout + proc.stderr
    counts = outcomes(proc.stdout)
    assert set(counts) <= {"error", "errors"} and sum(counts.values()) > 10, proc.stdout
    assert "SKIPPED" not in proc.stdout
    errors = [line for line in proc.stdout.splitlines() if line.startswith("ERROR ")]
    assert len(errors) == sum(counts.values())
    assert all(f"none answers at {host}" in line for line in errors), errors
    assert "(required: CI is set or --slimimage-require-engine was given)" in proc.stdout
