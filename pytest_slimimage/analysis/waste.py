"""Wasted bytes: what an image's layers store that its final filesystem no longer shows.

A layer is a tar applied over the layers below it. When a later layer overwrites a file, deletes
it (a ``.wh.<name>`` whiteout, of the file or of a directory above it) or hides it (a
``.wh..wh..opq`` opaque directory), the bytes stay in the layer that wrote them: they are
pushed, pulled and stored, and nothing in the running container can read them.

Definitions. Every figure counts regular-file bytes (the ``size`` of ``file`` entries);
directories, symlinks, devices and hard links weigh 0, a hard link sharing the bytes of the file
it names.

- A *copy* is one layer's write of one path; ``total_bytes`` sums every copy of every layer.
- A copy is *wasted* when no path of the final filesystem reaches it any more: a later layer
  overwrote, deleted or hid it (and no hard link to it survives).
- So a path written in N layers and present at the end wastes its first N-1 copies (the copy
  the image ends with is not waste; dive counted all N, its issue #684), and a path deleted or
  hidden wastes every copy written below the deletion.
- ``wasted_bytes`` sums the wasted copies; ``total_bytes - wasted_bytes`` is what the final
  filesystem holds.
- ``efficiency = 1 - wasted_bytes / total_bytes`` (1.0 when no layer holds file bytes): the share
  of the bytes written into layers that the final filesystem still shows. dive's score divides
  the smallest copy of each path by all its copies instead; this one keeps the copy the image
  really ends with.

Which instruction made which layer: :func:`attribute` pairs the filesystem layers with the
image history (:class:`~pytest_slimimage.facts.Layer`), and
:func:`~pytest_slimimage.checks.attribute_layers` pairs the history with Dockerfile lines.

Pure: no pytest, no docker, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_slimimage.analysis.attribution import attribute_layers
from pytest_slimimage.facts import ImageFacts, Layer, normalise
from pytest_slimimage.sizes import Allowance, format_size, parse_allowance

if TYPE_CHECKING:  # the layer reader (and pyelftools behind it) loads when layers are read
    from pytest_slimimage.analysis.layers import LayerIndex

__all__ = [
    "DELETED",
    "HIDDEN",
    "OVERWRITTEN",
    "LayerWaste",
    "Origin",
    "WasteLimit",
    "WasteReport",
    "WastedPath",
    "attribute",
    "compute_waste",
    "format_waste_lines",
    "layer_origins",
    "mark_empty_layers",
    "parse_waste_limit",
]

OVERWRITTEN = "overwritten"
DELETED = "deleted"
HIDDEN = "hidden by an opaque directory"

TOP_PATHS = 5


# ------------------------------------------------------------------------------------------ report
class WastedPath(NamedTuple):
    """One path whose copies, or some of them, are wasted. (A named tuple: an image may have 100k.)"""

    path: str
    wasted: int
    """Bytes of this path's copies that the final filesystem no longer reaches."""
    copies: int
    """How many layers wrote this path (as anything but a directory)."""
    ended: str
    """How the last wasted copy ended: ``overwritten``, ``deleted`` or ``hidden by an opaque directory``.
    A file that a later layer replaces with a directory is overwritten; whatever a directory held
    when a later layer puts a file in its place is deleted."""
    written_in: tuple[int, ...]
    """The layers (numbers among the filesystem layers, bottom to top) that wrote the path."""
    wasted_in: tuple[int, ...]
    """Of those, the layers whose copy is wasted."""
    ended_in: int
    """The layer that overwrote, deleted or hid the last wasted copy."""
    present: bool
    """Whether the path is in the final filesystem (overwritten, or deleted and written again)."""


@dataclass(frozen=True)
class LayerWaste:
    """One filesystem layer's bytes: what it wrote, and how much of that later layers wasted."""

    number: int
    """Bottom to top among the filesystem layers, from 0."""
    digest: str
    added: int
    """Regular-file bytes the layer wrote."""
    wasted: int
    """Of ``added``, the bytes a later layer overwrote, deleted or hid."""
    files: int = 0
    """Entries other than directories the layer wrote."""
    removals: int = 0
    """Whiteouts and opaque-directory markers in the layer."""


