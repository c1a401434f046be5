"""Where something found in an image's layers came from, for a check's evidence: the layer (counted
from 1, bottom to top), the instruction that made it and its Dockerfile line
(``layer 3: COPY id_rsa /root/.ssh/id_rsa (Dockerfile line 4)``).

Pure: reads :class:`~pytest_slimimage.facts.ImageFacts`. Instructions are shown with any secret
they hold masked (:func:`~pytest_slimimage.analysis.secrets.mask_text`).
"""

from __future__ import annotations

from collections.abc import Callable

from pytest_slimimage.analysis.attribution import attribute_layers
from pytest_slimimage.analysis.secrets import mask_text
from pytest_slimimage.analysis.waste import WasteReport, layer_origins
from pytest_slimimage.facts import ImageFacts

__all__ = ["history_where", "layer_namer", "shown"]

INSTRUCTION_WIDTH = 70


def shown(instruction: str, width: int = INSTRUCTION_WIDTH) -> str:
    """An instruction as evidence shows it: secrets masked, cut to ``width`` characters."""
    text = mask_text(instruction)
    return text if len(text) <= width else text[: width - 3] + "..."


def layer_namer(facts: ImageFacts) -> Callable[[int], str]:
    """``name(n)`` for filesystem layer ``n`` (from 0): ``layer 3: RUN chmod u+s /app (Dockerfile
    line 4)``; ``layer 3`` alone when the layers were not paired with the history."""
    origins = layer_origins(facts, facts.waste) if isinstance(facts.waste, WasteReport) else None

    def name(layer: int) -> str:
        label = f"layer {layer + 1}"
        if origins is None or not 0 <= layer < len(origins) or origins[layer].entry is None:
            return label
        origin = origins[layer]
        text = shown(origin.instruction)
        return f"{label}: {text} ({origin.where})" if origin.where else f"{label}: {text}"

    return name


def history_where(facts: ImageFacts, keyword: str) -> tuple[str, str] | None:
    """The last history entry made by ``keyword`` (``USER``): its instruction and where it came from
    (``Dockerfile line 3``, ``base debian:12``); None when no entry is."""
    found = None
    for layer, where in attribute_layers(facts):
        if layer.instruction.split(" ", 1)[0].upper() == keyword:
            found = (layer.instruction, where)
    return found
