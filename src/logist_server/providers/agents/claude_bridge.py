"""The claude-code bridge: runs claude in its bidirectional mode and answers its requests.

`python -I -m logist_server.providers.agents.claude_bridge --workspace W --prompt-file P
--permissions JSON [--api-key-env NAME] -- CLAUDE ARGV...` starts claude with
`--input-format stream-json --output-format stream-json --permission-prompt-tool stdio`,
sends the prompt as a user message on its stdin and relays its stdout lines. Each
`control_request` `can_use_tool` is answered from the job's permissions (`claude_tools`);
when the policy says `ask`, and for `AskUserQuestion`, the bridge prints a typed question
(a `logist_bridge` line), waits for `$LOGIST_ANSWER_FILE` and answers claude, which goes on
in the same process. After claude's `result` its stdin is closed and claude exits.

Hostile output: lines are bounded (`MAX_LINE`; a longer one is dropped and said); claude
cannot pose as the bridge: a JSON line is decoded (invalid UTF-8 replaced, as the parser
does) and re-encoded, a `logist_bridge` one dropped, and any other line (plain text,
malformed JSON, claude's stderr, read on its own pipe) is relayed inside a bridge `message`
event, so nothing claude prints reaches the parser as a line of its own making.
SIGTERM, SIGINT and SIGHUP are forwarded to claude, which also gets SIGKILL if the bridge
dies (`PR_SET_PDEATHSIG`). The bridge exits with claude's status (128+N for a signal), or 1
when claude exits 0 without a result or with one that failed, or after tool uses refused by
its own rules (see `claude_parser`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any

from logist_server.domain.permissions import Permissions
from logist_server.providers.agents import env_alias
from logist_server.providers.agents.answer_file import clear, read_answer
from logist_server.providers.agents.claude_parser import BRIDGE_TYPE, denied_tools, error_reason
from logist_server.providers.agents.claude_tools import decision, describe

MAX_LINE = 4 * 1024 * 1024  # bytes of one line from claude
ANSWER_POLL_S = 0.1
ALLOW_WORDS = ("allow", "yes", "y", "ok", "approve", "always")


_OUT = threading.Lock()  # claude's stdout and stderr are relayed from two threads


def _write(obj: dict[str, Any]) -> None:
    with _OUT:
        sys.stdout.buffer.write(json.dumps(obj).encode() + b"\n")
        sys.stdout.buffer.flush()


def emit(obj: dict[str, Any]) -> None:
    _write({"type": BRIDGE_TYPE, **obj})


def relay(obj: dict[str, Any]) -> None:
    """One of claude's JSON lines, re-encoded: what the parser reads is what the bridge read."""
    _write(obj)


def relay_text(line: bytes) -> None:
    """A line of claude's that is not a JSON object, as text inside a bridge message."""
    text = line.decode("utf-8", "replace").rstrip("\r\n")
    if text.strip():
        emit({"event": {"type": "message", "text": text}})


def relay_stderr(stream: IO[bytes]) -> None:
    """claude's stderr, line by line, as text (never a line of its own in the output)."""
    while (line := read_line(stream)) is not None:
        relay_text(line)


def read_line(stream: IO[bytes]) -> bytes | None:
    """The next line (None at the end); a line over MAX_LINE is skipped and said."""
    line = stream.readline(MAX_LINE)
    if not line:
        return None
    if len(line) < MAX_LINE or line.endswith(b"\n"):
        return line
    dropped = len(line)
    while True:
        more = stream.readline(MAX_LINE)
        dropped += len(more)
        if not more or more.endswith(b"\n"):
            break
    note = f"claude-code printed a line of {dropped} bytes (over {MAX_LINE}): dropped"
    emit({"event": {"type": "message", "text": note}})
    return b"\n"


