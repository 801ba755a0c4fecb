"""tests.support.audit_requirements: what it counts as audited when PyPI's per-version data is missing.

pip-audit itself and PyPI's project-level API are replaced by their answers (the network is the
one thing a unit test must not need); the decisions on those answers are the code under test.
"""

from __future__ import annotations

import re
import urllib.error
from typing import Any

import pytest

from tests.support import audit_requirements
from tests.support.audit_requirements import REVIEWED_BY_HAND, Audit

SKIPPED = "Dependency not found on PyPI and could not be audited: {name} ({version})"
ADVISORY = {"id": "PYSEC-2099-1", "aliases": ["CVE-2099-1"], "fixed_in": ["9.9"]}


def latest_release(releases: dict[str, tuple[str, list[dict[str, Any]]]]) -> Any:
    def project_release(name: str) -> tuple[str, list[dict[str, Any]]]:
        if name not in releases:
            raise urllib.error.URLError("unreachable")
        return releases[name]

    return project_release


def test_a_pin_reviewed_by_hand_needs_no_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    (name, version), _review = next(iter(REVIEWED_BY_HAND.items()))
    monkeypatch.setattr(audit_requirements, "project_release", latest_release({}))
    audit = Audit()
    audit.skipped(name, SKIPPED.format(name=name, version=version))
    assert [line.split(":")[0] for line in audit.by_hand] == [f"{name} {version}"]
    assert audit.unreachable == []
    assert audit.not_audited == []
    assert audit.audited == 0


def test_a_review_covers_only_its_exact_version(monkeypatch: pytest.MonkeyPatch) -> None:
    (name, _version), _review = next(iter(REVIEWED_BY_HAND.items()))
    monkeypatch.setattr(audit_requirements, "project_release", latest_release({name: ("99.0", [])}))
    audit = Audit()
    audit.skipped(name, SKIPPED.format(name=name, version="0.0.1"))
    assert audit.by_hand == []
    assert audit.not_audited == [f"{name} 0.0.1 (latest is 99.0; PyPI has no per-version data here)"]


def test_the_latest_release_is_audited_through_the_project_api(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_requirements, "project_release", latest_release({"somepkg": ("1.2", [ADVISORY])}))
    audit = Audit()
    audit.skipped("somepkg", SKIPPED.format(name="somepkg", version="1.2"))
    assert audit.audited == 1
    assert audit.found == ["somepkg 1.2: PYSEC-2099-1 (CVE-2099-1): fixed in 9.9"]


def test_a_vulnerability_or_an_unreachable_index_fails_the_audit(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def report(*packages: dict[str, Any]) -> Any:
        return lambda _files: {"dependencies": list(packages)}

    clean = {"name": "fine", "version": "1.0", "vulns": []}
    monkeypatch.setattr(audit_requirements, "project_release", latest_release({}))
    monkeypatch.setattr(audit_requirements, "run_pip_audit", report(clean))
    assert audit_requirements.main(["requirements.txt"]) == 0

    monkeypatch.setattr(audit_requirements, "run_pip_audit", report(clean, {**clean, "vulns": [ADVISORY]}))
    assert audit_requirements.main(["requirements.txt"]) == 1

    gone = {"name": "gone", "skip_reason": SKIPPED.format(name="gone", version="2.0")}
    monkeypatch.setattr(audit_requirements, "run_pip_audit", report(clean, gone))
    assert audit_requirements.main(["requirements.txt"]) == 1
    assert "could not be reached" in capsys.readouterr().out


def test_a_hashed_lock_is_audited_as_it_is_and_a_loose_file_is_resolved(tmp_path: Any) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text("six==1.17.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    loose = tmp_path / "requirements.txt"
    loose.write_text("six==1.17.0\n")
    assert audit_requirements.pip_audit_command(str(lock))[-1] == "--no-deps"
    assert "--no-deps" not in audit_requirements.pip_audit_command(str(loose))


def test_every_file_the_project_installs_is_audited() -> None:
    root = audit_requirements.Path(__file__).resolve().parents[2]
    makefile = (root / "Makefile").read_text()
    installed = set(re.findall(r"(?:pip install|PIP_INSTALL\)) .*-r (\S+)", makefile))
    layer = (root / "layers" / "tasksync" / "Makefile").read_text().replace("\\\n", " ")
    installed |= {f"layers/tasksync/{name}" for name in re.findall(r"-r (\S+)", layer)}
    assert installed >= {"requirements-dev.txt", "layers/tasksync/requirements.lock"}
    security = makefile.split("\nsecurity:", 1)[1].split("\n\n", 1)[0]
    audited = set(re.findall(r"[\w/.-]*requirements[\w.-]*", security.split("audit_requirements", 1)[1]))
    assert installed <= audited


def test_an_accepted_advisory_passes_for_its_exact_version_only(monkeypatch: pytest.MonkeyPatch) -> None:
    (name, version), (ids, _why) = next(iter(audit_requirements.ACCEPTED_BY_HAND.items()))
    advisory = {"id": sorted(ids)[0], "aliases": [], "fixed_in": []}
    other = {"id": "GHSA-0000-0000-0000", "aliases": [], "fixed_in": []}
    audit = Audit()
    audit.vulnerable(name, version, [advisory])
    assert (len(audit.accepted), audit.found) == (1, [])
    audit.vulnerable(name, version + ".1", [advisory])
    audit.vulnerable(name, version, [other])
    assert len(audit.found) == 2