@dataclass(frozen=True)
class WasteReport:
    """Wasted bytes of an image's layers; the definitions are in this module's docstring."""

    total_bytes: int = 0
    """Regular-file bytes written by all layers, every copy counted."""
    wasted_bytes: int = 0
    """Bytes of the copies the final filesystem no longer reaches."""
    items: tuple[WastedPath, ...] = ()
    """One per path with wasted bytes, the most wasted first (then by path)."""
    layers: tuple[LayerWaste, ...] = ()
    """One per filesystem layer, bottom to top."""

    @property
    def efficiency(self) -> float:
        """``1 - wasted_bytes / total_bytes``, from 0 to 1; 1.0 when no layer holds file bytes."""
        return 1.0 - self.wasted_bytes / self.total_bytes if self.total_bytes else 1.0

    @property
    def final_bytes(self) -> int:
        """Bytes the final filesystem holds: ``total_bytes - wasted_bytes``."""
        return self.total_bytes - self.wasted_bytes

    def to_json(self, top: int | None = None) -> dict[str, Any]:
        """JSON-safe figures for reports; ``top`` limits the paths listed."""
        items = self.items if top is None else self.items[:top]
        return {
            "total_bytes": self.total_bytes,
            "wasted_bytes": self.wasted_bytes,
            "efficiency": round(self.efficiency, 4),
            "paths": [
                {
                    "path": it.path,
                    "wasted": it.wasted,
                    "copies": it.copies,
                    "ended": it.ended,
                    "written_in": list(it.written_in),
                    "ended_in": it.ended_in,
                }
                for it in items
            ],
            "layers": [{"digest": la.digest, "added": la.added, "wasted": la.wasted} for la in self.layers],
        }


# ----------------------------------------------------------------------------------------- compute
class _Blob:
    """Bytes one layer stored for one path that hard links share: how many present paths reach them."""

    __slots__ = ("layer", "links", "path", "size")

    def __init__(self, path: str, layer: int, size: int, links: int) -> None:
        self.path = path
        self.layer = layer
        self.size = size
        self.links = links


_Copy = int
"""A copy nothing else shares: the number of the layer that wrote it (its entry there has the size)."""


_Tally = tuple[int, tuple[int, ...], str, int]
"""A path's wasted bytes, the layers of its wasted copies, how and where the last one ended."""


def _norm(path: str) -> str:
    """``normalise``, skipped for the paths the layer index already normalised."""
    if path[:1] == "/" and path[-1:] != "/" and "//" not in path and "/." not in path:
        return path
    return normalise(path)


