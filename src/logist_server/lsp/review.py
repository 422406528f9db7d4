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

from logist_server.domain.errors import ConflictError, GitError, NotInRepositoryError
from logist_server.domain.model import Job, JobStatus
from logist_server.engine.apply import PlannedWrite, UnsafeResultError, execute_plan, plan_accept
from logist_server.engine.facade import Engine
from logist_server.engine.hunk_files import (
    FileRefused,
    HunkFiles,
    buffer_lines,
    crlf_normalised,
    normalise_buffer,
)
from logist_server.engine.hunks import (
    FileHunks,
    Hunk,
    MappedHunk,
    apply_to_text,
    exact_lines,
    job_hunks,
    map_hunks,
    split_lines,
)
from logist_server.lsp.app import LogistServer
from logist_server.lsp.protocol import command_name
from logist_server.support.locks import repo_lock_async
from logist_server.vcs.checkout_form import READ_ENV, CheckoutForm
from logist_server.vcs.git import git

log = logging.getLogger(__name__)
ACCEPT_COMMAND = command_name("logist/acceptJob")
REJECT_COMMAND = command_name("logist/rejectJob")
SOURCE = "logist"
DEBOUNCE_S = 0.1


# job id, base commit, result commit, path, pending hunk ids
_MapKey = tuple[str, str | None, str | None, str, tuple[str, ...]]


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
        self._hunks: dict[tuple[str, str | None], list[FileHunks]] = {}
        self._base_text: dict[tuple[str, str | None, str], str] = {}
        self._crlf: dict[tuple[Path, str], bool] = {}
        self._review_jobs: dict[Path, list[Job]] = {}
        self._mapped: dict[_MapKey, tuple[str, list[MappedHunk]]] = {}
        self._pending: dict[str, asyncio.TimerHandle] = {}

    # -- data ------------------------------------------------------------------------------
    def hunks(self, engine: Engine, job: Job) -> list[FileHunks]:
        """The job's hunks (cached per result commit: a record changed since is re-read)."""
        key = (job.id, job.result.result_commit)
        cached = self._hunks.get(key)
        if cached is None:
            cached = job_hunks(engine.repo, job)
            self._hunks[key] = cached
        return cached

    def base_text(self, engine: Engine, job: Job, path: str) -> str:
        """`path` at the job's base, in git's normalised form (replace objects off)."""
        key = (job.id, job.base_commit, path)
        text = self._base_text.get(key)
        if text is None:
            text = _blob(engine, job.base_commit, path).decode(errors="replace")
            self._base_text[key] = text
        return text

    def crlf(self, engine: Engine, path: str) -> bool:
        """Whether git's clean turns CRLF into LF for `path` (cached until a job changes)."""
        key = (engine.repo, path)
        known = self._crlf.get(key)
        if known is None:
            with CheckoutForm(engine.repo, [path]) as form:
                known = crlf_normalised(form, path)
            self._crlf[key] = known
        return known

    def review_jobs(self, engine: Engine) -> list[Job]:
        jobs = self._review_jobs.get(engine.repo)
        if jobs is None:
            jobs = engine.store.list_jobs([JobStatus.REVIEW]) if engine.has_store() else []
            self._review_jobs[engine.repo] = jobs
        return jobs

    def current_text(self, engine: Engine, path: str) -> str | None:
        """`path` as the user has it now (the open buffer, else the file, never read
        through a symlink), in git's normalised form; None when there is no such file."""
        text = self.server.open_text(engine.repo / path)
        if text is not None:
            return normalise_buffer(text, "\r\n" in text and self.crlf(engine, path))
        try:
            with HunkFiles(engine.repo, [path]) as files:
                current = files.read(path)
        except (FileRefused, OSError, GitError):
            return None
        return current.text if current is not None else None

    def proposals(self, uri: str) -> list[Proposal]:
        """Pending (not yet accepted) hunks of review jobs on this document."""
        try:
            path = self.server.path_of(uri)
            engine = self.server.engine_for_path(path)
        except (JsonRpcInvalidParams, NotInRepositoryError):
            return []  # not a workspace file in a repository: nothing to propose
        relative = path.relative_to(engine.repo).as_posix()
        text = self.current_text(engine, relative) or ""
        found: list[Proposal] = []
        for job in self.review_jobs(engine):
            if job.result.diff is None or relative not in job.result.diff.paths:
                continue
            for file in self.hunks(engine, job):
                if file.path != relative or file.kind == "binary":
                    continue
                pending = [h for h in file.hunks if h.id not in job.result.accepted_hunks]
                if pending:
                    mapped = self.mapped(engine, job, relative, text, pending)
                    found.append(Proposal(engine, job, file, mapped))
        return found

    def mapped(
        self, engine: Engine, job: Job, path: str, text: str, pending: list[Hunk]
    ) -> list[MappedHunk]:
        """`pending` hunks of the job located in `text`: computed once per text, result and
        set of pending hunks, so a code action, a code lens or a publish on a buffer that
        did not change reuses it (one entry per job and file: the latest text)."""
        key = (job.id, job.base_commit, job.result.result_commit, path,
               tuple(h.id for h in pending))  # fmt: skip
        cached = self._mapped.get(key)
        if cached is not None and (cached[0] is text or cached[0] == text):
            return cached[1]
        mapped = map_hunks(self.base_text(engine, job, path), text, pending)
        self._mapped = {k: v for k, v in self._mapped.items() if k[0] != job.id or k[3] != path}
        self._mapped[key] = (text, mapped)
        return mapped

    # -- invalidation and diagnostics ------------------------------------------------------
    def job_changed(self, engine: Engine, job_id: str, status: JobStatus) -> None:
        self._review_jobs.pop(engine.repo, None)
        self._crlf.clear()  # attributes or configuration may have changed meanwhile
        if status != JobStatus.REVIEW:
            for key in [k for k in self._hunks if k[0] == job_id]:
                del self._hunks[key]
            for mapped_key in [k for k in self._mapped if k[0] == job_id]:
                del self._mapped[mapped_key]
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
        """Plan every chosen hunk first (whole files through `plan_accept`, which also checks
        that the result is the reviewed one and holds no path accept must never write; text
        files read without following a symlink, in git's normalised form); then write every
        file on disk at once (`execute_plan`: all or nothing); then edit the open buffers.
        A refused result or a failed write raises (a LogistError naming why): nothing was
        written and the job stays in review."""
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
        kinds = {f.path: f.kind for f in files}
        outcome = _Outcome()
        plan: list[PlannedWrite] = []
        buffer_edits: list[types.TextDocumentEdit] = []
        if groups:
            whole = {path: hunks for path, hunks in groups.items() if kinds[path] != "modify"}
            plan = self._plan_whole_files(engine, job, whole, outcome)
            text = {path: hunks for path, hunks in groups.items() if kinds[path] == "modify"}
            plan += self._plan_text_files(engine, job, text, outcome, buffer_edits)
        if outcome.applied:
            engine.store.update(job.id, None, [("accepting", {"hunks": outcome.applied})])
        execute_plan(engine.repo, plan)  # AcceptWriteError: nothing written, still in review
        if buffer_edits:
            await self._edit_buffers(engine, by_id, buffer_edits, outcome, job.id)
        if outcome.applied:
            job = engine.record_hunks_accepted(job.id, outcome.applied, set(by_id))
        self._review_jobs.pop(engine.repo, None)
        self.refresh_all()
        return {
            "jobId": job.id,
            "status": job.status.value,
            "applied": outcome.applied,
            "conflicts": outcome.conflicts,
        }

    def _plan_whole_files(
        self, engine: Engine, job: Job, whole: dict[str, list[Hunk]], outcome: _Outcome
    ) -> list[PlannedWrite]:
        """Writes for created, deleted, binary (and mode-only) files; files that conflict
        are reported and left out. Always run, even for text hunks alone: it refuses a
        result that is not the reviewed one (ResultMismatchError) or that holds a path
        accept never writes (UnsafeResultError), before anything is read or written."""
        assert job.base_commit is not None and job.result.result_commit is not None
        remaining = set(whole)
        while True:
            try:
                plan = plan_accept(
                    engine.repo,
                    job.base_commit,
                    job.result.result_commit,
                    remaining,
                    expected_tree=job.result.result_tree,
                )
                break
            except UnsafeResultError:
                raise
            except ConflictError as exc:
                if not set(exc.files) & remaining:
                    raise
                for path in exc.files:
                    reason = exc.reasons.get(path, "changed since the job started")
                    outcome.conflict(whole.get(path, []), reason)
                remaining -= set(exc.files)
        for path in sorted(remaining):
            outcome.applied += [h.id for h in whole[path]]
        return plan

    def _plan_text_files(
        self,
        engine: Engine,
        job: Job,
        text: dict[str, list[Hunk]],
        outcome: _Outcome,
        buffer_edits: list[types.TextDocumentEdit],
    ) -> list[PlannedWrite]:
        """Hunks of modified text files: edits of open buffers (appended to `buffer_edits`)
        and writes of the files that are not open (returned)."""
        if not text:
            return []
        writes: list[PlannedWrite] = []
        with HunkFiles(engine.repo, list(text)) as local:
            for path, hunks in text.items():
                full = engine.repo / path
                buffer = self.server.open_text(full)
                try:
                    local.check(path)  # a buffer too: saving it would write there
                    current = local.read(path) if buffer is None else None
                except FileRefused as refused:
                    outcome.conflict(hunks, refused.reason)
                    continue
                crlf = buffer is not None and "\r\n" in buffer and local.crlf_normalised(path)
                if buffer is not None:
                    now = normalise_buffer(buffer, crlf)
                elif current is not None:
                    now = current.text
                else:
                    outcome.conflict(hunks, "the file is gone")
                    continue
                if buffer is not None:
                    mapped = map_hunks(self.base_text(engine, job, path), now, hunks)
                else:  # bytes that are not UTF-8 kept as they are, in every line
                    base = _blob(engine, job.base_commit, path).decode(errors="surrogateescape")
                    result = _blob(engine, job.result.result_commit, path)
                    exact = exact_lines(hunks, result.decode(errors="surrogateescape"))
                    mapped = map_hunks(base, now, exact)
                for item in mapped:
                    if item.conflict:
                        outcome.conflict(
                            [item.hunk], "you changed these lines since the job started"
                        )
                good = [m for m in mapped if not m.conflict]
                if not good:
                    continue
                if buffer is not None:
                    buffer_edits.append(self._buffer_edit(full, buffer, good, crlf))
                else:
                    assert current is not None
                    writes.append(local.write(current, apply_to_text(now, good)))
                outcome.applied += [m.hunk.id for m in good]
        return writes

    def _buffer_edit(
        self, full: Path, buffer: str, good: list[MappedHunk], crlf: bool
    ) -> types.TextDocumentEdit:
        """The edit putting `good` hunks into the open buffer of `full`, in its line endings."""
        uri = from_fs_path(str(full)) or ""
        document = self.server.workspace.text_documents.get(uri)
        lines = split_lines(buffer)
        edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
            types.TextEdit(
                range=_edit_range(lines, m), new_text=buffer_lines(m.hunk.new_lines, buffer, crlf)
            )
            for m in good
        ]
        return types.TextDocumentEdit(
            text_document=types.OptionalVersionedTextDocumentIdentifier(
                uri=uri, version=document.version if document is not None else None
            ),
            edits=edits,
        )

    async def _edit_buffers(
        self,
        engine: Engine,
        by_id: dict[str, tuple[FileHunks, Hunk]],
        buffer_edits: list[types.TextDocumentEdit],
        outcome: _Outcome,
        job_id: str,
    ) -> None:
        """Ask the editor to apply `buffer_edits`; hunks of a refused edit become conflicts."""
        params = types.ApplyWorkspaceEditParams(
            edit=types.WorkspaceEdit(document_changes=buffer_edits),
            label=f"Accept Logist job {job_id}",
        )
        try:
            result = await self.server.workspace_apply_edit_async(params)
            refused_why = None if result.applied else result.failure_reason
            refused_edit = not result.applied
        except Exception as exc:
            refused_why, refused_edit = f"the editor could not apply the edit: {exc}", True
        if not refused_edit:
            return
        reason = refused_why or "the editor refused the edit"
        refused = {e.text_document.uri for e in buffer_edits}
        keep = []
        for hunk_id in outcome.applied:
            f, _h = by_id[hunk_id]
            if from_fs_path(str(engine.repo / f.path)) in refused:
                outcome.conflicts.append({"hunkId": hunk_id, "path": f.path, "reason": reason})
            else:
                keep.append(hunk_id)
        outcome.applied = keep

    def diff(self, engine: Engine, job: Job) -> dict[str, Any]:
        """The job's hunks, located in the current buffers (or files)."""
        out = []
        accepted = set(job.result.accepted_hunks)
        for file in self.hunks(engine, job):
            full = engine.repo / file.path
            current = self.current_text(engine, file.path) or ""
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
                            # an accepted hunk is applied: its own lines are no conflict
                            "conflict": m.conflict and m.hunk.id not in accepted,
                            "accepted": m.hunk.id in accepted,
                        }
                        for m in mapped
                    ],
                }
            )
        return {"jobId": job.id, "status": job.status.value, "files": out}


def _blob(engine: Engine, commit: str | None, path: str) -> bytes:
    """`path` in `commit` (replace objects off); empty when it is not there."""
    proc = git(["cat-file", "blob", f"{commit}:{path}"], engine.repo, env=READ_ENV, check=False)
    return proc.stdout if proc.returncode == 0 else b""


class _Outcome:
    """What an accept applied (hunk ids) and what it could not (conflicts, with why)."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.conflicts: list[dict[str, str]] = []

    def conflict(self, hunks: list[Hunk], reason: str) -> None:
        self.conflicts += [_conflict(h, reason) for h in hunks]


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
