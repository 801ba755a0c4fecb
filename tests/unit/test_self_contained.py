"""The repository explains itself: no pointer to files outside it, nor to issue numbers.

A maintainer of this repository has neither the notes it was built from nor the tracker its
work came through. Upstream facts live in docs/upstream-apis.md, with their public sources;
comments point there or give the reasoning. This scans every tracked source, doc, template
and Makefile for the forms such pointers took.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCANNED_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".toml", ".txt", ".cfg"}
SCANNED_NAMES = {"Makefile", "run"}

FORBIDDEN = {
    "a path outside the repository": re.compile(r"\.\./shared|\bshared/(?:research|api-docs)\b"),
    "a research note": re.compile(
        r"(?i)\bresearch\b(?:\s*(?:§|\(|notes?\b|open question|F-\d)|'s\b)|\b(?:close|chartmogul)-api\.md\b"
    ),
    "a section sign": re.compile(r"§"),
    "a fixture or source tag of the notes": re.compile(
        r"\bF-\d+[ab]?\b|\bD-(?:WH|EV|EVT|TASKS|LEADS|RL|AUTH|CL)\b|\bOAS\b"
    ),
    "an issue number": re.compile(r"(?i)\bissues?\s*#?\d+\b|\bissue\s+#\w+"),
}


def tracked_files() -> list[Path]:
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [
        REPO_ROOT / name
        for name in listed.split("\0")
        if name and (Path(name).suffix in SCANNED_SUFFIXES or Path(name).name in SCANNED_NAMES)
    ]


def offences(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for what, pattern in FORBIDDEN.items():
            if pattern.search(line):
                found.append(f"{number}: {what}: {line.strip()[:100]}")
    return found


def test_nothing_points_outside_the_repository_or_at_an_issue() -> None:
    this_file = Path(__file__).resolve()
    files = [path for path in tracked_files() if path.resolve() != this_file and path.is_file()]
    assert len(files) > 50, "the scan found too few files to be meaningful"
    report = {
        str(path.relative_to(REPO_ROOT)): found
        for path in files
        if (found := offences(path.read_text(encoding="utf-8", errors="replace")))
    }
    assert report == {}


@pytest.mark.parametrize(
    "line",
    [
        "# See ../shared/research/close-api.md for details.",
        "Facts are in shared/research/close-api.md.",
        "# UNVERIFIED (research §1.5): whether PATCH reopens.",
        "# 40 per organization (research close-api §2.3)",
        "Shapes follow the real payloads (F-1, F-2, F-15).",
        "# 200, not 201 (OAS)",
        "Rules, first match wins (issue #2, point 4):",
        "run, what issue 6 asks for and rewrites the block",
        "# Goals of issue 12: receiver",
    ],
)
def test_each_form_such_pointers_took_is_caught(line: str) -> None:
    assert offences(line)


@pytest.mark.parametrize(
    "line",
    [
        'See docs/upstream-apis.md, "Close event log".',
        "Should Close ever issue another length, that failure is loud.",
        "text.encode('utf-8')",
        "https://github.com/chartmogul/chartmogul-python/issues/112",
        "A Close task id (task_…) or a ChartMogul UUID.",
    ],
)
def test_ordinary_text_passes(line: str) -> None:
    assert offences(line) == []