def compute_waste(layers: Sequence[LayerIndex]) -> WasteReport:
    """Apply ``layers`` bottom to top, as the engine does, and count the bytes each one wastes.

    Linear in the number of entries: the paths present are kept as a tree (directory -> children),
    so a whiteout or an opaque directory visits only the paths it removes, each once."""
    live: dict[str, _Copy | _Blob | None] = {}
    """Non-directory paths present -> the copy they reach (None: a hard link to nothing present)."""
    tree: dict[str, set[str]] = {}
    """Directory -> the child paths present under it. A directory has a set only while it is listed
    in its parent's set, so dropping a subtree visits that subtree and nothing else."""
    tallies: dict[str, _Tally] = {}
    """Path -> its waste so far (only paths with wasted bytes)."""
    added = [0] * len(layers)
    wasted = [0] * len(layers)
    files = [0] * len(layers)

    def waste(path: str, copy: _Copy | _Blob, how: str, at: int) -> None:
        """``path`` (holding ``copy``) is gone: its bytes are wasted unless a hard link still reaches them."""
        if isinstance(copy, _Blob):
            copy.links -= 1
            if copy.links:
                return
            path, layer, size = copy.path, copy.layer, copy.size
        else:
            layer = copy
            entry = layers[layer].entries[path]
            size = entry.size if entry.kind == "file" else 0
        if not size:
            return
        wasted[layer] += size
        tally = tallies.get(path)
        if tally is None:
            tallies[path] = (size, (layer,), how, at)
        else:
            tallies[path] = (tally[0] + size, (*tally[1], layer), how, at)

    def kill(path: str, how: str, at: int) -> None:
        copy = live.pop(path, None)
        if copy is not None:
            waste(path, copy, how, at)

    def drop(root: str, how: str, at: int, *, inclusive: bool) -> None:
        """Remove what is present below ``root`` (and ``root`` itself when ``inclusive``)."""
        if inclusive:
            kill(root, how, at)
            siblings = tree.get(root[: root.rfind("/")] or "/")
            if siblings is not None:
                siblings.discard(root)
        below = tree.pop(root, None)
        if not below:
            return
        stack = list(below)
        pop_live, pop_tree = live.pop, tree.pop
        while stack:
            path = stack.pop()
            copy = pop_live(path, None)
            if copy is not None:
                waste(path, copy, how, at)
            below = pop_tree(path, None)
            if below:
                stack.extend(below)

    def register(path: str) -> None:
        child = path
        while child != "/":
            parent = child[: child.rfind("/")] or "/"
            siblings = tree.get(parent)
            if siblings is not None:
                siblings.add(child)
                return
            tree[parent] = {child}
            child = parent

    for number, layer in enumerate(layers):
        for directory in layer.opaque_dirs:
            drop(_norm(directory), HIDDEN, number, inclusive=False)
        for path in layer.whiteouts:
            drop(_norm(path), DELETED, number, inclusive=True)
        links: list[tuple[str, str]] = []
        layer_bytes = written_files = 0
        for path, entry in layer.entries.items():
            kind = entry.kind
            if kind == "dir":
                if path in live:
                    kill(path, OVERWRITTEN, number)
            else:
                written_files += 1
                if path in live:
                    kill(path, OVERWRITTEN, number)
                elif path in tree:  # a file where a directory was: what the directory held is gone
                    drop(path, DELETED, number, inclusive=False)
                if kind == "hardlink":
                    links.append((path, _norm(entry.link)))
                    live[path] = None
                else:
                    live[path] = number
                    if kind == "file":
                        layer_bytes += entry.size
            siblings = tree.get(path[: path.rfind("/")] or "/")
            if siblings is None:
                register(path)
            else:
                siblings.add(path)
        for path, target in links:  # after the files: a link may precede its target in the tar
            shared = live.get(target)
            if type(shared) is int:
                entry = layers[shared].entries[target]
                size = entry.size if entry.kind == "file" else 0
                shared = live[target] = _Blob(target, shared, size, 1)
            if isinstance(shared, _Blob):
                shared.links += 1
                live[path] = shared
        added[number] = layer_bytes
        files[number] = written_files

    written: dict[str, tuple[int, ...]] = {}  # the layers that wrote each wasted path, in set operations
    for number, layer in enumerate(layers):
        entries = layer.entries
        hits = tallies.keys() & entries.keys()
        hits.difference_update([path for path in hits if entries[path].kind == "dir"])
        again = hits & written.keys()
        for path in again:
            written[path] += (number,)
        written.update(dict.fromkeys(hits - again, (number,)))
    items = [
        WastedPath(path, size, len(written[path]), ended, written[path], wasted_in, ended_in, path in live)
        for path, (size, wasted_in, ended, ended_in) in tallies.items()
    ]
    items.sort(key=itemgetter(0))  # by path, then (stable) the most wasted first: no key tuples built
    items.sort(key=itemgetter(1), reverse=True)
    per_layer = tuple(
        LayerWaste(
            number=number,
            digest=layer.digest,
            added=added[number],
            wasted=wasted[number],
            files=files[number],
            removals=len(layer.whiteouts) + len(layer.opaque_dirs),
        )
        for number, layer in enumerate(layers)
    )
    return WasteReport(total_bytes=sum(added), wasted_bytes=sum(wasted), items=tuple(items), layers=per_layer)


# ------------------------------------------------------------------------------------- attribution
NO_LAYER = frozenset(
    {
        "ARG", "CMD", "ENTRYPOINT", "ENV", "EXPOSE", "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
        "SHELL", "STOPSIGNAL", "USER", "VOLUME",
    }
)  # fmt: skip
"""Instructions that only change the image config, never the filesystem."""

_NEVER = 10_000.0


@dataclass(frozen=True)
class Origin:
    """The history entry that made one filesystem layer."""

    layer: int
    """The filesystem layer's number, bottom to top, from 0."""
    entry: int | None
    """Index of the history entry (bottom to top, empty entries included); None when none fits."""
    instruction: str = ""
    """The entry's instruction (``Layer.instruction``); empty when ``entry`` is None."""
    from_base: bool = False
    where: str = ""
    """``Dockerfile line 4``, ``base debian:12`` or ``build`` (from ``checks.attribute_layers``); may be empty."""

    @property
    def label(self) -> str:
        """``RUN rm /big (Dockerfile line 3)``; ``layer 2`` when no history entry is known."""
        if self.entry is None:
            return f"layer {self.layer}"
        return f"{self.instruction} ({self.where})" if self.where else self.instruction


@dataclass(frozen=True)
class _Shape:
    size: int
    files: int
    removals: int


