"""`logist-mock-agent`: a real executable with scripted behaviours, run like any agent.

It prints one JSON object per line (message, tool_call, file_change, usage, question,
error, done) and acts on its working directory. Only the standard library is imported,
so it starts as fast as Python can.

Scenarios (`--scenario`; without one: `review` when `--role supervisor`, else `edit`):

- `edit`: appends `logist-mock: <first line of the user's prompt>` to the target (or
  LOGIST_MOCK.md). Options: `delete=A,B`, `rename=OLD:NEW`, `binary=PATH` (writes 1 KiB
  of binary data), `chmod=PATH` (flips the executable bits). When the rendered prompt
  (`--rendered-prompt-file`) has a line `## Reviewer comments`, the same write then also
  appends `logist-mock: addressed: <first non-empty comment line>`. The scenarios that
  end with an edit (`slow`, `cost`, `question`, a `fail` past its `times`) do the same.
- `multi_hunk` (`every=`, `also=`): changes every tenth line of the target, several hunks.
- `slow` (`seconds=`), `hang`, `crash`, `cost` (`steps=`, `interval=`), `noop`,
  `flood` (`lines=`).
- Every scenario: `--model=M` names M in its usage events; the option `report_cost=false`
  leaves the cost out of them (tokens only, as codex and gemini report).
- `question`: asks as a real CLI does headless: prints a `question` event (`question=` its
  text, `ask=question|permission`, `options=A|B|C`) and exits 0 without changing anything.
  Run again with `--resume=SESSION --answer=TEXT`, it finds the question in its session,
  prints `got the answer: TEXT` and then edits like `edit`.
- `fail`: fails the way claude-code does. It prints a message and a read, writes
  claude-code's error line to stderr, prints the same text as an `error` event and exits
  with 1. `kind=rate_limit|auth|overflow|network` (default rate_limit) picks the line
  (see FAILURES). `times=N` fails only in the first N runs of the job, then behaves like
  `edit`. Runs are counted in `$LOGIST_JOB_DIR/mock-runs`.
- `review` (a supervisor): reads the diff fenced under the last `## Proposed change` line
  of the rendered prompt. It approves when an added line contains `logist-mock: addressed`,
  and asks for changes otherwise. `verdict=approve|changes` forces the outcome. It never
  touches a file. **Each line of its reply is its own `message` event:**

      {"type": "message", "text": "Reviewing the proposed change: 1 line(s) added, 0 removed"}
      {"type": "message", "text": "VERDICT: CHANGES"}
      {"type": "message", "text": "Please note in the file that the review was addressed."}
      {"type": "usage", "input_tokens": 200, "output_tokens": 30, "cost_usd": 0.0008}
      {"type": "done", "success": true, "summary": "review: changes requested"}

  When it approves, the verdict line is `VERDICT: APPROVE` with no comment line after it,
  and the summary is `review: approved`. It exits with 0 either way.
- `linger` (for reaping tests): starts three processes that outlive it (a background
  child, a double-forked `setsid` daemon, and a child that moves to `/`), each running
  `sleep` with `tag=` in its command line, and writes their pids to `$LOGIST_JOB_DIR/
  linger-pids` once all three run. Then it exits with `code=` (default 0), or waits to be
  killed with `hold=true`.

Sessions, as real agents keep them: with `$LOGIST_JOB_DIR` set, every run starts with a
`session` event. A new run makes a session (a UUID) and keeps its state in
`$LOGIST_JOB_DIR/mock-sessions/ID.json` (runs, first prompt line, an open question,
answers); `--resume=ID` continues it (the event says `resumed: true`, the state counts the
run) and fails like claude-code, exit 1, when no such session exists. Without
`$LOGIST_JOB_DIR` nothing is kept, so no session is reported and `--resume` fails.

Every path it touches (the target, `delete`, `rename`, `binary`, `chmod`) is opened from the
working directory one part at a time without following symlinks (the repository controls
them), and must pass `repo_paths.unsafe_reason`; otherwise it prints an `error` and exits
with 2, touching nothing outside.
"""

from __future__ import annotations

import argparse
import errno
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from logist_server.domain.repo_paths import unsafe_reason
from logist_server.providers.agents.program import installed_program

