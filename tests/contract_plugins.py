"""Agent providers for the agent-contract tests, installed as a third-party package installs
them: a module and a `logist.agents` entry point in a `*.dist-info` directory on PYTHONPATH.

- `noresume`: reports a session id but does not declare `supports_resume`; its first run
  fails with a rate limit (a transient failure, so the step is retried), later runs edit.
- `stdinasker`: asks for permission (a typed question) and waits alive for an answer on
  its input (`answer_via = "stdin"`), which no runtime can write to yet.
"""

from __future__ import annotations

from pathlib import Path

from plugin_agents import install_distribution

MODULE = '''
import sys

from logist_server.providers.agents.jsonl import JsonLinesParser
from logist_server.providers.runtimes.base import ProcessSpec

SCRIPT = r"""
import json, os, sys, time
from pathlib import Path
runs = Path(os.environ["RUNS_FILE"])
n = int(runs.read_text()) + 1 if runs.exists() else 1
runs.write_text(str(n))
def emit(**event):
    print(json.dumps(event), flush=True)
emit(type="session", id="plain-session-%d" % n)
if os.environ["MODE"] == "retry" and n == 1:
    emit(type="error", message='API Error: 429 {"type":"error","error":'
         '{"type":"rate_limit_error","message":"slow down"}}')
    sys.exit(1)
if os.environ["MODE"] == "ask":
    emit(type="question", id="perm-1", kind="permission", text="May I run make?",
         options=["allow", "deny"])
    time.sleep(120)
Path("DONE.md").write_text("run %d with %s\\n" % (n, sys.argv[1:]))
emit(type="file_change", path="DONE.md", action="create")
emit(type="done", success=True, summary="ok")
"""


class _Base:
    description = "an agent for the agent-contract tests"
    program = sys.executable
    path_options = {}
    mode = ""

    def build(self, job, ctx):
        argv = [sys.executable, "-I", "-c", SCRIPT]
        if ctx.resume_session is not None:
            argv.append("--resume=" + ctx.resume_session)
        env = {"RUNS_FILE": ctx.job_dir + "/plugin-runs", "MODE": self.mode}
        return ProcessSpec(argv=argv, env=env, cwd=ctx.workspace)

    def validate_options(self, options):
        pass

    def new_parser(self):
        return JsonLinesParser()

    def version(self):
        return "1.0"


class NoResume(_Base):
    name = "noresume"
    mode = "retry"


class StdinAsker(_Base):
    name = "stdinasker"
    mode = "ask"
    answer_via = "stdin"
'''

ENTRY_POINTS = """[logist.agents]
noresume = logist_contract_agents:NoResume
stdinasker = logist_contract_agents:StdinAsker
"""


def install_contract_plugins(root: Path) -> dict[str, str]:
    """Write the package under `root`; the environment that makes it visible."""
    modules = {"logist_contract_agents": MODULE}
    return install_distribution(root, "logist-contract-agents", modules, ENTRY_POINTS)
