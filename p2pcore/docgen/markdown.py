"""reStructuredText as the core's docstrings write it, turned into Markdown for the generated reference pages."""

from __future__ import annotations

import inspect
import re

_ROLE = re.compile(r":(?:class|func|data|mod|meth|attr):`~?([^`]+)`")
_LITERAL = re.compile(r"``([^`]+)``")
_PARAM = re.compile(r"^:param (\w+):\s*(.*)$")


def inline(text: str) -> str:
    """``code`` and :class:`x` roles as Markdown code spans."""
    return _LITERAL.sub(r"`\1`", _ROLE.sub(r"`\1`", text))


def cell(text: str) -> str:
    """Text for one cell of a Markdown table: one line, pipes escaped."""
    return " ".join(inline(text).split()).replace("|", "\\|")


def docstring(text: str) -> str:
    """A docstring in Markdown: ``:param x:`` fields (with their continuation lines) become a list, a paragraph
    ending in ``::`` introduces the indented block after it as a fenced Python block."""
    lines = inline(inspect.cleandoc(text)).splitlines()  # a code span may continue on the next line
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        field = _PARAM.match(line)
        if field:
            words = [field.group(2)]
            while i + 1 < len(lines) and lines[i + 1].startswith(" ") and lines[i + 1].strip():
                i += 1
                words.append(lines[i].strip())
            out.append(f"- `{field.group(1)}`: {' '.join(words)}")
        elif line.rstrip().endswith("::"):
            out.append(line.rstrip()[:-1])
            block: list[str] = []
            while i + 1 < len(lines) and (not lines[i + 1].strip() or lines[i + 1].startswith(" ")):
                i += 1
                block.append(lines[i])
            while block and not block[-1].strip():
                block.pop()
            code = inspect.cleandoc("\n".join(block)).splitlines() if block else []
            out += ["", "```python", *code, "```", ""]
        else:
            out.append(line)
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip() + "\n"