DEFAULT_FILE = "LOGIST_MOCK.md"
PROPOSED_CHANGE = "## Proposed change"
REVIEWER_COMMENTS = "## Reviewer comments"
ADDRESSED = "logist-mock: addressed"
REVIEW_COMMENT = "Please note in the file that the review was addressed."
RUNS_FILE = "mock-runs"
SUPERVISOR = "supervisor"
VERDICTS = ("approve", "changes")

#: What claude-code prints (on stderr) for each kind of failure: the `fail` scenario's lines.
FAILURES = {
    "rate_limit": 'API Error: 429 {"type":"error","error":{"type":"rate_limit_error",'
    '"message":"This request would exceed your account\'s rate limit. Please try again later."}}',
    "auth": "Invalid API key · Please run /login",
    "overflow": 'API Error: 400 {"type":"error","error":{"type":"invalid_request_error",'
    '"message":"prompt is too long: 213462 tokens > 200000 maximum"}}',
    "network": "API Error: Unable to connect to API (ECONNREFUSED)",
}


class Run:
    """One run of the mock: the user's prompt and what else it was given (a plain class:
    `dataclasses` would cost the mock's start-up time)."""

    __slots__ = ("answer", "opts", "prompt", "rendered", "role", "session", "target")

    def __init__(
        self,
        prompt: str,
        target: str | None = None,
        opts: dict[str, str] | None = None,
        rendered: str | None = None,
        role: str = "worker",
        session: Session | None = None,
        answer: str | None = None,
    ) -> None:
        self.prompt = prompt
        self.target = target
        self.opts = opts or {}
        self.rendered = rendered  # the fully rendered prompt of this step
        self.role = role
        self.session = session
        self.answer = answer  # the user's answer to the session's question (`--answer`)


class Session:
    """The mock's conversation state, kept across runs (a plain class: see `Run`)."""

    __slots__ = ("path", "state")

    def __init__(self, path: Path | None, state: dict[str, object]) -> None:
        self.path = path
        self.state = state

    @property
    def id(self) -> str:
        return str(self.state["id"])

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        temporary.write_text(json.dumps(self.state))
        temporary.replace(self.path)


SESSION_ID = "0123456789abcdef-"
SESSIONS_DIR = "mock-sessions"


def sessions_dir() -> Path | None:
    job_dir = os.environ.get("LOGIST_JOB_DIR")
    return Path(job_dir) / SESSIONS_DIR if job_dir else None


def open_session(resume: str | None, prompt: str) -> Session | None:
    """A new session, or the one `resume` names (None, after an `error` event, when there
    is no such session); its `session` event printed."""
    directory = sessions_dir()
    if resume is None:
        import uuid

        fresh = str(uuid.uuid4())
        session = Session(directory / f"{fresh}.json" if directory else None, {
            "id": fresh, "runs": 1, "prompt": first_line(prompt), "question": None,
            "answers": []})  # fmt: skip
        if directory is not None:  # kept, so it can be resumed: report it
            session.save()
            emit("session", id=session.id)
        return session
    known = directory is not None and 0 < len(resume) <= 64 and not resume.strip(SESSION_ID)
    path = directory / f"{resume}.json" if directory is not None and known else None
    if path is None or not path.is_file():
        emit("error", message=f"No conversation found with session ID: {resume}")
        return None
    session = Session(path, json.loads(path.read_text()))
    session.state["runs"] = int(str(session.state.get("runs", 0))) + 1
    session.save()
    emit("session", id=session.id, resumed=True)
    return session


def emit(event_type: str, /, **fields: object) -> None:
    sys.stdout.write(json.dumps({"type": event_type, **fields}) + "\n")
    sys.stdout.flush()


_calls = [0]


def tool_call(tool: str, data: dict[str, object]) -> str:
    """Print a `tool_call` event with a fresh id (`call_1`, `call_2`...); the id."""
    _calls[0] += 1
    call_id = f"call_{_calls[0]}"
    emit("tool_call", id=call_id, tool=tool, input=data)
    return call_id


def tool_result(call_id: str, tool: str, output: str, ok: bool = True) -> None:
    """Print the `tool_result` that ends the call `call_id`."""
    emit("tool_result", id=call_id, tool=tool, ok=ok, output=output)


def first_line(prompt: str) -> str:
    for line in prompt.splitlines():
        if line.strip():
            return line.strip()
    return ""


