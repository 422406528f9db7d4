"""Review in the editor: hunks of jobs in review as hint diagnostics, code lenses and code
actions on open documents, and accepting them through `workspace/applyEdit`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

from ..apply import execute_plan, plan_accept
from ..engine import Engine
from ..errors import ConflictError, NotInRepositoryError
from ..fsutil import atomic_write
from ..git import git
from ..hunks import FileHunks, Hunk, MappedHunk, apply_to_text, job_hunks, map_hunks, split_lines
from ..locks import repo_lock_async
from ..model import Job, JobStatus
from .app import LogistServer
from .protocol import command_name

log = logging.getLogger(__name__)
ACCEPT_COMMAND = command_name("logist/acceptJob")
REJECT_COMMAND = command_name("logist/rejectJob")
SOURCE = "logist"
DEBOUNCE_S = 0.1


class Proposal:
    """One job's hunks located in one document's current text."""

    def __init__(self, engine: Engine, job: Job, file: FileHunks, mapped: list[MappedHunk]) -> None:
        self.engine = engine
        self.job = job
        self.file = file
        self.mapped = mapped


class Review:
    """Per-hunk review state: caches of hunks and base texts, publication of diagnostics."""

    def __init__(self, server: LogistServer) -> None:
        self.server = server
        self._hunks: dict[str, list[FileHunks]] = {}
        self._base_text: dict[tuple[str, str], str] = {}
        self._review_jobs: dict[Path, list[Job]] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}

    # -- data ------------------------------------------------------------------------------
    def hunks(self, engine: Engine, job: Job) -> list[FileHunks]:
        cached = self._hunks.get(job.id)
        if cached is None:
            cached = job_hunks(engine.repo, job)
            self._hunks[job.id] = cached
        return cached

    def base_text(self, engine: Engine, job: Job, path: str) -> str:
        key = (job.id, path)
        text = self._base_text.get(key)
        if text is None:
            proc = git(["cat-file", "blob", f"{job.base_commit}:{path}"], engine.repo, check=False)
            text = proc.stdout.decode(errors="replace") if proc.returncode == 0 else ""
            self._base_text[key] = text
        return text

    def review_jobs(self, engine: Engine) -> list[Job]:
        jobs = self._review_jobs.get(engine.repo)
        if jobs is None:
            jobs = engine.store.list_jobs([JobStatus.REVIEW]) if engine.has_store() else []
            self._review_jobs[engine.repo] = jobs
        return jobs

    def current_text(self, path: Path) -> str | None:
        text = self.server.open_text(path)
        if text is not None:
            return text
        try:
            return path.read_bytes().decode(errors="replace")
        except OSError:
            return None

    def proposals(self, uri: str) -> list[Proposal]:
        """Pending (not yet accepted) hunks of review jobs on this document."""
        try:
            path = self.server.path_of(uri)
            engine = self.server.engine_for_path(path)
        except (JsonRpcInvalidParams, NotInRepositoryError):
            return []  # not a workspace file in a repository: nothing to propose
        relative = path.relative_to(engine.repo).as_posix()
        text = self.current_text(path) or ""
        found: list[Proposal] = []
        for job in self.review_jobs(engine):
            if job.result.diff is None or relative not in job.result.diff.paths:
                continue
            for file in self.hunks(engine, job):
                if file.path != relative or file.kind == "binary":
                    continue
                pending = [h for h in file.hunks if h.id not in job.result.accepted_hunks]
                if pending:
                    base = self.base_text(engine, job, relative)
                    found.append(Proposal(engine, job, file, map_hunks(base, text, pending)))
        return found

    # -- invalidation and diagnostics ------------------------------------------------------
    def job_changed(self, engine: Engine, job_id: str, status: JobStatus) -> None:
        self._review_jobs.pop(engine.repo, None)
        if status != JobStatus.REVIEW:
            self._hunks.pop(job_id, None)
        self.refresh_all()

    def refresh_all(self) -> None:
        for uri in list(self.server.workspace.text_documents):
            self.publish(uri)
        caps = self.server.client_capabilities.workspace
        if caps and caps.code_lens and caps.code_lens.refresh_support:
            self.server.run_task(
                self.server.workspace_code_lens_refresh_async(None), "lens refresh"
            )

    def schedule_publish(self, uri: str) -> None:
        """Republish after edits settle (hunks follow the user's typing)."""
        loop = asyncio.get_running_loop()
        previous = self._pending.pop(uri, None)
        if previous is not None:
            previous.cancel()
        self._pending[uri] = loop.call_later(DEBOUNCE_S, self.publish, uri)

    def publish(self, uri: str) -> None:
        self._pending.pop(uri, None)
        document = self.server.workspace.text_documents.get(uri)
        if document is None:
            return
        lines = split_lines(document.source)
        diagnostics = []
        for proposal in self.proposals(uri):
            for item in proposal.mapped:
                diagnostics.append(
                    types.Diagnostic(
                        range=_lsp_range(lines, item),
                        message=_describe(proposal.job, item),
                        severity=types.DiagnosticSeverity.Hint,
                        source=SOURCE,
                        code=item.hunk.id,
                        data={"jobId": proposal.job.id, "hunkId": item.hunk.id},
                    )
                )
        self.server.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(
                uri=uri, diagnostics=diagnostics, version=document.version
            )
        )

    # -- code actions and lenses -----------------------------------------------------------
    def code_actions(self, params: types.CodeActionParams) -> list[types.CodeAction]:
        uri = params.text_document.uri
        document = self.server.workspace.text_documents.get(uri)
        lines = split_lines(document.source) if document else []
        first, last = params.range.start.line, params.range.end.line
        actions: list[types.CodeAction] = []
        jobs_seen: set[str] = set()
        for proposal in self.proposals(uri):
            job_id = proposal.job.id
            for item in proposal.mapped:
                lo, hi = _line_span(lines, item)
                if hi < first or lo > last or item.conflict:
                    continue
                actions.append(
                    _action(
                        f"Accept change from Logist job {job_id}",
                        ACCEPT_COMMAND,
                        {"jobId": job_id, "hunkIds": [item.hunk.id]},
                        preferred=True,
                    )
                )
                jobs_seen.add(job_id)
        for job_id in sorted(jobs_seen):
            actions.append(
                _action(
                    f"Accept all changes from Logist job {job_id}",
                    ACCEPT_COMMAND,
                    {"jobId": job_id},
                )
            )
            actions.append(
                _action(f"Reject Logist job {job_id}", REJECT_COMMAND, {"jobId": job_id})
            )
        return actions

    def code_lenses(self, params: types.CodeLensParams) -> list[types.CodeLens]:
        uri = params.text_document.uri
        document = self.server.workspace.text_documents.get(uri)
        lines = split_lines(document.source) if document else []
        lenses: list[types.CodeLens] = []
        for proposal in self.proposals(uri):
            job_id = proposal.job.id
            for item in proposal.mapped:
                line = min(item.start, max(len(lines) - 1, 0))
                where = types.Range(types.Position(line, 0), types.Position(line, 0))
                label = "conflict: edited since the job started" if item.conflict else "Accept"
                command = types.Command(
                    title=f"Logist {job_id}: {label}",
                    command=ACCEPT_COMMAND,
                    arguments=[{"jobId": job_id, "hunkIds": [item.hunk.id]}],
                )
                lenses.append(types.CodeLens(range=where, command=command))
                lenses.append(
                    types.CodeLens(
                        range=where,
                        command=types.Command(
                            title="Reject job",
                            command=REJECT_COMMAND,
                            arguments=[{"jobId": job_id}],
                        ),
                    )
                )
        return lenses

    # -- accept ----------------------------------------------------------------------------
    async def accept(self, engine: Engine, job: Job, hunk_ids: list[str] | None) -> dict[str, Any]:
        """Apply chosen (or all pending) hunks: open buffers via applyEdit, others on disk.

        Holds the repository's working-tree lock, as `logist job accept` does, so two
        accepts (from any process) never interleave their reads and writes."""
        async with repo_lock_async(engine.repo, "working-tree"):
            job = engine.get(job.id)  # another process may have settled it meanwhile
            if job.status != JobStatus.REVIEW:
                raise JsonRpcInvalidParams(f"job {job.id} is {job.status}, not in review")
            return await self._accept(engine, job, hunk_ids)

    async def _accept(self, engine: Engine, job: Job, hunk_ids: list[str] | None) -> dict[str, Any]:
        files = self.hunks(engine, job)
        by_id: dict[str, tuple[FileHunks, Hunk]] = {h.id: (f, h) for f in files for h in f.hunks}
        if hunk_ids is None:
            chosen = [i for i in by_id if i not in job.result.accepted_hunks]
        else:
            for hunk_id in hunk_ids:
                if not hunk_id.startswith(job.id + "/"):
                    raise JsonRpcInvalidParams(f"hunk {hunk_id} does not belong to job {job.id}")
                if hunk_id not in by_id:
                    raise JsonRpcInvalidParams(f"job {job.id} has no hunk {hunk_id}")
            chosen = [i for i in dict.fromkeys(hunk_ids) if i not in job.result.accepted_hunks]
        groups: dict[str, list[Hunk]] = {}
        for hunk_id in chosen:
            file, hunk = by_id[hunk_id]
            groups.setdefault(file.path, []).append(hunk)
        applied: list[str] = []
        conflicts: list[dict[str, str]] = []
        buffer_edits: list[types.TextDocumentEdit] = []
        disk_writes: list[tuple[Path, str]] = []
        whole_files: list[str] = []
        file_kinds = {f.path: f for f in files}
        for path, hunks in groups.items():
            file = file_kinds[path]
            full = engine.repo / path
            if file.kind != "modify":
                whole_files.append(path)
                continue
            current = self.current_text(full)
            if current is None:
                conflicts += [_conflict(h, "the file is gone") for h in hunks]
                continue
            mapped = map_hunks(self.base_text(engine, job, path), current, hunks)
            for item in mapped:
                if item.conflict:
                    conflicts.append(
                        _conflict(item.hunk, "you changed these lines since the job started")
                    )
            good = [m for m in mapped if not m.conflict]
            if not good:
                continue
            uri = from_fs_path(str(full)) or ""
            document = self.server.workspace.text_documents.get(uri)
            if document is not None and self.server.open_text(full) is not None:
                lines = split_lines(current)
                edits = [
                    types.TextEdit(range=_edit_range(lines, m), new_text="".join(m.hunk.new_lines))
                    for m in good
                ]
                buffer_edits.append(
                    types.TextDocumentEdit(
                        text_document=types.OptionalVersionedTextDocumentIdentifier(
                            uri=uri, version=document.version
                        ),
                        edits=edits,
                    )
                )
            else:
                disk_writes.append((full, apply_to_text(current, good)))
            applied += [m.hunk.id for m in good]
        plan = []
        if whole_files:
            assert job.base_commit is not None and job.result.result_commit is not None
            try:
                plan = plan_accept(
                    engine.repo, job.base_commit, job.result.result_commit, set(whole_files)
                )
                applied += [
                    h.id for p in whole_files for h in file_kinds[p].hunks if h.id in chosen
                ]
            except ConflictError as exc:
                conflicts += [
                    _conflict(h, "changed since the job started")
                    for p in exc.files
                    for h in file_kinds[p].hunks
                ]
        if applied:
            engine.store.update(job.id, None, [("accepting", {"hunks": applied})])
        if buffer_edits:
            params = types.ApplyWorkspaceEditParams(
                edit=types.WorkspaceEdit(document_changes=buffer_edits),
                label=f"Accept Logist job {job.id}",
            )
            try:
                result = await self.server.workspace_apply_edit_async(params)
                refused_why = None if result.applied else result.failure_reason
                refused_edit = not result.applied
            except Exception as exc:
                refused_why, refused_edit = f"the editor could not apply the edit: {exc}", True
            if refused_edit:
                reason = refused_why or "the editor refused the edit"
                refused = {e.text_document.uri for e in buffer_edits}
                keep = []
                for hunk_id in applied:
                    f, _h = by_id[hunk_id]
                    uri = from_fs_path(str(engine.repo / f.path))
                    if uri in refused:
                        conflicts.append({"hunkId": hunk_id, "path": f.path, "reason": reason})
                    else:
                        keep.append(hunk_id)
                applied = keep
        for full, text in disk_writes:
            atomic_write(full, text.encode())
        execute_plan(engine.repo, plan)
        if applied:
            job = engine.record_hunks_accepted(job.id, applied, set(by_id))
        self._review_jobs.pop(engine.repo, None)
        self.refresh_all()
        return {
            "jobId": job.id,
            "status": job.status.value,
            "applied": applied,
            "conflicts": conflicts,
        }

    def diff(self, engine: Engine, job: Job) -> dict[str, Any]:
        """The job's hunks, located in the current buffers (or files)."""
        out = []
        for file in self.hunks(engine, job):
            full = engine.repo / file.path
            current = self.current_text(full) or ""
            lines = split_lines(current)
            mapped = (
                map_hunks(self.base_text(engine, job, file.path), current, file.hunks)
                if file.kind == "modify"
                else [MappedHunk(h, h.old_start, h.old_end, False) for h in file.hunks]
            )
            out.append(
                {
                    "uri": from_fs_path(str(full)),
                    "path": file.path,
                    "kind": file.kind,
                    "hunks": [
                        {
                            "id": m.hunk.id,
                            "range": _range_json(_edit_range(lines, m)),
                            "oldText": "".join(m.hunk.old_lines),
                            "newText": "".join(m.hunk.new_lines),
                            "conflict": m.conflict,
                            "accepted": m.hunk.id in job.result.accepted_hunks,
                        }
                        for m in mapped
                    ],
                }
            )
        return {"jobId": job.id, "status": job.status.value, "files": out}


