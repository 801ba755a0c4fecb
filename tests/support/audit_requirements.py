"""`make security`'s dependency audit: pip-audit over the pinned requirements, with a fallback.

    .venv-security/bin/python -m tests.support.audit_requirements FILE...

pip-audit resolves every pin (and what it pulls in) and asks PyPI's per-version JSON API
(/pypi/NAME/VERSION/json) for known vulnerabilities. Where that API does not answer (some
mirrors and proxies serve only the project-level /pypi/NAME/json), pip-audit skips the package
and still exits 0, which would pass silently. So, for every skipped package, this asks the
project-level API, whose `vulnerabilities` list is exact for the project's latest release:
- a pin that is the latest release is audited that way;
- a pin that is not is listed as NOT AUDITED (with the latest version), loudly, without failing;
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
from pathlib import Path
from typing import Any

PYPI_PROJECT_URL = "https://pypi.org/pypi/{name}/json"
_SKIPPED_VERSION = re.compile(r"\(([^()]+)\)\s*$")


def run_pip_audit(requirement_files: list[str]) -> dict[str, Any]:
    pip_audit = Path(sys.executable).with_name("pip-audit")
    command = [str(pip_audit), "--progress-spinner", "off", "--format", "json"]
    for name in requirement_files:
        command += ["--requirement", name]
    # pip-audit exits 1 when it finds vulnerabilities; its JSON is read either way.
    finished = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report: dict[str, Any] = json.loads(finished.stdout)
    except json.JSONDecodeError:
        sys.stderr.write(finished.stderr)
        raise SystemExit(
            f"pip-audit failed (exit {finished.returncode}) before producing a report: see its output above. "
            "It needs PyPI (the package index and its vulnerability data) to be reachable."
        ) from None
    return report


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


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    report = run_pip_audit(argv)
    found: list[str] = []
    not_audited: list[str] = []
    unreachable: list[str] = []
    audited = 0
    for dependency in report.get("dependencies", []):
        name = dependency["name"]
        if "skip_reason" not in dependency:
            audited += 1
            found += [f"{name} {dependency['version']}: {describe(v)}" for v in dependency.get("vulns", [])]
            continue
        match = _SKIPPED_VERSION.search(dependency["skip_reason"])
        if match is None:
            not_audited.append(f"{name}: {dependency['skip_reason']}")
            continue
        version = match.group(1)
        try:
            latest, vulnerabilities = project_release(name)
        except (urllib.error.URLError, TimeoutError, ValueError, KeyError) as exc:
            unreachable.append(f"{name} {version}: {exc}")
            continue
        if latest != version:
            not_audited.append(f"{name} {version} (latest is {latest}; PyPI has no per-version data here)")
            continue
        audited += 1
        found += [f"{name} {version}: {describe(v)}" for v in vulnerabilities]
    print(f"pip-audit: {audited} pinned packages audited, {len(found)} known vulnerabilities")
    for line in found:
        print(f"  VULNERABLE {line}")
    if not_audited:
        print(f"NOT AUDITED ({len(not_audited)}): PyPI's per-version vulnerability data did not answer for them")
        for line in not_audited:
            print(f"  {line}")
    if unreachable:
        print(f"FAILED: PyPI's vulnerability data could not be reached for {len(unreachable)} packages:")
        for line in unreachable:
            print(f"  {line}")
        return 1
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