# -- reading the rendered prompt -------------------------------------------------------------
def section(text: str, heading: str) -> list[str] | None:
    """The lines after the last line that is exactly `heading`, up to the next `## ` heading
    outside a fenced block; None when there is no such line."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.strip() == heading]
    if not starts:
        return None
    body = lines[starts[-1] + 1 :]
    fence: str | None = None
    for end, line in enumerate(body):
        stripped = line.strip()
        if fence is None and stripped.startswith("```"):
            fence = "`" * (len(stripped) - len(stripped.lstrip("`")))
        elif fence is not None and stripped == fence:
            fence = None
        elif fence is None and line.startswith("## "):
            return body[:end]
    return body


def proposed_diff(rendered: str | None) -> list[str]:
    """The diff fenced (```diff or ````diff) under `## Proposed change`; [] without one."""
    body = section(rendered or "", PROPOSED_CHANGE) or []
    for index, line in enumerate(body):
        stripped = line.strip()
        fence = "`" * (len(stripped) - len(stripped.lstrip("`")))
        if len(fence) >= 3 and stripped[len(fence) :].strip() == "diff":
            inner = body[index + 1 :]
            for end, rest in enumerate(inner):
                if rest.strip() == fence:
                    return inner[:end]
            return inner
    return []


def reviewer_comment(rendered: str | None) -> str | None:
    """The first non-empty line under `## Reviewer comments`; None without that heading."""
    body = section(rendered or "", REVIEWER_COMMENTS)
    if body is None:
        return None
    return next((line.strip() for line in body if line.strip()), "")


# -- files, reached without following symlinks -------------------------------------------
class Refused(Exception):
    """A path the mock will not touch: outside the working directory, or through a symlink."""


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _parent(path: str, create: bool = False) -> tuple[int, str]:
    """An open descriptor of `path`'s directory and its last part. Each directory is opened
    from the working directory with O_NOFOLLOW: a symlinked directory is refused."""
    reason = unsafe_reason(path)
    if reason is not None:
        raise Refused(f"{path}: {reason}")
    *dirs, last = path.split("/")
    fd = os.open(".", _DIR_FLAGS)
    try:
        for part in dirs:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(part, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise Refused(f"{path}: {part} is a symlink or not a directory") from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd, last


def _open_file(path: str, flags: int, create: bool = False) -> int:
    parent, name = _parent(path, create)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Refused(f"{path}: is a symlink") from None
        raise
    finally:
        os.close(parent)


def read_file(path: str) -> bytes | None:
    """The file's bytes; None when it does not exist."""
    try:
        fd = _open_file(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def write_file(path: str, data: bytes) -> None:
    fd = _open_file(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, create=True)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def delete_file(path: str) -> None:
    parent, name = _parent(path)
    try:
        os.unlink(name, dir_fd=parent)  # a symlink itself goes, never what it points at
    finally:
        os.close(parent)


def rename_file(old: str, new: str) -> None:
    src, old_name = _parent(old)
    try:
        dst, new_name = _parent(new, create=True)
        try:
            os.rename(old_name, new_name, src_dir_fd=src, dst_dir_fd=dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def flip_executable(path: str) -> None:
    fd = _open_file(path, os.O_RDONLY)
    try:
        os.fchmod(fd, os.fstat(fd).st_mode ^ 0o111)
    finally:
        os.close(fd)


# -- actions ---------------------------------------------------------------------------------
def do_edit(run: Run) -> None:
    """Append `logist-mock: <first prompt line>` to the target (or LOGIST_MOCK.md) and,
    after a review, `logist-mock: addressed: <first comment line>`."""
    path = run.target or DEFAULT_FILE
    line = f"logist-mock: {first_line(run.prompt)}\n"
    comment = reviewer_comment(run.rendered)
    if comment is not None:
        line += f"{ADDRESSED}: {comment}\n"
    read = tool_call("read", {"path": path})
    existing = read_file(path)
    current = existing or b""
    tool_result(read, "read", f"{len(current)} bytes" if existing is not None else "no such file")
    if current and not current.endswith(b"\n"):
        current += b"\n"
    write_file(path, current + line.encode())
    edit = tool_call("edit", {"path": path, "append": line.rstrip("\n")})
    tool_result(edit, "edit", "appended 1 line")
    emit("file_change", path=path, action="modify" if existing is not None else "create")


#: How usage is reported (`main` sets it): with the model given by `--model`, and without
#: the cost when the option `report_cost=false` is given (as codex and gemini report it).
USAGE_STYLE: dict[str, object] = {"model": None, "cost": True}


def usage(tokens_in: int, tokens_out: int, cost: float) -> None:
    fields: dict[str, object] = {"input_tokens": tokens_in, "output_tokens": tokens_out}
    if USAGE_STYLE["cost"]:
        fields["cost_usd"] = round(cost, 6)
    if USAGE_STYLE["model"] is not None:
        fields["model"] = USAGE_STYLE["model"]
    emit("usage", **fields)


def do_extra_actions(opts: dict[str, str]) -> None:
    """Optional file operations, for exercising harvest: comma-separated paths; and
    `echo_env`: comma-separated environment variables whose values (or `<unset>`) the mock
    prints, with their SHA-256 (which redaction leaves alone: proof the mock saw the value),
    as a message event and as a plain line (for the secret redaction tests)."""
    for name in filter(None, opts.get("echo_env", "").split(",")):
        value = os.environ.get(name)
        digest = hashlib.sha256(value.encode()).hexdigest() if value is not None else "unset"
        emit("message", text=f"env {name}={value or '<unset>'} sha256={digest}")
        sys.stdout.write(f"plain env {name}={value or '<unset>'}\n")
        sys.stdout.flush()
    for path in filter(None, opts.get("delete", "").split(",")):
        delete_file(path)
        emit("file_change", path=path, action="delete")
    for pair in filter(None, opts.get("rename", "").split(",")):
        old, new = pair.split(":", 1)
        rename_file(old, new)
        emit("file_change", path=new, action="rename")
    for path in filter(None, opts.get("binary", "").split(",")):
        write_file(path, bytes(range(256)) * 4)
        emit("file_change", path=path, action="create")
    for path in filter(None, opts.get("chmod", "").split(",")):
        flip_executable(path)
        emit("file_change", path=path, action="modify")


# -- scenarios -------------------------------------------------------------------------------
def scenario_edit(run: Run) -> int:
    emit("message", text=f"Working on: {first_line(run.prompt)}")
    do_extra_actions(run.opts)
    do_edit(run)
    usage(120, 40, 0.0012)
    emit("done", success=True, summary="appended one line")
    return 0


def scenario_slow(run: Run) -> int:
    seconds = float(run.opts.get("seconds", "5"))
    lines = max(1, int(seconds * 4))
    for i in range(lines):
        emit("message", text=f"thinking {i + 1}/{lines}")
        time.sleep(seconds / lines)
    return scenario_edit(run)


def scenario_hang(run: Run) -> int:
    emit("message", text="starting, then hanging")
    # A helper child, as real agents start: cancel must take it down too. The installed
    # `sleep` (PATH's absolute entries only), never one the workspace holds.
    sleep = installed_program("sleep") or installed_program("sleep", os.defpath)
    subprocess.Popen(["sleep", "3600"], executable=sleep, stdin=subprocess.DEVNULL)
    while True:
        time.sleep(3600)


def scenario_crash(run: Run) -> int:
    emit("message", text="starting work")
    tool_call("read", {"path": run.target or "."})  # it crashes before the result
    sys.stderr.write("mock agent: simulated crash (scenario=crash)\n")
    sys.stderr.flush()
    emit("error", message="simulated crash (scenario=crash)")
    return 3


def scenario_cost(run: Run) -> int:
    steps = int(run.opts.get("steps", "40"))
    delay = float(run.opts.get("interval", "0.1"))
    cost = 0.0
    for i in range(steps):
        cost += 0.005
        emit("message", text=f"turn {i + 1}")
        usage(1000 * (i + 1), 200 * (i + 1), cost)
        time.sleep(delay)
    do_extra_actions(run.opts)
    do_edit(run)
    usage(1000 * steps + 120, 200 * steps + 40, cost + 0.0012)  # totals only ever climb
    emit("done", success=True, summary="appended one line")
    return 0


def scenario_question(run: Run) -> int:
    """Ask and exit 0; resumed with the answer to the session's open question, edit."""
    session = run.session
    state = session.state if session is not None else {}
    if run.answer is None:
        question = run.opts.get("question", "Which file should I change?")
        options = [o for o in run.opts.get("options", "").split("|") if o]
        state["question"] = question
        if session is not None:
            session.save()
        emit("question", id=f"q{state.get('runs', 1)}", kind=run.opts.get("ask", "question"),
             text=question, options=options)  # fmt: skip
        return 0
    asked = state.get("question")
    if asked is None:  # nothing was asked in this session: an answer out of nowhere
        emit("error", message="got an answer, but this session asked no question")
        return 1
    answers = state.setdefault("answers", [])
    assert isinstance(answers, list)
    answers.append({"question": asked, "answer": run.answer})
    state["question"] = None
    if session is not None:
        session.save()
    emit("message", text=f"got the answer: {run.answer.strip()}")
    return scenario_edit(run)


def scenario_noop(run: Run) -> int:
    emit("message", text="nothing to do")
    emit("done", success=True, summary="no changes")
    return 0


def scenario_flood(run: Run) -> int:
    lines = int(run.opts.get("lines", "100000"))
    write = sys.stdout.write
    for i in range(lines):
        write(f'{{"type": "message", "text": "flood line {i}"}}\n')
    sys.stdout.flush()
    emit("done", success=True, summary=f"{lines} lines")
    return 0


def count_run() -> int:
    """This run's number within the job (1, 2, ...), kept in $LOGIST_JOB_DIR/mock-runs."""
    job_dir = os.environ.get("LOGIST_JOB_DIR")
    if not job_dir:
        raise SystemExit("logist-mock-agent: times= needs LOGIST_JOB_DIR (the job's directory)")
    path = Path(job_dir) / RUNS_FILE
    try:
        runs = int(path.read_text().strip() or "0")
    except FileNotFoundError:
        runs = 0
    runs += 1
    temporary = path.with_name(f".{RUNS_FILE}.{os.getpid()}")
    temporary.write_text(f"{runs}\n")
    temporary.replace(path)
    return runs


def scenario_fail(run: Run) -> int:
    kind = run.opts.get("kind", "rate_limit")
    if kind not in FAILURES:
        raise SystemExit(
            f"logist-mock-agent: unknown kind '{kind}' (known: {', '.join(sorted(FAILURES))})"
        )
    if "times" in run.opts and count_run() > int(run.opts["times"]):
        return scenario_edit(run)
    line = FAILURES[kind]
    emit("message", text=f"Working on: {first_line(run.prompt)}")
    tool_call("read", {"path": run.target or DEFAULT_FILE})  # no result: the call failed
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    emit("error", message=line)
    return 1


def scenario_review(run: Run) -> int:
    diff = proposed_diff(run.rendered)
    added = [line for line in diff if line.startswith("+") and not line.startswith("+++")]
    removed = [line for line in diff if line.startswith("-") and not line.startswith("---")]
    emit(
        "message",
        text=f"Reviewing the proposed change: {len(added)} line(s) added, {len(removed)} removed",
    )
    verdict = run.opts.get("verdict")
    if verdict is None:
        verdict = "approve" if any(ADDRESSED in line for line in added) else "changes"
    if verdict == "approve":
        emit("message", text="VERDICT: APPROVE")
    else:
        emit("message", text="VERDICT: CHANGES")
        emit("message", text=REVIEW_COMMENT)
    usage(200, 30, 0.0008)
    summary = "review: approved" if verdict == "approve" else "review: changes requested"
    emit("done", success=True, summary=summary)
    return 0


# A process that outlives the mock: `daemon` double-forks into a new session and moves to
# `/`, `elsewhere` only moves to `/`; each writes its pid to its file once it runs.
_LINGERER = """
import os, sys, time
path, kind = sys.argv[1], sys.argv[2]
if kind == "daemon":
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
if kind != "child":
    os.chdir("/")
with open(path + ".tmp", "w") as fh:
    fh.write(str(os.getpid()))
os.replace(path + ".tmp", path)
time.sleep(3600)
"""
LINGER_KINDS = ("child", "daemon", "elsewhere")
LINGER_PIDS = "linger-pids"


def scenario_linger(run: Run) -> int:
    tag = run.opts.get("tag", "logist-linger")
    job_dir = Path(os.environ.get("LOGIST_JOB_DIR", "."))
    files = [job_dir / f"linger-{kind}.pid" for kind in LINGER_KINDS]
    for path in files:
        path.unlink(missing_ok=True)  # from an earlier step
    for kind, path in zip(LINGER_KINDS, files, strict=True):
        subprocess.Popen(
            [sys.executable, "-I", "-c", _LINGERER, str(path), kind, tag],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    while not all(path.exists() for path in files):
        time.sleep(0.01)
    pids = {kind: int(path.read_text()) for kind, path in zip(LINGER_KINDS, files, strict=True)}
    (job_dir / f"{LINGER_PIDS}.tmp").write_text(json.dumps(pids))
    (job_dir / f"{LINGER_PIDS}.tmp").replace(job_dir / LINGER_PIDS)
    emit("message", text=f"started {', '.join(f'{k} {v}' for k, v in pids.items())}")
    if run.opts.get("hold") == "true":
        while True:
            time.sleep(3600)
    code = int(run.opts.get("code", "0"))
    if code == 0:
        emit("done", success=True, summary="left processes behind")
    return code


def scenario_multi_hunk(run: Run) -> int:
    """Replace lines 1, 1+every, 1+2*every... (`every=`, default 10) of the target (or
    LOGIST_MOCK.md; made of 30 numbered lines when missing) with `logist-mock: hunk K:
    <first prompt line>`: several separated hunks in one file. `also=PATH` appends a
    line to a second file."""
    emit("message", text=f"Working on: {first_line(run.prompt)}")
    every = max(1, int(run.opts.get("every", "10")))
    path = run.target or DEFAULT_FILE
    existing = read_file(path)
    content = existing if existing is not None else b"".join(b"line %d\n" % n for n in range(1, 31))
    lines = content.splitlines(keepends=True)
    for k, index in enumerate(range(0, len(lines), every)):
        ending = b"\n" if lines[index].endswith(b"\n") else b""
        lines[index] = f"logist-mock: hunk {k + 1}: {first_line(run.prompt)}".encode() + ending
    write_file(path, b"".join(lines))
    emit("tool_call", tool="edit", input={"path": path, "every": every})
    emit("file_change", path=path, action="modify" if existing is not None else "create")
    also = run.opts.get("also")
    if also:
        before = read_file(also) or b""
        if before and not before.endswith(b"\n"):
            before += b"\n"
        write_file(also, before + f"logist-mock: {first_line(run.prompt)}\n".encode())
        emit("file_change", path=also, action="modify" if before else "create")
    usage(150, 60, 0.0015)
    emit("done", success=True, summary="changed several places")
    return 0


SCENARIOS: dict[str, Callable[[Run], int]] = {
    "multi_hunk": scenario_multi_hunk,
    "linger": scenario_linger,
    "edit": scenario_edit,
    "slow": scenario_slow,
    "hang": scenario_hang,
    "crash": scenario_crash,
    "cost": scenario_cost,
    "question": scenario_question,
    "noop": scenario_noop,
    "flood": scenario_flood,
    "fail": scenario_fail,
    "review": scenario_review,
}


def default_scenario(role: str) -> str:
    """The scenario when none is chosen: a supervisor reviews, anyone else edits."""
    return "review" if role == SUPERVISOR else "edit"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="logist-mock-agent",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt", help="the user's prompt")
    source.add_argument("--prompt-file", help="a file holding the user's prompt")
    parser.add_argument(
        "--rendered-prompt-file", help="the fully rendered prompt of this step (role, diff...)"
    )
    parser.add_argument("--role", default="worker", help="worker, supervisor or a user role")
    parser.add_argument("--scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--target", help="file to edit, relative to the working directory")
    parser.add_argument("--opt", action="append", default=[], metavar="K=V")
    parser.add_argument("--resume", metavar="SESSION", help="continue this session")
    parser.add_argument("--answer", help="the user's answer to the session's question")
    parser.add_argument("--model", help="the model its usage events name")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prompt = args.prompt if args.prompt is not None else Path(args.prompt_file).read_text()
    rendered = Path(args.rendered_prompt_file).read_text() if args.rendered_prompt_file else None
    opts = dict(item.split("=", 1) for item in args.opt if "=" in item)
    USAGE_STYLE.update(model=args.model, cost=opts.get("report_cost") != "false")
    session = open_session(args.resume, prompt)
    if session is None:
        return 1
    run = Run(prompt=prompt, target=args.target, opts=opts, rendered=rendered, role=args.role,
              session=session, answer=args.answer)  # fmt: skip
    try:
        return SCENARIOS[args.scenario or default_scenario(args.role)](run)
    except Refused as exc:
        message = f"refused to touch {exc}"
        sys.stderr.write(f"logist-mock-agent: {message}\n")
        emit("error", message=message)
        return 2


if __name__ == "__main__":
    sys.exit(main())
