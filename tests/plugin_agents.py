"""Agent providers installed the way a third-party package installs them: a module and a
`logist.agents` entry point in a `*.dist-info` directory on PYTHONPATH. Nothing inside
Logist is patched; the real registry finds them through `importlib.metadata`.

- `asker`: asks on its terminal (stderr, plain text, as aider does: `[y/n]`), so only the
  observer can see the question; it waits for the answer file, then writes ASKED.md.
- `broken`: its module raises at import (not an ImportError).
- `missing`: its module does not exist (an ImportError).
- `noattr`: its module imports but has no such attribute.
- `incomplete`: loads, but its class lacks parts of the provider protocol (written against
  an older protocol: no `path_options`, no `new_parser`).
"""

from __future__ import annotations

import os
from pathlib import Path

ASKER = '''
import json, os, sys, time
from pathlib import Path

from logist_server.providers.agents.jsonl import JsonLinesParser
from logist_server.providers.runtimes.base import ProcessSpec

SCRIPT = """
import json, os, sys, time
from pathlib import Path
print(json.dumps({"type": "message", "text": "about to ask"}), flush=True)
sys.stderr.write("Overwrite ASKED.md? [y/n]\\\\n")
sys.stderr.flush()
answer = Path(os.environ["LOGIST_ANSWER_FILE"])
deadline = time.monotonic() + 120
while not answer.exists() and time.monotonic() < deadline:
    time.sleep(0.05)
text = answer.read_text().strip() if answer.exists() else "(no answer)"
Path("ASKED.md").write_text("answered: " + text + "\\\\n")
print(json.dumps({"type": "done", "success": True, "summary": "asked"}), flush=True)
"""


class Asker:
    name = "asker"
    description = "asks on its terminal"
    program = sys.executable
    path_options = {}

    def build(self, job, ctx):
        env = {"LOGIST_ANSWER_FILE": ctx.answer_file}
        return ProcessSpec(argv=[sys.executable, "-I", "-c", SCRIPT], env=env, cwd=ctx.workspace)

    def validate_options(self, options):
        pass

    def new_parser(self):
        return JsonLinesParser()

    def version(self):
        return "1.0"
'''

BROKEN = 'raise RuntimeError("the broken provider exploded at import")\n'
INCOMPLETE = """
import sys


class Agent:
    name = "incomplete"
    description = "an agent written against an older protocol"
    program = sys.executable

    def validate_options(self, options):
        pass

    def version(self):
        return "0.1"
"""
NOATTR = "SOMETHING_ELSE = 1\n"

ENTRY_POINTS = """[logist.agents]
asker = logist_test_asker:Asker
broken = logist_test_broken:Agent
missing = logist_test_nosuchmodule:Agent
noattr = logist_test_noattr:Agent
incomplete = logist_test_incomplete:Agent
"""


def install_distribution(
    root: Path, name: str, modules: dict[str, str], entry_points: str
) -> dict[str, str]:
    """Write `modules` and a `name`-1.0 dist-info with `entry_points` under `root`, as an
    installed third-party package; the environment that makes it visible."""
    root.mkdir(parents=True, exist_ok=True)
    for module, text in modules.items():
        (root / f"{module}.py").write_text(text)
    dist = root / f"{name.replace('-', '_')}-1.0.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(entry_points)
    path = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(root) + (os.pathsep + path if path else "")}


def install_plugins(root: Path) -> dict[str, str]:
    """Write the plugin package under `root`; the environment that makes it visible."""
    modules = {
        "logist_test_asker": ASKER,
        "logist_test_broken": BROKEN,
        "logist_test_noattr": NOATTR,
        "logist_test_incomplete": INCOMPLETE,
    }
    return install_distribution(root, "logist-test-plugins", modules, ENTRY_POINTS)
