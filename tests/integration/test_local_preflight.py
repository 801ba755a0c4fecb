"""`make run` checks up front, one line each: both API keys with one cheap call (real-API mode),
TASK_TYPES against Close's task types, and every setting in our own words."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasksync.config import SyncSettings
from tasksync.errors import InvalidInput
from tasksync_dev.local.options import settings_variables
from tasksync_dev.local.preflight import PreflightFailed, check_api_keys
from tasksync_dev.local.stack import LocalStack
from tasksync_dev.sandbox.chartmogul import ChartMogulSimulator
from tasksync_dev.sandbox.close import BASE_PATH as CLOSE_BASE_PATH
from tasksync_dev.sandbox.close import CloseSimulator
from tests.support.template import REPO_ROOT


def _settings(close: CloseSimulator, chartmogul: ChartMogulSimulator, **overrides: str) -> SyncSettings:
    return SyncSettings.from_env(
        {
            "CLOSE_API_KEY": close.api_key,
            "CLOSE_API_URL": f"{close.url}{CLOSE_BASE_PATH}",
            "CHARTMOGUL_API_KEY": chartmogul.api_key,
            "CHARTMOGUL_API_URL": f"{chartmogul.url}/v1",
            **overrides,
        }
    )


def test_good_keys_pass_with_one_call_each(close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator) -> None:
    check_api_keys(_settings(close_sim, chartmogul_sim))
    assert [c.path for c in close_sim.calls] == [f"{CLOSE_BASE_PATH}/me/"]
    assert [c.path for c in chartmogul_sim.calls] == ["/v1/ping"]


@pytest.mark.parametrize(
    ("variable", "start"),
    [
        ("CLOSE_API_KEY", "Close refused CLOSE_API_KEY (401 from GET http://127.0.0.1:"),
        ("CHARTMOGUL_API_KEY", "ChartMogul refused CHARTMOGUL_API_KEY (401 from GET http://127.0.0.1:"),
    ],
)
def test_a_refused_key_is_one_line_naming_it(
    close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator, variable: str, start: str
) -> None:
    with pytest.raises(PreflightFailed) as caught:
        check_api_keys(_settings(close_sim, chartmogul_sim, **{variable: "not-the-key"}))
    message = str(caught.value)
    assert message.startswith(start)
    assert message.endswith("): check the key")
    assert "not-the-key" not in message
    assert "\n" not in message


def test_an_unreachable_api_is_one_line_naming_its_url_variable(
    close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator
) -> None:
    with pytest.raises(
        PreflightFailed, match=r"^cannot reach Close at http://127\.0\.0\.1:9/me/: \w+ \(check CLOSE_API_URL\)$"
    ):
        check_api_keys(_settings(close_sim, chartmogul_sim, CLOSE_API_URL="http://127.0.0.1:9"))


def test_task_types_are_checked_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"^invalid TASK_TYPES: 1 of the 1 names are not Close task types; "):
        LocalStack({"TASKSYNC_LOCAL_DIR": str(tmp_path), "TASK_TYPES": "leads"})
    assert list(tmp_path.iterdir()) == []


def _run_local(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    app_names = settings_variables()
    environment = {name: value for name, value in os.environ.items() if name not in app_names}
    environment.update(TASKSYNC_LOCAL_DIR=str(tmp_path), PORT="0", **variables)
    return subprocess.run(
        [sys.executable, "-m", "tasksync_dev.local"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_make_run_with_a_wrong_key_stops_at_start_with_one_line(
    tmp_path: Path, close_sim: CloseSimulator, chartmogul_sim: ChartMogulSimulator
) -> None:
    result = _run_local(
        tmp_path,
        CLOSE_API_KEY="wrong",
        CLOSE_API_URL=f"{close_sim.url}{CLOSE_BASE_PATH}",
        CHARTMOGUL_API_KEY=chartmogul_sim.api_key,
        CHARTMOGUL_API_URL=f"{chartmogul_sim.url}/v1",
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: Close refused CLOSE_API_KEY (401 from GET {close_sim.url}{CLOSE_BASE_PATH}/me/): check the key"
    ]
    assert not (tmp_path / "pids").exists()  # nothing was started


def test_make_run_words_a_bad_setting_itself(tmp_path: Path) -> None:
    result = _run_local(tmp_path, CREATE_MISSING_CUSTOMERS="maybe")
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: invalid CREATE_MISSING_CUSTOMERS: expected true or false"]
