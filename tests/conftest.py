"""Suite-wide settings. A CI run must never pass by skipping: with CI set, any skip fails it."""

from __future__ import annotations

import os

import pytest

pytest_plugins = ["pytester"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = terminalreporter.stats.get("skipped", [])
    if os.environ.get("CI") and skipped and not hasattr(config, "workerinput"):
        terminalreporter.write_line(
            f"CI: {len(skipped)} test(s) skipped; in CI every test must run (see the skip reasons above)", red=True
        )


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or hasattr(session.config, "workerinput"):
        return
    if os.environ.get("CI") and reporter.stats.get("skipped") and exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