class Bridge:
    """One claude process and the answers it gets."""

    def __init__(self, proc: subprocess.Popen[bytes], args: argparse.Namespace) -> None:
        self.proc = proc
        self.workspace: str = args.workspace
        self.policy = Permissions(**json.loads(args.permissions or "{}"))
        self.answer_file = os.environ.get("LOGIST_ANSWER_FILE", "")
        self.decided: set[str] = set()
        self.result: dict[str, Any] | None = None

    def send(self, obj: dict[str, Any]) -> None:
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            return
        try:
            stdin.write(json.dumps(obj).encode() + b"\n")
            stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # claude is gone: its exit status tells

    def close_input(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def handle(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            obj = json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            relay_text(line)
            return
        kind = obj.get("type")
        if kind == BRIDGE_TYPE:
            return  # claude cannot pose as the bridge
        if kind == "control_request":
            self.control(obj)
            return
        if kind in ("control_response", "control_cancel_request", "keep_alive"):
            return
        relay(obj)
        if kind == "result":
            self.result = obj
            self.close_input()

    def control(self, obj: dict[str, Any]) -> None:
        request_id = obj.get("request_id")
        request = obj.get("request")
        if not isinstance(request, dict) or request.get("subtype") != "can_use_tool":
            self.send({"type": "control_response", "response": {
                "subtype": "error", "request_id": request_id,
                "error": "Logist does not serve this request"}})  # fmt: skip
            return
        tool = str(request.get("tool_name") or "")
        tool_input = request.get("input")
        tool_input = tool_input if isinstance(tool_input, dict) else {}
        use_id = request.get("tool_use_id")
        if tool == "AskUserQuestion":
            reply = self.ask_questions(str(request_id), tool_input)
        else:
            reply = self.permission(str(request_id), tool, tool_input, use_id)
        if reply is not None:
            self.send({"type": "control_response", "response": {
                "subtype": "success", "request_id": request_id, "response": reply}})  # fmt: skip

    def permission(
        self, request_id: str, tool: str, tool_input: dict[str, Any], use_id: Any
    ) -> dict[str, Any] | None:
        verdict = decision(self.policy, self.workspace, tool, tool_input)
        what = describe(tool, tool_input, self.workspace)
        if verdict == "ask":
            answer = self.ask(request_id, what, "permission", ["allow", "deny"])
            if answer is None:
                return None
            word = answer.strip().lower().split(maxsplit=1)
            if word and word[0].rstrip(".,:;!") in ALLOW_WORDS:
                return {"behavior": "allow", "updatedInput": tool_input}
            verdict, why = "deny", f"the user denied it: {answer.strip()}"
        else:
            why = "the job's permission policy (Logist) does not allow it"
        if verdict == "allow":
            return {"behavior": "allow", "updatedInput": tool_input}
        self.decided.add(str(use_id))
        emit(
            {"denied": str(use_id), "event": {"type": "message", "text": f"denied: {what} ({why})"}}
        )
        return {"behavior": "deny", "message": f"Permission denied: {why}."}

    def ask_questions(self, request_id: str, tool_input: dict[str, Any]) -> dict[str, Any] | None:
        """`AskUserQuestion`: each question in turn, then the answers to claude."""
        answers: dict[str, str] = {}
        questions = tool_input.get("questions")
        for index, item in enumerate(questions if isinstance(questions, list) else []):
            if not isinstance(item, dict) or not isinstance(item.get("question"), str):
                continue
            options = [
                str(o.get("label")) for o in item.get("options") or []
                if isinstance(o, dict) and o.get("label") is not None
            ]  # fmt: skip
            text = item["question"]
            if item.get("multiSelect") is True:
                text += " (several may be chosen: separate them with commas)"
            answer = self.ask(f"{request_id}-{index}", text, "question", options)
            if answer is None:
                return None
            answers[item["question"]] = answer.strip()
        return {"behavior": "allow", "updatedInput": {**tool_input, "answers": answers}}

    def ask(self, ask_id: str, text: str, kind: str, options: list[str]) -> str | None:
        """Print a question, wait for the answer file; None when claude died meanwhile."""
        if self.answer_file:
            clear(self.answer_file)  # a late answer to an earlier question
        emit({"event": {"type": "question", "id": ask_id, "kind": kind, "text": text,
                        "options": options}})  # fmt: skip
        while self.proc.poll() is None:
            data = read_answer(self.answer_file) if self.answer_file else None
            if data is not None:
                with contextlib.suppress(OSError):  # the next question waits anew
                    os.unlink(self.answer_file)
                return data
            time.sleep(ANSWER_POLL_S)
        return None

    def status(self, code: int) -> int:
        """The bridge's exit status for claude's `code` (see the module's docstring)."""
        if code < 0:
            return 128 - code
        if code != 0:
            return code
        if self.result is None:
            emit({"event": {"type": "error", "message": "claude-code exited without a result"}})
            return 1
        if error_reason(self.result) is not None or denied_tools(self.result, self.decided):
            return 1
        return 0


#: Signals the bridge forwards to claude (blocked until its handlers are in place).
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the bridge dies (Linux), so claude is never orphaned;
    the forwarded signals unblocked again (the bridge blocks them around the start)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != _BRIDGE_PID:  # the bridge died before the line above took effect
        os._exit(1)


_BRIDGE_PID = os.getpid()  # read in the child, after the fork: the bridge's own pid


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="claude_bridge")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--prompt-file", required=True)
    parser.add_argument("--permissions", default="{}")
    parser.add_argument("--api-key-env")
    parser.add_argument("claude", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.claude and args.claude[0] == "--":
        args.claude = args.claude[1:]
    if not args.claude:
        parser.error("no claude command line after --")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with open(args.prompt_file, encoding="utf-8", errors="replace") as handle:
        prompt = handle.read()
    env = dict(os.environ)
    if args.api_key_env:  # the key named, never another one claude inherited
        env_alias.copy({"ANTHROPIC_API_KEY": args.api_key_env}, env, clear=True)
    env.pop("LOGIST_ANSWER_FILE", None)  # the bridge's, not claude's
    # A SIGTERM between claude's start and the handlers below waits, then is forwarded.
    signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
    proc = subprocess.Popen(
        args.claude, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=env, preexec_fn=_die_with_parent,
    )  # fmt: skip
    assert proc.stderr is not None
    errors = threading.Thread(target=relay_stderr, args=(proc.stderr,), daemon=True)
    errors.start()

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            proc.send_signal(signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)
    bridge = Bridge(proc, args)
    bridge.send({"type": "user", "message": {"role": "user", "content": prompt}})
    assert proc.stdout is not None
    while (line := read_line(proc.stdout)) is not None:
        bridge.handle(line)
    bridge.close_input()
    code = proc.wait()
    errors.join(timeout=5)  # its last lines (a child of claude may hold the pipe open)
    return bridge.status(code)


if __name__ == "__main__":
    sys.exit(main())
