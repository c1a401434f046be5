"""Where layers are read from, decided without an engine: the overlay2 storage only for a local
engine whose overlay2 store this process can read, the export otherwise; a forced ``storage``
that cannot be used, and a bad ``SLIMIMAGE_LAYER_SOURCE``, are errors with exact texts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_slimimage.engine.health import EngineWatch
from pytest_slimimage.engine.layerread import LayerReader
from pytest_slimimage.engine.layersource import (
    LAYER_SOURCE_ENV,
    LOCAL_ENGINE_URL,
    STORAGE_UNREADABLE,
    storage_root,
)
from pytest_slimimage.errors import SlimImageError

ROOT = Path("/var/lib/docker")
OVERLAY2 = {"Driver": "overlay2", "DockerRootDir": str(ROOT)}
NEEDED = [ROOT / "image" / "overlay2" / "layerdb" / "sha256", ROOT / "overlay2"]


def readable(path: Path) -> bool:
    return True


def unreadable(path: Path) -> bool:
    return False


def never_asked(path: Path) -> bool:
    raise AssertionError(f"the disk was looked at: {path}")


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LAYER_SOURCE_ENV, raising=False)


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:2375", "https://builder:2376", "http+docker://ssh", "npipe"])
@pytest.mark.parametrize("source", [None, "auto"])
def test_a_tcp_or_ssh_engine_is_read_from_the_export(base_url: str, source: str | None) -> None:
    """Its storage is another machine's disk, even when a path of the same name is readable here."""
    assert storage_root(source, base_url=base_url, info=OVERLAY2, accessible=never_asked) is None


def test_a_local_overlay2_engine_whose_store_is_readable_is_read_from_the_storage() -> None:
    asked: list[Path] = []

    def accessible(path: Path) -> bool:
        asked.append(path)
        return True

    assert storage_root("auto", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=accessible) == ROOT
    assert asked == NEEDED
    assert storage_root("storage", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=readable) == ROOT
    assert storage_root(None, base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=readable) == ROOT


@pytest.mark.parametrize(
    "info",
    [
        {"Driver": "vfs", "DockerRootDir": str(ROOT)},
        {"Driver": "btrfs", "DockerRootDir": str(ROOT)},
        {"Driver": "overlay2", "DockerRootDir": ""},
        {"Driver": "overlay2", "DockerRootDir": "relative/docker"},
        {"Driver": "overlay2"},
        {},
        None,  # the engine did not answer
    ],
    ids=["vfs", "btrfs", "no-root", "relative-root", "root-missing", "empty", "no-info"],
)
def test_another_driver_or_no_usable_root_is_read_from_the_export(info: dict[str, Any] | None) -> None:
    assert storage_root("auto", base_url=LOCAL_ENGINE_URL, info=info, accessible=never_asked) is None


def test_an_unreadable_store_is_read_from_the_export() -> None:
    """A rootless user, a store readable only by root: ``auto`` falls back silently."""
    assert storage_root("auto", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=unreadable) is None
    half = storage_root("auto", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=lambda p: p == NEEDED[0])
    assert half is None


def test_export_is_chosen_without_looking_at_the_engine_or_the_disk() -> None:
    assert storage_root("export", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=never_asked) is None


@pytest.mark.parametrize(
    ("base_url", "info", "accessible"),
    [
        (LOCAL_ENGINE_URL, OVERLAY2, unreadable),
        ("http://127.0.0.1:2375", OVERLAY2, readable),
        (LOCAL_ENGINE_URL, {"Driver": "vfs", "DockerRootDir": str(ROOT)}, readable),
        (LOCAL_ENGINE_URL, None, readable),
    ],
    ids=["unreadable", "tcp", "vfs", "no-info"],
)
def test_forced_storage_that_cannot_be_used_is_an_error(
    base_url: str, info: dict[str, Any] | None, accessible: Any
) -> None:
    with pytest.raises(SlimImageError) as raised:
        storage_root("storage", base_url=base_url, info=info, accessible=accessible)
    assert str(raised.value) == STORAGE_UNREADABLE == "the engine's overlay2 storage is not readable from this process"


def test_the_environment_variable_chooses_and_an_explicit_source_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAYER_SOURCE_ENV, "export")
    assert storage_root(None, base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=never_asked) is None
    assert storage_root("auto", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=readable) == ROOT
    monkeypatch.setenv(LAYER_SOURCE_ENV, " Storage ")
    with pytest.raises(SlimImageError) as raised:
        storage_root(None, base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=unreadable)
    assert str(raised.value) == STORAGE_UNREADABLE


def test_a_bad_environment_value_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(LAYER_SOURCE_ENV, "disk")
    with pytest.raises(SlimImageError) as raised:
        storage_root(None, base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=readable)
    assert str(raised.value) == "SLIMIMAGE_LAYER_SOURCE must be one of auto, export, storage (got 'disk')"


def test_a_bad_explicit_value_is_an_error() -> None:
    with pytest.raises(SlimImageError) as raised:
        storage_root("Overlay", base_url=LOCAL_ENGINE_URL, info=OVERLAY2, accessible=readable)
    assert str(raised.value) == "SLIMIMAGE_LAYER_SOURCE must be one of auto, export, storage (got 'overlay')"


# ------------------------------------------------------------------- the reader, on a fake engine
class RemoteEngine:
    """An engine on another machine: it answers inspect and info; its export is never wanted here."""

    base_url = "http://127.0.0.1:2375"

    def __init__(self) -> None:
        self.info_calls = 0
        self.watch = EngineWatch("tcp://127.0.0.1:2375", ping=lambda timeout: None)

    def inspect(self, image: str) -> dict[str, Any]:
        return {"RootFS": {"Type": "layers", "Layers": ["sha256:" + "ab" * 32]}}

    def info(self) -> dict[str, Any] | None:
        self.info_calls += 1
        return dict(OVERLAY2)

    def export(self, image: str) -> Iterator[bytes]:
        raise AssertionError("the export was read")


def test_forced_storage_on_a_remote_engine_names_the_image_and_the_reason() -> None:
    engine = RemoteEngine()
    reader = LayerReader(engine)  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(SlimImageError) as raised:
            reader.index_layers("app:1", source="storage")
        assert str(raised.value) == (
            "cannot read the layers of app:1 from the engine's storage (layer source 'storage'):"
            " the engine's overlay2 storage is not readable from this process"
        )
    assert engine.info_calls == 1  # asked once per reader
    assert reader.storage_root() is None
