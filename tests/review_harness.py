"""Helpers for the review, hunk-mapping and server-job tests: jobs in review made through the
real CLI (`job create` + `job poststep --patch`, so a job proposes exactly a chosen change),
a language-server session over stdio, and waiting on what the server publishes.

The editor model here applies `workspace/applyEdit` with UTF-16 columns, as LSP defines
them, so a server that counted code points or bytes would leave a visibly wrong buffer.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from lsprotocol import types

import lsp_client
from conftest import git, run_logist
from lsp_client import Editor

DONE_RESPONSE = '{"type": "message", "text": "replayed"}\n{"type": "done", "success": true}\n'
T = TypeVar("T")

# LSP line breaks are \n, \r\n and \r only (not form feed, not U+2028 as str.splitlines has).
_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` as an LSP client counts them, with their endings."""
    return _LSP_LINE.findall(text)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def offset_of(text: str, pos: types.Position) -> int:
    """The string index of an LSP position (line, UTF-16 column) in `text`."""
    lines = lsp_lines(text)
    before = sum(len(line) for line in lines[: pos.line])
    line = lines[pos.line] if pos.line < len(lines) else ""
    units = 0
    for index, char in enumerate(line):
        if units >= pos.character:
            return before + index
        units += utf16_len(char)
    return before + len(line)


def apply_edits_utf16(text: str, edits: Sequence[types.TextEdit]) -> str:
    ordered = sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character))
    for edit in reversed(ordered):
        start, end = offset_of(text, edit.range.start), offset_of(text, edit.range.end)
        text = text[:start] + edit.new_text + text[end:]
    return text


class Utf16Editor(Editor):
    """The test editor, with applyEdit positions read as UTF-16 code units."""

    def apply_edits(self, text: str, edits: list[types.TextEdit]) -> str:
        return apply_edits_utf16(text, edits)

    def edit(self, uri: str, start: tuple[int, int], end: tuple[int, int], text: str) -> None:
        """An incremental change, as VS Code and Neovim send them: a range (LSP lines,
        UTF-16 columns) replaced by `text`, applied here with LSP semantics."""
        rng = types.Range(types.Position(*start), types.Position(*end))
        self.buffers[uri] = apply_edits_utf16(self.buffers[uri], [types.TextEdit(rng, text)])
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.versions[uri]
                ),
                content_changes=[types.TextDocumentContentChangePartial(range=rng, text=text)],
            )
        )

    def diagnostics(self, uri: str) -> list[types.Diagnostic]:
        return [d for d in self.client.diagnostics.get(uri, []) if d.source == "logist"]

    async def lenses(self, uri: str) -> list[types.CodeLens]:
        result = await self.client.text_document_code_lens_async(
            types.CodeLensParams(text_document=types.TextDocumentIdentifier(uri=uri))
        )
        return list(result or [])

    async def actions(self, uri: str, line: int) -> list[types.CodeAction]:
        result = await self.client.text_document_code_action_async(
            types.CodeActionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                range=types.Range(types.Position(line, 0), types.Position(line, 0)),
                context=types.CodeActionContext(diagnostics=[]),
            )
        )
        return [a for a in result or [] if isinstance(a, types.CodeAction)]

    async def run_command(self, command: types.Command) -> Any:
        return await self.client.workspace_execute_command_async(
            types.ExecuteCommandParams(command=command.command, arguments=command.arguments)
        )


def lsp_session(
    roots: Sequence[Path], env: dict[str, str] | None = None
) -> AbstractAsyncContextManager[Utf16Editor]:
    """The real `logist-server` over stdio, initialised with `roots` as workspace folders."""
    return lsp_client.lsp_session(roots, Utf16Editor, env)


async def accept(editor: Utf16Editor, job_id: str, hunks: list[str] | None) -> dict[str, Any]:
    """`logist/acceptJob` for `hunks` of the job (None: the whole job)."""
    params: dict[str, Any] = {"jobId": job_id}
    if hunks is not None:
        params["hunkIds"] = hunks
    result: dict[str, Any] = await editor.request("logist/acceptJob", params)
    return result


async def diff_hunk_ids(editor: Utf16Editor, job_id: str) -> list[str]:
    """The job's hunk ids in file then line order, as getJobDiff shows them."""
    diff = await editor.request("logist/getJobDiff", {"jobId": job_id})
    return [h["id"] for f in diff["files"] for h in f["hunks"]]


def cli_hunks(repo: Path, job_id: str) -> list[dict[str, Any]]:
    """`logist job hunks ID --json`: every hunk of the job, in file then line order."""
    proc = run_logist("job", "hunks", job_id, "--json", cwd=repo)
    hunks: list[dict[str, Any]] = json.loads(proc.stdout)["hunks"]
    return hunks


def cli_hunk_ids(repo: Path, job_id: str) -> list[str]:
    """The ids `logist job hunks` lists for the job, in file then line order."""
    return [h["id"] for h in cli_hunks(repo, job_id)]


async def until(
    what: Callable[[], T | None], description: str | Callable[[], str], timeout: float = 30
) -> T:
    """Poll `what()` until it is truthy; fail naming `description` after `timeout` s (a
    guard against hangs only: nothing here measures time)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = what()
        if value:
            return value
        if loop.time() > deadline:
            text = description() if callable(description) else description
            raise AssertionError(f"timed out waiting for {text}")
        await asyncio.sleep(0.02)


# -- jobs in review with a chosen change -----------------------------------------------------
def make_patch(repo: Path, work: Path, name: str, edits: dict[str, bytes | None]) -> Path:
    """A binary-safe patch of `edits` (None deletes the file) against `repo`'s HEAD."""
    clone = work / f"clone-{name}"
    git(work, "clone", "-q", str(repo), str(clone))
    for file, content in edits.items():
        target = clone / file
        if content is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
    git(clone, "add", "-A")
    patch = work / f"{name}.patch"
    patch.write_bytes(
        git_bytes(clone, "diff", "--cached", "--binary", "--no-renames", "--no-color")
    )
    return patch


def git_bytes(repo: Path, *args: str) -> bytes:
    import subprocess

    proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def job_in_review(
    repo: Path, work: Path, edits: dict[str, bytes | None], prompt: str = "patched"
) -> dict[str, Any]:
    """A job (through the CLI) whose only step replays a response and applies `edits`."""
    work.mkdir(parents=True, exist_ok=True)
    name = f"p{len(list(work.glob('*.patch')))}"
    patch = make_patch(repo, work, name, edits)
    response = work / f"{name}.jsonl"
    response.write_text(DONE_RESPONSE)
    created = json.loads(run_logist("job", "create", "--json", "--prompt", prompt, cwd=repo).stdout)
    proc = run_logist(
        "job", "poststep", created["id"], "--json", "--response", str(response),
        "--patch", str(patch), cwd=repo,
    )  # fmt: skip
    job: dict[str, Any] = json.loads(proc.stdout)
    assert job["status"] == "review", job
    return job
