"""What a benchmark returns, and how the results become the table in docs/performance.md."""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

BEGIN_MARKER = "<!-- bench:begin (written by `make bench`; edits here are overwritten) -->"
END_MARKER = "<!-- bench:end -->"


@dataclass(frozen=True)
class Measurement:
    """One row of the table: a measured value, what it is compared with, and the goal."""

    section: str
    name: str
    value: str
    compared_with: str = ""
    ratio: float | None = None
    goal: str = ""
    met: bool | None = None

    def cells(self) -> list[str]:
        ratio = f"{self.ratio:.2f}×" if self.ratio is not None else ""
        met = {True: "yes", False: "**no**", None: ""}[self.met]
        return [self.section, self.name, self.value, self.compared_with, ratio, self.goal, met]


@dataclass
class BenchResult:
    """What one benchmark module returns: table rows plus a markdown section of details."""

    rows: list[Measurement] = field(default_factory=list)
    details: str = ""
    # Values other sections reuse (e.g. the cost model reads measured durations).
    figures: dict[str, float] = field(default_factory=dict)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (p50 = median of an odd-sized sample)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, round(fraction * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds >= 0.01 else f"{seconds * 1000:.3f} ms"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def results_table(rows: Sequence[Measurement]) -> str:
    header = ["section", "measure", "value", "compared with", "ratio", "goal", "met"]
    return markdown_table(header, [row.cells() for row in rows])


def plain_table(rows: Sequence[Measurement]) -> str:
    """The same table for a terminal: aligned columns, no markdown."""
    header = ["section", "measure", "value", "compared with", "ratio", "goal", "met"]
    cells = [header] + [[cell.replace("**", "") for cell in row.cells()] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def write_generated_block(doc: Path, block: str) -> None:
    """Replace the generated block of ``doc`` (between the markers), keeping the prose around it."""
    generated = f"{BEGIN_MARKER}\n{block.strip()}\n{END_MARKER}"
    text = doc.read_text(encoding="utf-8") if doc.exists() else f"# Performance\n\n{BEGIN_MARKER}\n{END_MARKER}\n"
    pattern = re.compile(re.escape(BEGIN_MARKER) + r".*?" + re.escape(END_MARKER), re.DOTALL)
    if pattern.search(text) is None:
        text = text.rstrip() + "\n\n" + generated + "\n"
    else:
        text = pattern.sub(lambda _: generated, text, count=1)
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text, encoding="utf-8")
