"""`make security`'s dependency audit: pip-audit over the pinned requirements, with a fallback.

    .venv-security/bin/python -m tests.support.audit_requirements FILE...

`make security` passes every requirements file the project installs: the layer's hashed lock
(its whole tree), the dev, SAM and security venvs' files.

pip-audit resolves every pin (and what it pulls in) and asks PyPI's per-version JSON API
(/pypi/NAME/VERSION/json) for known vulnerabilities. Where that API does not answer (some
mirrors and proxies serve only the project-level /pypi/NAME/json), pip-audit skips the package
and still exits 0, which would pass silently. So, for every skipped package, this asks the
project-level API, whose `vulnerabilities` list is exact for the project's latest release:
- a pin that is the latest release is audited that way;
- a pin that a dependency holds below the latest release was reviewed by hand (REVIEWED_BY_HAND,
  for that exact version only);
- any other pin is listed as NOT AUDITED (with the latest version), loudly, without failing: a
  new upstream release must not turn CI red by itself. Bumping the pins audits them again;
- when PyPI cannot be reached at all, the audit fails and says so.
Any known vulnerability fails the audit. Stdlib only: it runs in the scanners' own venv.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PYPI_PROJECT_URL = "https://pypi.org/pypi/{name}/json"
# Pins that cannot be the latest release (another pin caps them, or the latest cannot be
# installed), checked by hand against the PyPA advisory database (vulns/<name>/) because PyPI's
# per-version data is out of reach here. An entry covers one exact version: once the pin moves,
# it is NOT AUDITED until reviewed again.
REVIEWED_BY_HAND = {
    ("boto3-stubs", "1.43.126"): (
        "2026-12-01, no advisory for any version; 1.44.1 needs service stubs 1.44 that are not published yet"
    ),
    ("python-dateutil", "2.9.0.post0"): "2026-12-01, no advisory for any version; botocore caps it below 3",
    ("mpmath", "1.3.0"): (
        "2026-12-01, PYSEC-2021-427 (CVE-2021-29063) affects 1.2.1 and older only; sympy caps it below 1.4"
    ),
}
# Known vulnerabilities accepted for one exact version, in a tool that never runs in Lambda, each
# with why it cannot be exploited there: (name, version) -> (advisory ids and aliases, why).
ACCEPTED_BY_HAND: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("ecdsa", "0.19.2"): (
        frozenset({"PYSEC-2026-1325", "GHSA-wj6h-64fc-37mp", "CVE-2024-23342"}),
        "2026-12-03, checkov's dependency in the scanners' own venv (.venv-security), never in the layer: "
        "the Minerva timing side channel needs an attacker timing many signatures made with a secret key, "
        "and checkov signs nothing; python-ecdsa rules side channels out of scope, so no fix will come",
    ),
}
_SKIPPED_VERSION = re.compile(r"\(([^()]+)\)\s*$")


def pip_audit_command(requirement_file: str) -> list[str]:
    """pip-audit's argv for one file: a hashed lock holds the whole tree, so nothing is resolved."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [str(pip_audit), "--progress-spinner", "off", "--format", "json", "--requirement", requirement_file]
    if "--hash=" in Path(requirement_file).read_text():
        command.append("--no-deps")
    return command


def run_pip_audit(requirement_files: list[str]) -> dict[str, Any]:
    """One pip-audit run per file (a hashed file makes pip-audit require hashes of every file
    in the same run); a package pinned in several files is reported once."""
    dependencies: dict[tuple[str, str], dict[str, Any]] = {}
    for name in requirement_files:
        # pip-audit exits 1 when it finds vulnerabilities; its JSON is read either way.
        finished = subprocess.run(pip_audit_command(name), capture_output=True, text=True, check=False)
        try:
            report: dict[str, Any] = json.loads(finished.stdout)
        except json.JSONDecodeError:
            sys.stderr.write(finished.stderr)
            raise SystemExit(
                f"pip-audit failed on {name} (exit {finished.returncode}) before producing a report: see its "
                "output above. It needs PyPI (the package index and its vulnerability data) to be reachable."
            ) from None
        for dependency in report.get("dependencies", []):
            key = (str(dependency["name"]).lower(), str(dependency.get("version") or dependency.get("skip_reason")))
            dependencies.setdefault(key, dependency)
    return {"dependencies": list(dependencies.values())}


