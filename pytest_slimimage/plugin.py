"""The pytest11 entry point (plugin name ``slimimage``): every hook and fixture of the plugin, gathered
from the glue modules, plus the session's lifecycle."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from pytest_slimimage.checks.registry import REGISTRY, marker_help
from pytest_slimimage.glue.items import DeclarationsFile, wants
from pytest_slimimage.glue.session import SlimImageSession
from pytest_slimimage.glue.settings import Settings
from pytest_slimimage.glue.state import SESSION_KEY
from pytest_slimimage.owner import Owner
from pytest_slimimage.report import terminal_lines

if TYPE_CHECKING:  # docker-py and the engine side load when a test first needs an image
    pass


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", marker_help())
    settings = Settings.from_config(config)
    rootdir = Path(str(config.rootpath))
    cache = getattr(config, "cache", None)  # None under -p no:cacheprovider
    cache_dir = cache.mkdir("slimimage-layers") if cache is not None else None
    workerinput = getattr(config, "workerinput", None)  # set by xdist on its workers
    if isinstance(workerinput, dict) and isinstance(workerinput.get("slimimage"), dict):
        shared = workerinput["slimimage"]
        state = SlimImageSession(
            settings,
            rootdir,
            role="worker",
            token=str(shared["token"]),
            worker=f"{shared['token']}-{workerinput.get('workerid', 'gw')}",
            shared_dir=Path(str(shared["shared_dir"])),
            cache_dir=cache_dir,
            owner=Owner.parse(str(shared.get("owner") or "")),  # the controller removes the folder
        )
    else:
        controller = getattr(config.option, "dist", "no") != "no" and not getattr(config.option, "collectonly", False)
        token = uuid.uuid4().hex[:10]
        state = SlimImageSession(
            settings,
            rootdir,
            role="controller" if controller else "single",
            token=token,
            shared_dir=None,  # made by the first build that needs it: a session that builds nothing makes nothing
            cache_dir=cache_dir,
        )
    config.stash[SESSION_KEY] = state
    state.signals.install()  # SIGTERM, SIGHUP: an orderly end, as on Ctrl-C


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: give every worker the run's token and the folder for shared builds."""
    state = node.config.stash[SESSION_KEY]
    node.workerinput["slimimage"] = {
        "token": state.token,
        "shared_dir": str(state.shared_dir),
        "owner": str(state.owner),
    }


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if wants(file_path, parent.config):
        return DeclarationsFile.from_parent(parent, path=file_path)
    return None


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = config.stash.get(SESSION_KEY, None)
    if state is None:
        return
    state.finish(exitstatus=int(session.exitstatus))
    workeroutput = getattr(config, "workeroutput", None)  # set by xdist on its workers
    if isinstance(workeroutput, dict):
        workeroutput["slimimage"] = state.worker_payload()
    if state.signals.exit_status is not None:  # ended by SIGTERM or SIGHUP: 128 + its number
        session.exitstatus = state.signals.exit_status


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Called once when a session's plugin manager registers this plugin, before any conftest is
    imported: the checks that session's conftests register are its own from here on."""
    REGISTRY.begin_session()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Checks registered by this session's conftests go with it (the next in-process session,
    as under pytester, registers its own); the signal handlers the session installed go too."""
    REGISTRY.end_session()
    state = config.stash.get(SESSION_KEY, None)
    if state is not None:
        state.signals.restore()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """xdist controller: add a finished worker's figures and image records to the session's."""
    state = node.config.stash.get(SESSION_KEY, None)
    data = getattr(node, "workeroutput", {}).get("slimimage")
    if state is not None and isinstance(data, dict):
        state.merge_worker(data)


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    state = config.stash.get(SESSION_KEY, None)
    if state is None or state.role == "worker":
        return
    records = state.all_records()
    verbosity = config.get_verbosity()
    if records and verbosity >= -1:
        terminalreporter.section("slimimage", sep="-", bold=True)
        for line in terminal_lines(records, verbose=verbosity >= 0):
            terminalreporter.write_line(line)
    for line in state.summary.lines(keep_images=state.settings.keep_images):
        terminalreporter.write_line(line)


from pytest_slimimage.glue.archives import (  # noqa: E402
    archive_fixture,
    pytest_generate_tests,
    slimimage_archive,
)
from pytest_slimimage.glue.failures import (  # noqa: E402
    pytest_report_from_serializable,
    pytest_report_to_serializable,
    pytest_runtest_makereport,
)
from pytest_slimimage.glue.fixtures import (  # noqa: E402
    existing_image_fixture,
    image_fixture,
    slimimage_build,
    slimimage_image,
)
from pytest_slimimage.glue.marker import (  # noqa: E402
    pytest_collection_modifyitems,
    pytest_pycollect_makeitem,
    pytest_runtest_call,
    pytest_runtest_setup,
)
from pytest_slimimage.glue.options import pytest_addoption  # noqa: E402
from pytest_slimimage.glue.progress import pytest_sessionstart  # noqa: E402

__all__ = [
    "archive_fixture",
    "existing_image_fixture",
    "image_fixture",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_node",
    "pytest_generate_tests",
    "pytest_pycollect_makeitem",
    "pytest_report_from_serializable",
    "pytest_report_to_serializable",
    "pytest_runtest_call",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "pytest_sessionstart",
    "pytest_terminal_summary",
    "pytest_testnodedown",
    "pytest_unconfigure",
    "slimimage_archive",
    "slimimage_build",
    "slimimage_image",
]
