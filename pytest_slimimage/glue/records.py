"""What the checks said about each image of the session: :class:`ImageRecords`, fed every verdict
(marker, declarative item, ``assert_*`` helper) through :meth:`ImageRecords.observe`, merged
with an xdist controller's workers' records, for the terminal table and the report files."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_slimimage.analysis.secrets import mask_text
from pytest_slimimage.baseline import BaselineEntry
from pytest_slimimage.checks.registry import REGISTRY
from pytest_slimimage.checks.result import CheckResult
from pytest_slimimage.errors import SlimImageError
from pytest_slimimage.report import ImageRecord, merge_records

if TYPE_CHECKING:  # the engine side (docker-py) is imported when a test first needs an image
    from pytest_slimimage.engine.image import BuiltImage

__all__ = ["ImageRecords"]


class ImageRecords:
    """One :class:`ImageRecord` per image name of this process, and the workers' (xdist).

    ``baseline_entry`` gives an image's size baseline entry (raising when the baseline cannot be
    read); it is asked only when ``has_baseline``.
    """

    def __init__(self, baseline_entry: Callable[[str], BaselineEntry | None], *, has_baseline: bool) -> None:
        self._baseline_entry = baseline_entry
        self._has_baseline = has_baseline
        self.records: dict[str, ImageRecord] = {}
        self.worker_records: list[ImageRecord] = []
        self.checks = 0
        self.failed = 0

    def record(self, image: BuiltImage) -> ImageRecord:
        """The record of ``image`` (a new one when its name now stands for another image)."""
        record = self.records.get(image.name)
        if record is None or record.id != image.id:
            record = ImageRecord(
                name=image.name,
                id=image.id,
                size=image.size,
                final_base=image.dockerfile.final_base if image.has_dockerfile else "",
                dockerfile=image.dockerfile.path if image.has_dockerfile else "",
                builder=image.builder,
                platform=image.platform,
                layers=[
                    {"instruction": mask_text(la.instruction), "size": la.size, "from_base": la.from_base}
                    for la in image.layers
                    if la.size
                ],
            )
            self.records[image.name] = record
        if record.baseline_size is None and self._has_baseline:
            try:
                entry = self._baseline_entry(image.name)
            except SlimImageError:
                entry = None
            record.baseline_size = entry.size if entry is not None else None
        return record

    def observe(self, image: BuiltImage, result: CheckResult) -> None:
        """Every check verdict on a built image comes here (marker, declarative item, assert_*)."""
        record = self.record(image)
        self.checks += 1
        if not result.passed:
            self.failed += 1
            record.failures.setdefault(result.check, result.headline)
        if record.checks.get(result.check) != "failed":
            record.checks[result.check] = "passed" if result.passed else "failed"
        check = REGISTRY.get(result.check) if result.check in REGISTRY else None
        if check is not None:
            record.set_columns(check.record(result))

    def all(self, images: Iterable[BuiltImage] = ()) -> list[ImageRecord]:
        """This process's records, ``images`` built but never checked included, plus its workers'."""
        own = list(self.records.values())
        for image in images:
            if image.name not in self.records:
                own.append(self.record(image))
        return merge_records([*own, *self.worker_records])

    def merge_worker(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Add a worker's records, as its payload carries them (JSON)."""
        self.worker_records.extend(ImageRecord.from_json(r) for r in records)
