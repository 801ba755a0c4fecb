"""layers/tasksync/requirements.lock: the layer's whole tree, hashed, and the same as the tests run."""

from __future__ import annotations

import re
from importlib.metadata import version

from packaging.requirements import Requirement

from tests.support.template import REPO_ROOT

LAYER = REPO_ROOT / "layers" / "tasksync"
_ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)((?:\s*\\\n\s+--hash=sha256:[0-9a-f]{64})*)", re.MULTILINE)


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes)."""
    text = (LAYER / "requirements.lock").read_text()
    return {_canonical(m[1]): (m[2], m[3].count("--hash=")) for m in _ENTRY.finditer(text)}


def test_every_locked_package_carries_hashes() -> None:
    entries = locked()
    assert entries
    assert [name for name, (_, hashes) in entries.items() if hashes == 0] == []


def test_the_lock_holds_every_direct_pin_at_its_version() -> None:
    entries = locked()
    for line in (LAYER / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            requirement = Requirement(line)
            pinned = str(next(iter(requirement.specifier)).version)
            assert entries[_canonical(requirement.name)][0] == pinned, requirement.name


def test_the_tests_run_the_versions_the_layer_ships() -> None:
    # The dev venv installs requirements.txt without the lock: a drifted transitive pin would
    # mean the tests ran something other than what Lambda runs.
    drifted = {name: (pin, version(name)) for name, (pin, _) in locked().items() if version(name) != pin}
    assert drifted == {}


def test_the_layer_build_installs_the_lock_with_hashes_required() -> None:
    makefile = (LAYER / "Makefile").read_text()
    assert "--require-hashes" in makefile
    assert "-r requirements.lock" in makefile