def _shape(layer: LayerIndex | LayerWaste) -> _Shape:
    if isinstance(layer, LayerWaste):
        return _Shape(layer.added, layer.files, layer.removals)
    entries = layer.entries.values()
    return _Shape(
        sum(e.size for e in entries if e.kind == "file"),
        sum(1 for e in entries if e.kind != "dir"),
        len(layer.whiteouts) + len(layer.opaque_dirs),
    )


def attribute(
    history: Sequence[Layer],
    layers: Sequence[LayerIndex | LayerWaste],
    wheres: Sequence[str] | None = None,
) -> list[Origin]:
    """Pair each filesystem layer (bottom to top) with the history entry that made it.

    ``wheres``, parallel to ``history``, says where each entry came from (pass
    ``[w for _, w in checks.attribute_layers(facts)]``). ``layers`` may be the layer indexes or a
    :class:`WasteReport`'s ``layers``.

    When the entries not marked ``empty`` are as many as the layers, they pair in order: exact
    when ``empty`` is the image config's ``empty_layer``. The engine's history API has no such
    flag, so a layer that only deletes files (``RUN rm /big``: 0 bytes) looks empty there. Then the
    pairing is an alignment: every entry with bytes makes a layer, config-only instructions (ENV,
    CMD, LABEL, ...) make none, and of the rest the zero-byte entries take the zero-byte layers;
    between equally likely entries the later one is chosen. A layer no entry can explain gets
    ``entry=None``.
    """
    shapes = [_shape(la) for la in layers]
    pairs = _pair(history, shapes)
    out = []
    for number, index in enumerate(pairs):
        if index is None:
            out.append(Origin(number, None))
            continue
        entry = history[index]
        where = wheres[index] if wheres is not None and index < len(wheres) else ""
        out.append(Origin(number, index, entry.instruction, entry.from_base, where))
    return out


def layer_origins(facts: ImageFacts, report: WasteReport) -> list[Origin]:
    """:func:`attribute` for an image's facts: the history entry and Dockerfile line of each layer."""
    wheres = [where for _, where in attribute_layers(facts)]
    return attribute(facts.layers, report.layers, wheres)


def mark_empty_layers(history: Sequence[Layer], config: Mapping[str, object]) -> tuple[Layer, ...]:
    """``history`` with ``empty`` taken from the image config's ``history[].empty_layer`` flags.

    The config (``SavedImage.config``, read from the image export) says exactly which entries made
    no layer; the engine's history API only gives sizes, and a layer that only deletes has 0 bytes.
    Unchanged when the config's history does not line up with ``history``."""
    entries = config.get("history")
    if not isinstance(entries, list) or len(entries) != len(history):
        return tuple(history)
    flags = [bool(e.get("empty_layer")) if isinstance(e, Mapping) else False for e in entries]
    return tuple(replace(entry, empty=flag) for entry, flag in zip(history, flags, strict=True))


def _keyword(entry: Layer) -> str:
    return entry.instruction.split(" ", 1)[0].upper()


def _match_cost(entry: Layer, shape: _Shape) -> float:
    keyword = _keyword(entry)
    if keyword in NO_LAYER:
        return _NEVER + 1  # worse than leaving the layer unexplained
    if entry.size and shape.size:
        cost = abs(entry.size - shape.size) / max(entry.size, shape.size)
    else:
        cost = 0.0 if bool(entry.size) == bool(shape.size) else 1.0
    if keyword == "WORKDIR" and (shape.size or shape.removals or shape.files):
        cost += 0.5  # WORKDIR makes a directory, nothing else
    if keyword in ("COPY", "ADD") and shape.removals and not shape.files:
        cost += 0.5  # a layer that only deletes comes from a RUN
    return cost