def _conflict(hunk: Hunk, reason: str) -> dict[str, str]:
    return {"hunkId": hunk.id, "path": hunk.path, "reason": reason}


def _action(
    title: str, command: str, argument: dict[str, Any], preferred: bool = False
) -> types.CodeAction:
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        command=types.Command(title=title, command=command, arguments=[argument]),
        is_preferred=preferred or None,
    )


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _edit_range(lines: list[str], item: MappedHunk) -> types.Range:
    """The range a hunk replaces in `lines` (whole lines; end-of-file without newline too)."""
    n = len(lines)
    start, end = item.start, item.end
    if start >= n and n and not lines[-1].endswith("\n"):
        last = types.Position(n - 1, _utf16_len(lines[-1]))
        return types.Range(last, last)
    if end >= n and n and not lines[-1].endswith("\n") and end > start:
        return types.Range(types.Position(start, 0), types.Position(n - 1, _utf16_len(lines[-1])))
    return types.Range(types.Position(start, 0), types.Position(end, 0))


def _lsp_range(lines: list[str], item: MappedHunk) -> types.Range:
    """Where a diagnostic sits: the hunk's lines, or the line an insertion goes before."""
    n = len(lines)
    if item.end > item.start:
        last = min(item.end, n) - 1
        text = lines[last].rstrip("\r\n") if 0 <= last < n else ""
        return types.Range(
            types.Position(item.start, 0), types.Position(max(last, 0), _utf16_len(text))
        )
    line = min(item.start, max(n - 1, 0))
    text = lines[line].rstrip("\r\n") if line < n else ""
    return types.Range(types.Position(line, 0), types.Position(line, _utf16_len(text)))


def _line_span(lines: list[str], item: MappedHunk) -> tuple[int, int]:
    """The lines where the hunk's actions are offered: its diagnostic's, and those of the
    range `getJobDiff` reports (an insertion at the end of a file sits past the last line)."""
    shown, edit = _lsp_range(lines, item), _edit_range(lines, item)
    whole_lines = edit.end.character == 0 and edit.end.line > edit.start.line
    edit_last = edit.end.line - 1 if whole_lines else edit.end.line
    return min(shown.start.line, edit.start.line), max(shown.end.line, edit_last)


def _describe(job: Job, item: MappedHunk) -> str:
    added, removed = len(item.hunk.new_lines), len(item.hunk.old_lines)
    what = (
        f"adds {added} line(s)"
        if not removed
        else f"removes {removed} line(s)"
        if not added
        else f"replaces {removed} line(s) with {added}"
    )
    preview = item.hunk.new_lines[0].strip()[:60] if item.hunk.new_lines else ""
    state = " (conflict: you edited these lines)" if item.conflict else ""
    return f"Logist job {job.id} {what}{state}" + (f": {preview}" if preview else "")


def _range_json(rng: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }
