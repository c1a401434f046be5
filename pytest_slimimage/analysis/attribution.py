"""Which Dockerfile line (or the base image) made each layer of an image; the largest layers as text.

Pure."""

from __future__ import annotations

from pytest_slimimage.analysis.secrets import mask_text
from pytest_slimimage.dockerfile.model import Instruction
from pytest_slimimage.facts import ImageFacts, Layer
from pytest_slimimage.sizes import format_size

TOP_LAYERS = 5


def layer_lines(facts: ImageFacts, top: int = TOP_LAYERS) -> list[str]:
    """The largest layers, each with the instruction that made it and its Dockerfile line."""
    lines = attribute_layers(facts)
    ranked = sorted(((la, where) for la, where in lines if la.size > 0), key=lambda item: -item[0].size)
    out = []
    for layer, where in ranked[:top]:
        text = mask_text(layer.instruction)  # a literal secret in a RUN line is never printed
        if len(text) > 90:
            text = text[:87] + "..."
        out.append(f"{format_size(layer.size):>8}  {text}  ({where})")
    if len(ranked) > top:
        rest = sum(la.size for la, _ in ranked[top:])
        out.append(f"{format_size(rest):>8}  ({len(ranked) - top} smaller layers)")
    return out


def attribute_layers(facts: ImageFacts) -> list[tuple[Layer, str]]:
    """Pair each history entry with where it came from: a Dockerfile line, or the base image."""
    instructions: list[Instruction] = []
    if facts.dockerfile is not None:
        for stage in reversed(facts.dockerfile.chain()):
            instructions.extend(stage.instructions)
    base = f"base {facts.dockerfile.final_base}" if facts.dockerfile else "base image"
    out: list[tuple[Layer, str]] = []
    position = 0
    for layer in facts.layers:
        if layer.from_base:
            out.append((layer, base))
            continue
        keyword = layer.instruction.split(" ", 1)[0].upper()
        where = "build"
        for offset, ins in enumerate(instructions[position:]):
            if ins.keyword == keyword:
                where = f"Dockerfile {ins.location}"
                position += offset + 1
                break
        out.append((layer, where))
    return out


def layers_in_order(facts: ImageFacts, count: int) -> list[tuple[str, str]]:
    """What made each filesystem layer, bottom to top, when only the history is known (no layer
    indexes to align it with): its instruction and where it comes from (``("RUN make", "Dockerfile
    line 4")``), paired in order with the history entries that made a layer when they are
    ``count``; ``("layer N", "")`` otherwise. (With the layers indexed,
    :func:`~pytest_slimimage.analysis.waste.layer_origins` aligns them exactly.)"""
    made = [(layer, where) for layer, where in attribute_layers(facts) if not layer.empty]
    if len(made) != count:
        return [(f"layer {number}", "") for number in range(count)]
    return [(layer.instruction, where) for layer, where in made]