def project_release(name: str) -> tuple[str, list[dict[str, Any]]]:
    """(latest version, its known vulnerabilities) from PyPI's project-level JSON API."""
    with urllib.request.urlopen(PYPI_PROJECT_URL.format(name=name), timeout=20) as answer:  # noqa: S310 - https URL
        data = json.load(answer)
    vulnerabilities = [v for v in data.get("vulnerabilities") or [] if not v.get("withdrawn")]
    return str(data["info"]["version"]), vulnerabilities


def describe(vulnerability: dict[str, Any]) -> str:
    ident = vulnerability.get("id", "?")
    aliases = ", ".join(vulnerability.get("aliases") or [])
    fixed = ", ".join(vulnerability.get("fixed_in") or vulnerability.get("fix_versions") or []) or "no fix yet"
    return f"{ident}{f' ({aliases})' if aliases else ''}: fixed in {fixed}"


@dataclass
class Audit:
    audited: int = 0
    found: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)
    not_audited: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)

    def skipped(self, name: str, skip_reason: str) -> None:
        """A package pip-audit could not look up: by hand, or through the project-level API."""
        match = _SKIPPED_VERSION.search(skip_reason)
        if match is None:
            self.not_audited.append(f"{name}: {skip_reason}")
            return
        version = match.group(1)
        review = REVIEWED_BY_HAND.get((name, version))
        if review is not None:
            self.by_hand.append(f"{name} {version}: {review}")
            return
        try:
            latest, vulnerabilities = project_release(name)
        except (urllib.error.URLError, TimeoutError, ValueError, KeyError) as exc:
            self.unreachable.append(f"{name} {version}: {exc}")
            return
        if latest != version:
            self.not_audited.append(f"{name} {version} (latest is {latest}; PyPI has no per-version data here)")
            return
        self.audited += 1
        self.vulnerable(name, version, vulnerabilities)

    def vulnerable(self, name: str, version: str, vulnerabilities: list[dict[str, Any]]) -> None:
        """Known vulnerabilities of one pin: found, unless accepted by hand for this version."""
        accepted_ids, reason = ACCEPTED_BY_HAND.get((name, version), (frozenset(), ""))
        for vulnerability in vulnerabilities:
            ids = {vulnerability.get("id", "?"), *(vulnerability.get("aliases") or [])}
            if ids & accepted_ids:
                self.accepted.append(f"{name} {version}: {describe(vulnerability)}; {reason}")
            else:
                self.found.append(f"{name} {version}: {describe(vulnerability)}")


def _section(title: str, lines: list[str]) -> None:
    if lines:
        print(f"{title} ({len(lines)}):")
        for line in lines:
            print(f"  {line}")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    audit = Audit()
    for dependency in run_pip_audit(argv).get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" in dependency:
            audit.skipped(name, dependency["skip_reason"])
            continue
        audit.audited += 1
        audit.vulnerable(name, dependency["version"], dependency.get("vulns", []))
    print(f"pip-audit: {audit.audited} pinned packages audited, {len(audit.found)} known vulnerabilities")
    _section("VULNERABLE", audit.found)
    _section("ACCEPTED BY HAND, for this exact version", audit.accepted)
    _section("REVIEWED BY HAND, held below their latest release", audit.by_hand)
    _section("NOT AUDITED, PyPI's per-version vulnerability data did not answer for them", audit.not_audited)
    _section("FAILED, PyPI's vulnerability data could not be reached for", audit.unreachable)
    return 1 if audit.found or audit.unreachable else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
