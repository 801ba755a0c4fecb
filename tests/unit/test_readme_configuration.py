"""The README's configuration table and template.yaml's parameters name the same things.

`sam deploy --guided` prompts with bare parameter names; the README's table is where a user maps
them to the variables the code reads, and each parameter's Description names its variable too.
The variable a parameter feeds is read from the template itself (the functions' Environment).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tasksync_dev.local.template import REPO_ROOT, load_template

NO_NAME = "—"


def _references(value: Any) -> Iterator[str]:
    """Every `Ref` target inside an intrinsic (`!Ref P`, `!FindInMap [M, !Ref P, K]`, ...)."""
    if isinstance(value, dict):
        if isinstance(value.get("Ref"), str):
            yield value["Ref"]
        for inner in value.values():
            yield from _references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _references(inner)


def parameter_variables(template: dict[str, Any]) -> dict[str, str | None]:
    """Template parameter -> the environment variable it feeds (None for AWS-only parameters)."""
    feeds: dict[str, set[str]] = {name: set() for name in template["Parameters"]}
    for resource in template["Resources"].values():
        variables = (resource.get("Properties") or {}).get("Environment", {}).get("Variables", {})
        for variable, value in variables.items():
            for target in _references(value):
                if target in feeds:
                    feeds[target].add(variable)
    result: dict[str, str | None] = {}
    for name, variables in feeds.items():
        assert len(variables) <= 1, f"{name} feeds several variables: {sorted(variables)}"
        result[name] = next(iter(variables), None)
    return result


def readme_configuration_rows(readme: str) -> dict[str, str]:
    """README "## Configuration" table: template parameter -> variable (`—` when it has none)."""
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 4 or cells[0] in ("variable", "---"):
            continue
        variable, parameter = (cell.strip("`") for cell in cells[:2])
        if parameter != NO_NAME:
            rows[parameter] = variable
    return rows


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def readme_rows() -> dict[str, str]:
    return readme_configuration_rows((REPO_ROOT / "README.md").read_text(encoding="utf-8"))


def test_every_parameter_description_names_its_variable(template: dict[str, Any]) -> None:
    for name, variable in parameter_variables(template).items():
        description = template["Parameters"][name].get("Description", "")
        expected = variable if variable is not None else "AWS only (no variable)"
        assert description.startswith(expected), f"{name}: Description should start with {expected!r}"


def test_readme_table_and_template_agree(template: dict[str, Any], readme_rows: dict[str, str]) -> None:
    from_template = {name: variable or NO_NAME for name, variable in parameter_variables(template).items()}
    assert readme_rows == from_template


def test_readme_rows_are_read_from_the_table() -> None:
    readme = "\n## Configuration\n\n| variable | template parameter | default | meaning |\n|---|---|---|---|\n"
    readme += "| `A_B` | `AB` | `1` | x |\n| `PORT` | — | `3000` | y |\n| — | `Mail` | — | z |\n"
    readme += "\n## Next\n| `X` | `Y` | 1 | 2 |\n"
    assert readme_configuration_rows(readme) == {"AB": "A_B", "Mail": NO_NAME}


def test_the_readme_links_nothing_outside_the_repository() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#]+)", readme):
        if target.startswith(("http://", "https://")):
            continue
        assert ".." not in Path(target).parts, f"README links {target}, outside the repository"


def test_the_readme_deploy_steps_are_what_make_deploy_runs() -> None:
    """The README's step 1 is `make deploy`, and it names the commands that target runs (dry run)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    dry_run = subprocess.run(
        [make, "--no-print-directory", "-n", "deploy"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    deploy = readme.split("\n## Deploy in five minutes\n", 1)[1].split("\n## ", 1)[0]
    assert "# 1. Build and deploy\nmake deploy\n" in deploy
    for command in (".venv-sam/bin/sam build", ".venv-sam/bin/sam deploy --guided", ".venv-sam/bin/sam deploy;"):
        assert command in dry_run, command
        assert f"`{command.rstrip(';')}`" in " ".join(deploy.split()), command
    assert "has no authentication. Is this okay?" in deploy
