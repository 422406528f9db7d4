"""The layers of `logist_server` hold: import-linter's contracts (pyproject.toml) catch an
import across a layer, in any form, and the package has no import cycle.

The contracts are checked on a copy of `src/` with a deliberate bad import appended to one
module: the real `lint-imports` runs with the copy first on PYTHONPATH, and its report must
name that import at the line it was appended (a line the original file does not have, so
the copy, not the installed tree, was analysed). The unmodified copy passes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

from conftest import BIN

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "logist_server"
LINT_IMPORTS = BIN / "lint-imports"

# How a bad import can be written; each form must be caught.
FORMS = {
    "top-level": "\nfrom {module} import {name}  # noqa: E402\n",
    "in-a-function": "\n\ndef _layer_probe() -> object:\n    from {module} import {name}\n\n"
    "    return {name}\n",
    "type-checking": "\nfrom typing import TYPE_CHECKING  # noqa: E402\n\nif TYPE_CHECKING:\n"
    "    from {module} import {name}  # noqa: F401\n",
}

# (file that gets the import, module it imports, a name from it, the broken contract's title)
VIOLATIONS = {
    "engine imports lsp": ("engine/facade.py", "lsp.protocol", "CREATE_JOB", "Layers:"),
    "engine imports cli": ("engine/driver.py", "cli.common", "EXIT_USAGE", "Layers:"),
    "domain imports config": ("domain/model.py", "config.loader", "load_config", "Layers:"),
    "store imports engine": ("store/job_store.py", "engine.gc", "release_branch", "Layers:"),
    "agent provider imports engine": (
        "providers/agents/mock.py",
        "engine.facade",
        "Engine",
        "Agent providers import only",
    ),
    "agent provider imports vcs": (
        "providers/agents/mock.py",
        "vcs.git",
        "git",
        "Agent providers import only",
    ),
    "runtime provider imports vcs": (
        "providers/runtimes/host.py",
        "vcs.workspace",
        "provision",
        "Runtime providers import only",
    ),
    "runtime provider imports an agent provider": (
        "providers/runtimes/host.py",
        "providers.agents.mock",
        "MockAgent",
        "Runtime providers import only",
    ),
    "runtime provider imports engine": (
        "providers/runtimes/host.py",
        "engine.facade",
        "Engine",
        "Runtime providers import only",
    ),
}


def copy_tree(dest: Path) -> Path:
    """A copy of the project's `src/` and `pyproject.toml` (the contracts) under `dest`."""
    shutil.copytree(
        ROOT / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    shutil.copy2(ROOT / "pyproject.toml", dest / "pyproject.toml")
    return dest


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    """The real `lint-imports` on `tree`: its configuration and, first on the path, its code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree / "src")
    env.pop("PYTHONSAFEPATH", None)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[Path]:
    yield copy_tree(tmp_path / "copy")


def test_the_unmodified_copy_keeps_every_contract(tree: Path) -> None:
    proc = lint_imports(tree)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "BROKEN" not in proc.stdout
    assert "0 broken" in proc.stdout, proc.stdout


@pytest.mark.parametrize("form", sorted(FORMS))
@pytest.mark.parametrize("case", sorted(VIOLATIONS))
def test_an_import_across_the_layers_breaks_a_contract(tree: Path, case: str, form: str) -> None:
    file, target, name, contract = VIOLATIONS[case]
    path = tree / "src" / PACKAGE / file
    text = path.read_text()
    added = FORMS[form].format(module=f"{PACKAGE}.{target}", name=name)
    path.write_text(text + added)
    # the line of the appended import: past the original file's end, so only the copy has it
    line = len((text + added).splitlines()) - (1 if form == "in-a-function" else 0)
    if form == "in-a-function":
        line -= 1  # the import sits above the return
    importer = f"{PACKAGE}.{file.removesuffix('.py').replace('/', '.')}"
    proc = lint_imports(tree)
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    report = " ".join(proc.stdout.split("Broken contracts", 1)[-1].split())  # unwrapped
    assert contract in report, proc.stdout
    assert f"{importer} -> {PACKAGE}.{target} (l.{line})" in report, proc.stdout


def test_the_readme_test_command_runs_import_linter() -> None:
    """README's `bash scripts/test.sh` runs `lint-imports` (not commented out, under
    `set -e`), so a broken contract fails the test command."""
    assert "bash scripts/test.sh" in (ROOT / "README.md").read_text()
    script = (ROOT / "scripts" / "test.sh").read_text().splitlines()
    commands = [
        line.strip() for line in script if line.strip() and not line.strip().startswith("#")
    ]
    assert "set -euo pipefail" in commands
    assert any(c.split()[0].endswith("/lint-imports") for c in commands), commands


# -- cycles -------------------------------------------------------------------------------
def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan, iterative): each one
    holds at least one import cycle."""
    modules = sorted(m for m in graph.modules if m == PACKAGE or m.startswith(PACKAGE + "."))
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in modules:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            successors = [s for s in edges.get(node, []) if s in edges]
            if i < len(successors):
                work.append((node, i + 1))
                nxt = successors[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return found


def describe(graph: grimp.ImportGraph, component: list[str]) -> str:
    """The imports inside one cycle, with their lines: what to break."""
    members = set(component)
    lines = []
    for importer in component:
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & members):
            where = graph.get_import_details(importer=importer, imported=imported)
            at = ", ".join(f"l.{d['line_number']}" for d in where)
            lines.append(f"  {importer} -> {imported} ({at})")
    return "\n".join(lines)


def test_the_package_has_no_import_cycle() -> None:
    graph = grimp.build_graph(PACKAGE, cache_dir=None, exclude_type_checking_imports=False)
    assert len(graph.modules) > 50  # the whole package was found, not an empty stub
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(describe(graph, c) for c in cycles)


def test_the_cycle_check_finds_a_cycle_made_under_type_checking(tmp_path: Path) -> None:
    """The check itself can fail: a TYPE_CHECKING import in `domain.model` of
    `domain.plans` (which imports the model) is a cycle it must report, with its line."""
    tree = copy_tree(tmp_path / "copy")
    model = tree / "src" / PACKAGE / "domain" / "model.py"
    model.write_text(
        model.read_text() + "\nfrom typing import TYPE_CHECKING  # noqa: E402\n\n"
        f"if TYPE_CHECKING:\n    from {PACKAGE}.domain.plans import Role  # noqa: F401\n"
    )
    line = len(model.read_text().splitlines())
    code = (
        "import sys, json; sys.path[:0] = sys.argv[1:3]; import grimp, logist_server, test_layers"
        " as t; g = grimp.build_graph('logist_server', cache_dir=None,"
        " exclude_type_checking_imports=False); print(logist_server.__file__);"
        " print(json.dumps([t.describe(g, c) for c in t.import_cycles(g)]))"
    )
    proc = subprocess.run(
        [str(BIN / "python"), "-c", code, str(tree / "src"), str(Path(__file__).parent)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    where, cycles = proc.stdout.splitlines()[-2:]
    assert where.startswith(str(tree)), where  # the copy was analysed
    assert f"{PACKAGE}.domain.model -> {PACKAGE}.domain.plans (l.{line})" in cycles, cycles
