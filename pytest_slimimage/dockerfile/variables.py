"""Build variables: ARG and ENV declarations, and ``$X`` / ``${X...}`` in a word, read as Docker reads them.

:func:`expand` is BuildKit's word processing (its shell lexer) for what FROM, ARG, ENV, WORKDIR and ``--from``
use: quotes removed (nothing expands inside single quotes), ``\\$`` a literal dollar, and ``$X``, ``${X}``,
``${X:-default}``, ``${X-default}``, ``${X:+alt}``, ``${X+alt}``, with variables inside the default or
alternative expanded too. A variable with no value is unset, as in Docker, and the result says which ones had
none, so that a caller can tell "unset" (FROM: an error) from "unknown" (a base image's ENV may set it).
Other modifiers (``${X%suffix}``, ``${X/a/b}``, ``${X?message}``) are kept as written.

dockerfile-parse's :class:`~dockerfile_parse.util.WordSplitter` splits the words of ARG and ENV here; its own
substitution is not used: it knows no modifiers (``${X:-d}`` becomes ``:-d}``) and drops a variable with no
value without saying so.
Pure: no pytest, no docker.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from dockerfile_parse.util import WordSplitter

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATOR = re.compile(r":?[-+]")
_OTHER_MODIFIER = re.compile(r":?[?#%]|/")  # BuildKit's others: ${X?message}, ${X#prefix}, ${X%suffix}, ${X/a/b}


@dataclass(frozen=True)
class Expansion:
    """A word with quotes removed and variables substituted."""

    text: str
    unset: tuple[str, ...] = ()
    """Names used bare (``$X``, ``${X}``) that have no value, in order of use: each became ''."""
    unsettled: tuple[str, ...] = ()
    """Other names the text needed a value of and did not get one: tested by ``${X+alt}`` (the alternative was
    left out), kept as written (``as_written``), or used with a modifier not applied here."""

    @property
    def known(self) -> str | None:
        """``text``, or None when a variable it uses has no value (which may only mean that nobody here knows it)."""
        return None if self.unset or self.unsettled else self.text


def expand(word: str, values: Mapping[str, str | None], *, as_written: Collection[str] = ()) -> Expansion:
    """Process ``word`` as Docker does; ``values`` maps names to their values (None or absent: no value).

    ``as_written`` names stay as written when ``values`` lacks them (BuildKit's automatic platform ARGs).
    Unterminated quotes run to the end of the word and an unterminated ``${`` is literal text (Docker
    rejects both).
    """
    lexer = _Lexer(word, values, as_written)
    text, _ = lexer.until(None)
    return Expansion(text, tuple(lexer.unset), tuple(lexer.unsettled))


@dataclass
class _Lexer:
    word: str
    values: Mapping[str, str | None]
    as_written: Collection[str]
    pos: int = 0
    unset: list[str] = field(default_factory=list)
    unsettled: list[str] = field(default_factory=list)

    def until(self, stop: str | None) -> tuple[str, bool]:
        """The processed text up to ``stop`` (consumed) or the end; whether ``stop`` was found."""
        out: list[str] = []
        word = self.word
        while self.pos < len(word):
            ch = word[self.pos]
            if ch == stop:
                self.pos += 1
                return "".join(out), True
            if ch == "'":  # literal up to the next single quote
                end = word.find("'", self.pos + 1)
                end = len(word) if end < 0 else end
                out.append(word[self.pos + 1 : end])
                self.pos = end + 1
            elif ch == '"':
                out.append(self._double_quoted())
            elif ch == "$":
                out.append(self._dollar())
            elif ch == "\\":  # the next character, whatever it is; a trailing backslash is dropped
                out.append(word[self.pos + 1 : self.pos + 2])
                self.pos += 2
            else:
                out.append(ch)
                self.pos += 1
        return "".join(out), stop is None

    def _double_quoted(self) -> str:
        out: list[str] = []
        word = self.word
        self.pos += 1
        while self.pos < len(word):
            ch = word[self.pos]
            if ch == '"':
                self.pos += 1
                break
            if ch == "$":
                out.append(self._dollar())
                continue
            if ch == "\\" and word[self.pos + 1 : self.pos + 2] in ('"', "$", "\\"):
                self.pos += 1
                ch = word[self.pos]
            elif ch == "\\" and self.pos + 1 == len(word):
                ch = ""
            out.append(ch)
            self.pos += 1
        return "".join(out)

    def _dollar(self) -> str:
        start = self.pos
        word = self.word
        name = _NAME.match(word, start + 1)
        if name is not None:  # $X
            self.pos = name.end()
            return self._value(name.group(), None, "", word[start : self.pos])[0]
        name = _NAME.match(word, start + 2) if word.startswith("${", start) else None
        if name is None:  # a lone $, or ${} / ${1}: literal
            self.pos = start + 1
            return "$"
        after = name.end()
        if word.startswith("}", after):  # ${X}
            self.pos = after + 1
            return self._value(name.group(), None, "", word[start : self.pos])[0]
        operator = _OPERATOR.match(word, after)
        if operator is None:
            end = word.find("}", after)
            if _OTHER_MODIFIER.match(word, after) and end >= 0:  # not applied here: kept as written
                self.pos = end + 1
                self.unsettled.append(name.group())
                return word[start : self.pos]
            self.pos = start + 1  # ${X$...: literal (Docker rejects it)
            return "$"
        marks = len(self.unset), len(self.unsettled)
        self.pos = operator.end()
        operand, closed = self.until("}")
        inner = self.unset[marks[0] :], self.unsettled[marks[1] :]  # the operand's, counted only if it is used
        del self.unset[marks[0] :], self.unsettled[marks[1] :]
        if not closed:  # ${X:-... without its brace: literal (Docker rejects it)
            self.pos = start + 1
            return "$"
        text, used = self._value(name.group(), operator.group(), operand, word[start : self.pos])
        if used:
            self.unset += inner[0]
            self.unsettled += inner[1]
        return text

    def _value(self, name: str, operator: str | None, operand: str, written: str) -> tuple[str, bool]:
        """What ``$name`` / ``${name<operator><operand>}`` becomes, and whether that is the operand."""
        value = self.values.get(name)
        if value is None and name not in self.values and name in self.as_written:
            self.unsettled.append(name)
            return written, False
        if operator is None:
            if value is None:
                self.unset.append(name)
            return value or "", False
        if value is None and operator.endswith("+"):
            self.unsettled.append(name)
        is_set = value is not None and (value != "" or not operator.startswith(":"))
        if operator.endswith("-"):
            return (value or "", False) if is_set else (operand, True)
        return (operand, True) if is_set else ("", False)


def arg_declarations(value: str) -> list[tuple[str, str | None]]:
    """The names an ARG declares and their defaults as written: ``A=1 B="x y" C`` -> A, 1; B, "x y" (quotes
    kept); C, None."""
    out: list[tuple[str, str | None]] = []
    for word in WordSplitter(value).split(dequote=False):
        key, eq, default = word.partition("=")
        out.append((key, default if eq else None))
    return out


def env_declarations(value: str) -> list[tuple[str, str]]:
    """The names an ENV sets and their values as written: ``A=1 B="x y"``, or the legacy ``ENV A x y``."""
    words = list(WordSplitter(value).split(dequote=False))
    if words and "=" not in words[0]:  # legacy ENV key value...
        return [(words[0], " ".join(words[1:]))]
    return [(key, val) for key, _, val in (word.partition("=") for word in words)]