def _pair(history: Sequence[Layer], shapes: Sequence[_Shape]) -> list[int | None]:
    made = [i for i, entry in enumerate(history) if not entry.empty]
    if len(made) == len(shapes):
        return list(made)
    rows, cols = len(history), len(shapes)
    inf = float("inf")
    cost = [[inf] * (cols + 1) for _ in range(rows + 1)]
    cost[0][0] = 0.0
    for i in range(rows + 1):
        for j in range(cols + 1):
            here = cost[i][j]
            if here == inf:
                continue
            if i < rows:  # the entry made no layer
                skip = here + (_NEVER if history[i].size else 0.0)
                if skip < cost[i + 1][j]:
                    cost[i + 1][j] = skip
            if j < cols:  # the layer has no entry
                orphan = here + _NEVER
                if orphan < cost[i][j + 1]:
                    cost[i][j + 1] = orphan
            if i < rows and j < cols:
                match = here + _match_cost(history[i], shapes[j])
                if match < cost[i + 1][j + 1]:
                    cost[i + 1][j + 1] = match
    pairs: list[int | None] = [None] * cols
    i, j = rows, cols
    while i or j:  # walk back, preferring a match, so ties go to the later entry
        if i and j and cost[i][j] == cost[i - 1][j - 1] + _match_cost(history[i - 1], shapes[j - 1]):
            pairs[j - 1] = i - 1
            i, j = i - 1, j - 1
        elif i and cost[i][j] == cost[i - 1][j] + (_NEVER if history[i - 1].size else 0.0):
            i -= 1
        else:
            j -= 1
    return pairs


# ------------------------------------------------------------------------------------------ limits
WasteLimit = Allowance
"""How many wasted bytes ``max_waste`` allows: a size, or a percentage of ``total_bytes``."""


def parse_waste_limit(value: object) -> WasteLimit:
    """Bytes (int), a size (``"20MB"``) or a percentage of the layers' bytes (``"10%"``).

    Anything else, a negative size, or a percentage over 100 is a ``ValueError`` naming the value."""
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        raise ValueError(f"max_waste expects a size of 0 or more, got {value!r}")
    try:
        limit = parse_allowance(value)
    except ValueError:
        raise ValueError(
            f"max_waste expects bytes, a size like '20MB' or a percentage like '10%', got {value!r}"
        ) from None
    if limit.percent is not None and not 0 <= limit.percent <= 100:
        raise ValueError(f"max_waste expects a percentage from 0% to 100%, got {value!r}")
    return limit


# ------------------------------------------------------------------------------------------- text
def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _percent(part: int, whole: int) -> str:
    return f"{part / whole * 100:.1f}%" if whole else "0.0%"


def _origin(origins: Sequence[Origin] | None, layer: int) -> Origin:
    if origins is None or not 0 <= layer < len(origins):
        return Origin(layer, None)
    return origins[layer]


def _namer(origins: Sequence[Origin] | None, limit: int) -> Callable[[int], str]:
    def name(layer: int) -> str:
        origin = _origin(origins, layer)
        if origin.entry is None:
            return origin.label
        text = _short(origin.instruction, limit)
        return f"{text} ({origin.where})" if origin.where else text

    return name


_ENDED = {OVERWRITTEN: "overwritten by {}", DELETED: "deleted by {}", HIDDEN: "hidden by an opaque directory in {}"}


def format_waste_lines(report: WasteReport, top: int = TOP_PATHS, origins: Sequence[Origin] | None = None) -> list[str]:
    """The most wasted paths, the waste per instruction that wrote it, and the efficiency.

    ``origins`` (from :func:`attribute`) names the instructions; without it layers are numbered."""
    name = _namer(origins, 60)
    lines: list[str] = []
    if report.items:
        lines.append("top wasted paths:")
        for item in report.items[:top]:
            writers = ", ".join(name(n) for n in item.wasted_in)
            line = f"{format_size(item.wasted):>8}  {item.path}  written by {writers}, "
            line += _ENDED.get(item.ended, item.ended + " by {}").format(name(item.ended_in))
            if item.copies > 1:
                line += f"  ({len(item.wasted_in)} of {item.copies} copies wasted)"
            lines.append(line)
        if len(report.items) > top:
            rest = sum(it.wasted for it in report.items[top:])
            lines.append(f"{format_size(rest):>8}  ({len(report.items) - top} more paths)")
        lines.append("wasted, by the instruction that wrote it:")
        ranked = sorted((la for la in report.layers if la.wasted), key=lambda la: (-la.wasted, la.number))
        for la in ranked:  # as checks.layer_lines shows layers: size, instruction, (where)
            origin = _origin(origins, la.number)
            text = origin.label if origin.entry is None else _short(origin.instruction, 90)
            where = f"{origin.where}; " if origin.entry is not None and origin.where else ""
            lines.append(f"{format_size(la.wasted):>8}  {text}  ({where}{format_size(la.added)} written)")
    lines.append(
        f"efficiency: {report.efficiency * 100:.1f}% ({format_size(report.final_bytes)} of the"
        f" {format_size(report.total_bytes)} written to layers reaches the final filesystem)"
    )
    return lines


# ------------------------------------------------------------------------------------------ check
