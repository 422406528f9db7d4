"""A skip never hides a broken `logist_server`: `pytest.importorskip` of the project's own
package fails the test (or the module) instead; a third-party module may still skip.

Runs pytest in a subprocess on throwaway test files, with this suite's conftest as plugin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).parent

IN_TEST = """
import pytest

def test_own():
    pytest.importorskip("logist_server.no_such_module")

def test_third_party():
    pytest.importorskip("no_such_third_party_module")
"""
AT_MODULE_LEVEL = """
import pytest
pytest.importorskip("logist_server.no_such_module")

def test_never_runs():
    pass
"""


def run_pytest(directory: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    (directory / name).write_text(text)
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q", "-rfs",
         "--rootdir", str(directory), "-c", os.devnull, name],
        cwd=directory, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_importorskip_of_the_own_package_fails_the_test(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "test_in_test.py", IN_TEST)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 1 skipped" in proc.stdout, proc.stdout
    assert "FAILED test_in_test.py::test_own" in proc.stdout
    assert "the project's own module failed to import" in proc.stdout
    assert (
        "SKIPPED [1] test_in_test.py" in proc.stdout and "no_such_third_party_module" in proc.stdout
    )


def test_importorskip_of_the_own_package_at_module_level_fails(tmp_path: Path) -> None:
    proc = run_pytest(tmp_path, "test_at_module.py", AT_MODULE_LEVEL)
    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "the project's own module failed to import" in proc.stdout
    assert "skipped" not in proc.stdout.splitlines()[-1]
