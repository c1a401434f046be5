"""Every registered check is reachable three ways — the ``slimimage`` marker, its ``assert_<name>``
helper and a declarative table — and says the same thing each way.

The registry is walked, not listed: a check added to it without a failing value here fails
``test_every_builtin_check_has_a_failing_value``. One inner pytest session on a real engine runs
each check through each form against one image built to fail them all, and records the text each
failure (or, for ``warn_size``, each warning) carried.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from pytest_slimimage.checks.registry import BUILTINS, REGISTRY

pytestmark = pytest.mark.usefixtures("docker_client")

# busybox with 64 kB written then deleted (waste), an executable named gcc (a compiler by name), a
# shell-form CMD (exec_form, lint SI002) whose program does not exist (runnable, runs), FROM ...:latest
# (final_base is not scratch; lint SI004); busybox alone compresses to more than 1 kB (max_pull_size);
# the date written into a file (reproducible); busybox's sh applet (no_shell), its dpkg and rpm applets
# (no_package_manager), no USER (non_root), the fake gcc made setuid (no_setuid), and an SSH key in
# random bytes written with the junk and deleted with it (no_secrets: still shipped); the missing
# program exits at once, before its port answers (serves) or its HEALTHCHECK runs (healthy).
DOCKERFILE = """\
FROM busybox:latest
RUN dd if=/dev/zero of=/junk bs=1024 count=64 2>/dev/null && mkdir -p /root/.ssh \\
    && (echo '-----BEGIN OPENSSH PRIVATE KEY-----'; head -c 300 /dev/urandom | base64) >/root/.ssh/id_ed25519
RUN rm /junk /root/.ssh/id_ed25519 && mkdir -p /usr/local/bin \\
    && printf '#!/bin/sh\\necho not really\\n' >/usr/local/bin/gcc && chmod 4755 /usr/local/bin/gcc
RUN date +%s%N > /built-at
HEALTHCHECK --interval=1s --retries=1 CMD ["/app", "--health"]
CMD /app --registry-walk
"""

FAILING: dict[str, Any] = {
    "max_size": "1kB",
    "warn_size": "1kB",  # never fails: its warning text is compared instead
    "max_growth": "1%",  # against a baseline of 1 byte
    "final_base": "scratch",
    "exec_form": True,
    "no_compilers": True,
    "no_shell": True,
    "no_package_manager": True,
    "non_root": True,
    "no_setuid": True,
    "no_secrets": True,
    "lint": True,
    "runnable": True,
    "max_waste": 0,
    "max_pull_size": "1kB",
    "reproducible": True,
    "runs": True,
    "serves": 8080,
    "healthy": True,
}
"""A value each built-in check fails with on the image above."""

CONFTEST = """
import json
import warnings
from pathlib import Path

import pytest

from pytest_slimimage import SlimImageWarning, image_fixture

every = image_fixture("every")
TEXTS = {}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if call.when == "call" and call.excinfo is not None:
        TEXTS.setdefault(item.nodeid, str(call.excinfo.value))
    return report


def pytest_warning_recorded(warning_message, when, nodeid, location):
    if issubclass(warning_message.category, SlimImageWarning):
        TEXTS.setdefault(nodeid, str(warning_message.message))


def pytest_sessionfinish(session):
    Path("texts.json").write_text(json.dumps(TEXTS, indent=1))
"""


def _value(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else repr(value)


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else str(value).lower()


def test_every_builtin_check_has_a_failing_value() -> None:
    assert [check.name for check in BUILTINS] == list(FAILING)
    assert [check.name for check in REGISTRY if check.builtin] == list(FAILING)


def test_marker_helper_and_table_say_the_same(pytester: pytest.Pytester) -> None:
    context = pytester.mkdir("every")
    (context / "Dockerfile").write_text(DOCKERFILE)
    (pytester.path / "baseline.json").write_text(
        json.dumps({"version": 1, "images": {"every": {"size": 1, "layers": []}}})
    )
    pytester.makeconftest(CONFTEST)
    table = "\n".join(f"{name} = {_toml(value)}" for name, value in FAILING.items())
    pytester.makefile(".toml", pyproject=f'[tool.slimimage.images.every]\ncontext = "every"\n{table}\n')
    tests = ["import pytest", "import pytest_slimimage as si", ""]
    for check in BUILTINS:
        value = _value(FAILING[check.name])
        tests += [
            f"@pytest.mark.slimimage({check.name}={value})",
            f"def test_marker_{check.name}(every):",
            "    pass",
            "",
            f"def test_helper_{check.name}(every):",
            f"    si.{check.helper_name}(every{'' if FAILING[check.name] == check.helper_default else ', ' + value})",
            "",
            f"def test_assert_check_{check.name}(every):",
            f"    si.assert_check(every, {check.name!r}, {value})",
            "",
        ]
    pytester.makepyfile(test_walk="\n".join(tests))

    result = pytester.runpytest("-p", "no:randomly", "--slimimage-baseline", "baseline.json", "-W", "default")
    texts: dict[str, str] = json.loads((pytester.path / "texts.json").read_text())

    for check in BUILTINS:
        forms = {
            "marker": texts.get(f"test_walk.py::test_marker_{check.name}"),
            "helper": texts.get(f"test_walk.py::test_helper_{check.name}"),
            "assert_check": texts.get(f"test_walk.py::test_assert_check_{check.name}"),
            "table": texts.get(f"pyproject.toml::every::{check.name}"),
        }
        assert all(forms.values()), (check.name, forms, result.stdout.str())
        assert len(set(forms.values())) == 1, (check.name, forms)
        text = forms["marker"] or ""
        if check.name == "warn_size":
            assert text.startswith("every: ") and text.endswith("(warn_size; not a failure)"), text
        else:
            assert text.startswith(f"every: {check.name}: "), text
            assert "\n  hint: " in text, text  # a failure: headline, evidence, one hint
    outcome = result.parseoutcomes()
    assert outcome.get("failed") == 4 * (len(BUILTINS) - 1), result.stdout.str()
    assert outcome.get("passed") == 4, result.stdout.str()  # warn_size, four ways
