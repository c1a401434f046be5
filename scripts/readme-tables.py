"""Rewrite the README's tables that are derived from the code: the check table (from the check
registry) between ``<!-- checks-table -->`` and ``<!-- /checks-table -->``.

    .venv/bin/python scripts/readme-tables.py        # rewrites README.md in place
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pytest_slimimage.checks.registry import checks_table

README = Path(__file__).resolve().parents[1] / "README.md"


def main() -> int:
    text = README.read_text(encoding="utf-8")
    block = re.compile(r"(<!-- checks-table -->\n)(?:.*?\n)?(<!-- /checks-table -->)", re.S)
    if not block.search(text):
        print("README.md has no <!-- checks-table --> block", file=sys.stderr)
        return 1
    new = block.sub(lambda m: m.group(1) + checks_table() + "\n" + m.group(2), text)
    if new != text:
        README.write_text(new, encoding="utf-8")
        print("README.md: check table rewritten")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
