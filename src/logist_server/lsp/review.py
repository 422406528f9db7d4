"""Review in the editor: hunks of jobs in review as hint diagnostics, code lenses and code
actions on open documents, and accepting them through `workspace/applyEdit`."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import msgspec
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

from logist_server.domain.errors import GitError, LogistError, NotInRepositoryError
from logist_server.domain.model import Job, JobStatus
from logist_server.engine.accept import AcceptRun, blob_of
from logist_server.engine.facade import Engine
from logist_server.engine.hunk_files import (
    FileRefused,
    HunkFiles,
    crlf_normalised,
    normalise_buffer,
)
from logist_server.engine.hunks import (
    FileHunks,
    Hunk,
    MappedHunk,
    map_hunks,
    split_lines,
)
from logist_server.lsp import offload
from logist_server.lsp.app import LogistServer
from logist_server.lsp.change_actions import request_changes_action
from logist_server.lsp.protocol import command_name
from logist_server.support.locks import repo_lock_async
from logist_server.vcs.checkout_form import CheckoutForm

log = logging.getLogger(__name__)
ACCEPT_COMMAND = command_name("logist/acceptJob")
REJECT_COMMAND = command_name("logist/rejectJob")
SOURCE = "logist"
DEBOUNCE_S = 0.1
APPLY_EDIT_TIMEOUT_S = 60.0  # an editor that never answers `workspace/applyEdit`


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
        self._lines: dict[str, tuple[str, list[str]]] = {}  # uri -> (text, its lines)
        self._accepting: dict[str, asyncio.Lock] = {}  # job id -> this server's accept of it
        self._generation = 0  # counts job changes (see `warm`)
        self._unreadable: set[str] = set()  # jobs whose hunks or base text git refused
        self._rewarming: set[str] = set()  # documents a cold request is warming
        self._no_repository: set[str] = set()  # documents `warm` found in no repository
        self._stale: set[Path] = set()  # repositories whose jobs changed since last read

    # -- data ------------------------------------------------------------------------------
    def lines_of(self, uri: str) -> list[str]:
        """The open document's lines, split once per text (not at every code action)."""
        document = self.server.workspace.text_documents.get(uri)
        if document is None:
            self._lines.pop(uri, None)
            return []
        text = document.source
        cached = self._lines.get(uri)
        if cached is not None and cached[0] is text:
            return cached[1]
        lines = split_lines(text)
        self._lines = {
            k: v for k, v in self._lines.items() if k in self.server.workspace.text_documents
        }
        self._lines[uri] = (text, lines)
        return lines

    def hunks(self, engine: Engine, job: Job) -> list[FileHunks]:
        """The job's hunks (cached per result commit: a record changed since is re-read);
        reads git: worker threads only (`diff`)."""
        key = (job.id, job.result.result_commit)
        cached = self._hunks.get(key)
        if cached is None:
            cached = engine.hunks(job)
            self._hunks[key] = cached
        return cached

    def base_text(self, engine: Engine, job: Job, path: str) -> str:
        """`path` at the job's base, in git's normalised form (replace objects off)."""
        key = (job.id, job.base_commit, path)
        text = self._base_text.get(key)
        if text is None:
            text = blob_of(engine.repo, job.base_commit, path).decode(errors="replace")
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

    # -- warming: what `proposals` reads, fetched off the event loop ------------------------
    async def warm(self, uri: str) -> None:
        """`fetch` until no job change overtakes it (a few tries; a job change that keeps
        overtaking it publishes again itself)."""
        for _ in range(3):
            if await self.fetch(uri):
                return

    async def fetch(self, uri: str) -> bool:
        """Fetch, in a worker thread, what `proposals(uri)` answers from (the store's jobs in
        review, their hunks, this file's base text and line-ending rule), so answering a code
        action, a lens or a publish runs no SQLite and no git on the event loop. False: a job
        change overtook the fetch, which is dropped."""
        try:
            path = self.server.path_of(uri)
            engine = await self.server.engine_for_path_async(path)
        except JsonRpcInvalidParams:
            return True
        except NotInRepositoryError:
            self._no_repository.add(uri)
            return True
        relative = path.relative_to(engine.repo).as_posix()
        text = self.server.open_text(path)
        generation = self._generation
        stale = engine.repo in self._stale
        jobs = self._review_jobs.get(engine.repo)
        if jobs is None or stale:
            jobs = await offload.read(_jobs_in_review, engine)
            if generation != self._generation:
                return False
            self._review_jobs[engine.repo] = jobs
        touching = [
            j
            for j in jobs
            if j.result.diff is not None
            and relative in j.result.diff.paths
            and j.id not in self._unreadable
        ]
        cold_hunks = [j for j in touching if (j.id, j.result.result_commit) not in self._hunks]
        cold_base = [j for j in touching if (j.id, j.base_commit, relative) not in self._base_text]
        crlf_known = (engine.repo, relative) in self._crlf and not stale
        cold_crlf = text is not None and "\r\n" in text and not crlf_known
        if not (cold_hunks or cold_base or cold_crlf):
            self._stale.discard(engine.repo)
            return True
        fetched = await offload.work(_fetch, engine, relative, cold_hunks, cold_base, cold_crlf)
        if generation != self._generation:
            return False
        hunks, bases, crlf, unreadable = fetched
        self._unreadable.update(unreadable)
        self._hunks.update(hunks)
        self._base_text.update(bases)
        if crlf is not None:
            self._crlf[(engine.repo, relative)] = crlf
        self._stale.discard(engine.repo)
        return True

    def current_text(
        self, engine: Engine, path: str, buffers: dict[str, str] | None = None
    ) -> str | None:
        """`path` as the user has it now (the open buffer, else the file, never read
        through a symlink), in git's normalised form; None when there is no such file.
        `buffers`: the open buffers' texts, taken beforehand (from a worker thread)."""
        text = self.server.open_text(engine.repo / path) if buffers is None else buffers.get(path)
        if text is not None:
            return normalise_buffer(text, "\r\n" in text and self.crlf(engine, path))
        try:
            with HunkFiles(engine.repo, [path]) as files:
                current = files.read(path)
        except (FileRefused, OSError, GitError):
            return None
        return current.text if current is not None else None

    def proposals(self, uri: str) -> list[Proposal]:
        """Pending (not yet accepted) hunks of review jobs on this open document, from the
        caches `warm` fills: no store read and no git here, on the event loop. A cache still
        cold (a request right after the document opened or a job changed) leaves those
        hunks out and warms it in a worker thread; the hints are then republished and the
        lenses refreshed (an editor asks for code actions again when the hints change)."""
        found, cold = self._cached_proposals(uri)
        if cold:
            self._warm_again(uri)
        return found

    def _cached_proposals(self, uri: str) -> tuple[list[Proposal], bool]:
        """The proposals the caches can give, and whether some were missing from them."""
        try:
            path = self.server.path_of(uri)
        except JsonRpcInvalidParams:
            return [], False  # not a workspace file: nothing to propose
        engine = self.server.known_engine(path)
        if engine is None:  # a repository not met yet, or none: `warm` finds out
            return [], uri not in self._no_repository
        buffer = self.server.open_text(path)
        if buffer is None:
            return [], False  # editors ask about open documents only
        jobs = self._review_jobs.get(engine.repo)
        if jobs is None:
            return [], True
        relative = path.relative_to(engine.repo).as_posix()
        crlf = False
        if "\r\n" in buffer:
            known = self._crlf.get((engine.repo, relative))
            if known is None:
                return [], True
            crlf = known
        text = normalise_buffer(buffer, crlf)
        found: list[Proposal] = []
        cold = False
        for job in jobs:
            if job.result.diff is None or relative not in job.result.diff.paths:
                continue
            if job.id in self._unreadable:
                continue  # its hunks or base could not be read (logged): no markers
            files = self._hunks.get((job.id, job.result.result_commit))
            base = self._base_text.get((job.id, job.base_commit, relative))
            if files is None or base is None:
                cold = True
                continue
            for file in files:
                if file.path != relative or file.kind in ("binary", "mode"):
                    continue  # nothing to show in the text: accepted with the whole job
                pending = [h for h in file.hunks if h.id not in job.result.accepted_hunks]
                if pending:
                    mapped = self.mapped(job, relative, base, text, pending)
                    found.append(Proposal(engine, job, file, mapped))
        return found, cold

    def _warm_again(self, uri: str) -> None:
        """Warm a document a request found cold, then republish its hints and refresh the
        lenses (once at a time per document)."""
        if uri in self._rewarming:
            return
        self._rewarming.add(uri)
        self.server.run_task(self._rewarm(uri), "rewarm hints")

    async def _rewarm(self, uri: str) -> None:
        try:
            await self.warm_and_publish(uri)
        finally:
            self._rewarming.discard(uri)
        if not self._cached_proposals(uri)[1]:  # warm now: the editor asks again once
            self.refresh_lenses()

    def mapped(
        self, job: Job, path: str, base: str, text: str, pending: list[Hunk]
    ) -> list[MappedHunk]:
        """`pending` hunks of the job located in `text`: computed once per text, result and
        set of pending hunks, so a code action, a code lens or a publish on a buffer that
        did not change reuses it (one entry per job and file: the latest text)."""
        key = (job.id, job.base_commit, job.result.result_commit, path,
               tuple(h.id for h in pending))  # fmt: skip
        cached = self._mapped.get(key)
        if cached is not None and (cached[0] is text or cached[0] == text):
            return cached[1]
        mapped = map_hunks(base, text, pending)
        self._mapped = {k: v for k, v in self._mapped.items() if k[0] != job.id or k[3] != path}
        self._mapped[key] = (text, mapped)
        return mapped

    # -- invalidation and diagnostics ------------------------------------------------------
    def job_changed(self, engine: Engine, job_id: str, status: JobStatus) -> None:
        """A job changed: what was cached of the repository is read again (the jobs in
        review, the line-ending rules: an accept may have changed attributes) and answers
        come from the previous reading meanwhile, less a job that left review (an accept
        checks the job and its hunks again whatever was offered)."""
        self._generation += 1  # a fetch started before this change is stale
        self._stale.add(engine.repo)
        self._unreadable.discard(job_id)
        if status != JobStatus.REVIEW:
            self._drop_job(engine.repo, job_id)
            for key in [k for k in self._hunks if k[0] == job_id]:
                del self._hunks[key]
            for mapped_key in [k for k in self._mapped if k[0] == job_id]:
                del self._mapped[mapped_key]
        self.refresh_all()

    def _drop_job(self, repo: Path, job_id: str, replacement: Job | None = None) -> None:
        """Take the job out of the cached jobs in review (or put its newer record in)."""
        jobs = self._review_jobs.get(repo)
        if jobs is not None:
            kept = [j for j in jobs if j.id != job_id]
            self._review_jobs[repo] = kept + ([replacement] if replacement else [])

    def refresh_all(self) -> None:
        for uri in list(self.server.workspace.text_documents):
            self.publish_soon(uri)
        self.refresh_lenses()

    def refresh_lenses(self) -> None:
        """Ask the editor for the lenses again, when it can be asked."""
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
        self._pending[uri] = loop.call_later(DEBOUNCE_S, self.publish_soon, uri)

    def publish_soon(self, uri: str) -> None:
        """Publish the document's hints once `warm` has fetched what they need."""
        self._pending.pop(uri, None)
        self._no_repository.discard(uri)  # opened or edited: look again
        self.server.run_task(self.warm_and_publish(uri), "publish hints")

    async def warm_and_publish(self, uri: str) -> None:
        await self.warm(uri)
        self.publish(uri)

    def publish(self, uri: str) -> None:
        self._pending.pop(uri, None)
        document = self.server.workspace.text_documents.get(uri)
        if document is None:
            return
        lines = self.lines_of(uri)
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
        lines = self.lines_of(uri)
        first, last = params.range.start.line, params.range.end.line
        actions: list[types.CodeAction] = []
        jobs_seen: set[str] = set()
        for proposal in self.proposals(uri):
            job_id = proposal.job.id
            for item in proposal.mapped:
                lo, hi = _line_span(lines, item)
                if hi < first or lo > last or (item.conflict and not item.in_place):
                    continue
                actions.append(
                    _action(
                        f"Accept change from Logist job {job_id}",
                        ACCEPT_COMMAND,
                        {"jobId": job_id, "hunkIds": [item.hunk.id]},
                        preferred=True,
                    )
                )
                actions.append(request_changes_action(job_id, proposal.file.path, item.hunk))
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
        lines = self.lines_of(uri)
        lenses: list[types.CodeLens] = []
        for proposal in self.proposals(uri):
            job_id = proposal.job.id
            for item in proposal.mapped:
                line = min(item.start, max(len(lines) - 1, 0))
                where = types.Range(types.Position(line, 0), types.Position(line, 0))
                blocked = item.conflict and not item.in_place
                label = "conflict: edited since the job started" if blocked else "Accept"
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
        """Accept chosen (or all pending) hunks through the engine: it selects, merges,
        records and writes the files that are not open; the open buffers get the engine's
        edits through `workspace/applyEdit`.

        The repository's working-tree lock (as `logist job accept` takes it) is held while
        the engine plans and writes, and again while it records; never across the editor's
        reply, which is bounded by APPLY_EDIT_TIMEOUT_S (unanswered: those hunks are
        reported as conflicts and stay pending). This server's accepts of one job run one
        at a time; the engine's work runs in a worker thread."""
        async with self._accepting.setdefault(job.id, asyncio.Lock()):
            async with repo_lock_async(engine.repo, "working-tree"):
                job = await offload.read(engine.get, job.id)  # another may have settled it
                if job.status != JobStatus.REVIEW:
                    raise JsonRpcInvalidParams(
                        f"job {job.id} is {job.status.phrase}, not in review"
                    )
                buffers = self._open_buffers(engine, job)
                versions = {path: self._version(engine, path) for path in buffers}
                run = await offload.work(engine.start_hunk_accept, job.id, hunk_ids, buffers)
            refused: dict[str, str] = {}
            if run.plan.edits:
                refused = await self._edit_buffers(engine, run, buffers, versions)
            async with repo_lock_async(engine.repo, "working-tree"):
                job = await offload.work(engine.finish_hunk_accept, run, refused)
        self._drop_job(engine.repo, job.id, job if job.status == JobStatus.REVIEW else None)
        self._stale.add(engine.repo)
        self.refresh_all()
        return {
            "jobId": job.id,
            "status": job.status.value,
            "applied": run.plan.applied,
            "conflicts": [msgspec.to_builtins(c) for c in run.plan.conflicts],
        }

    def _open_buffers(self, engine: Engine, job: Job) -> dict[str, str]:
        """The job's changed files open in the editor: path -> the buffer's text."""
        buffers = {}
        for path in job.result.diff.paths if job.result.diff is not None else []:
            text = self.server.open_text(engine.repo / path)
            if text is not None:
                buffers[path] = text
        return buffers

    def _version(self, engine: Engine, path: str) -> int | None:
        document = self.server.workspace.text_documents.get(self._uri(engine, path))
        return document.version if document is not None else None

    @staticmethod
    def _uri(engine: Engine, path: str) -> str:
        return from_fs_path(str(engine.repo / path)) or ""

    async def _edit_buffers(
        self,
        engine: Engine,
        run: AcceptRun,
        buffers: dict[str, str],
        versions: dict[str, int | None],
    ) -> dict[str, str]:
        """Ask the editor to apply the engine's buffer edits (in the buffer's line
        endings, UTF-16 columns); returns the paths it refused, with why."""
        changes = []
        for path, edits in run.plan.edits.items():
            lines = split_lines(buffers[path])
            text_edits: list[types.TextEdit | types.AnnotatedTextEdit | types.SnippetTextEdit] = [
                types.TextEdit(range=_edit_range(lines, e.start, e.end), new_text=e.text)
                for e in edits
            ]
            changes.append(
                types.TextDocumentEdit(
                    text_document=types.OptionalVersionedTextDocumentIdentifier(
                        uri=self._uri(engine, path), version=versions.get(path)
                    ),
                    edits=text_edits,
                )
            )
        params = types.ApplyWorkspaceEditParams(
            edit=types.WorkspaceEdit(document_changes=changes),
            label=f"Accept Logist job {run.job.id}",
        )
        try:
            result = await asyncio.wait_for(
                self.server.workspace_apply_edit_async(params), APPLY_EDIT_TIMEOUT_S
            )
            if result.applied:
                return {}
            reason = result.failure_reason or "the editor refused the edit"
        except TimeoutError:
            reason = f"the editor did not answer the edit within {APPLY_EDIT_TIMEOUT_S:g} s"
        except Exception as exc:
            reason = f"the editor could not apply the edit: {exc}"
        return dict.fromkeys(run.plan.edits, reason)

    async def diff_off_loop(self, engine: Engine, job: Job) -> dict[str, Any]:
        """`diff` in a worker thread (git per file, hunk mapping), with the open buffers'
        texts taken on the loop first."""
        texts = {}
        for path in job.result.diff.paths if job.result.diff is not None else []:
            text = self.server.open_text(engine.repo / path)
            if text is not None:
                texts[path] = text
        return await offload.work(self.diff, engine, job, texts)

    def diff(
        self, engine: Engine, job: Job, buffers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """The job's hunks, located in the current buffers (or files)."""
        out = []
        accepted = set(job.result.accepted_hunks)
        for file in self.hunks(engine, job):
            full = engine.repo / file.path
            current = self.current_text(engine, file.path, buffers) or ""
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
                            "range": _range_json(_edit_range(lines, m.start, m.end)),
                            "oldText": "".join(m.hunk.old_lines),
                            "newText": "".join(m.hunk.new_lines),
                            # an accepted hunk is applied: its own lines are no conflict
                            "conflict": m.conflict and not m.in_place and m.hunk.id not in accepted,
                            "accepted": m.hunk.id in accepted,
                        }
                        for m in mapped
                    ],
                }
            )
        return {"jobId": job.id, "status": job.status.value, "files": out}


def _jobs_in_review(engine: Engine) -> list[Job]:
    """The repository's jobs in review (a store read: call it in a worker thread)."""
    return engine.store.list_jobs([JobStatus.REVIEW]) if engine.has_store() else []


def _fetch(
    engine: Engine, path: str, hunk_jobs: list[Job], base_jobs: list[Job], crlf: bool
) -> tuple[dict[tuple[str, str | None], list[FileHunks]], dict[tuple[str, str | None, str], str],
           bool | None, set[str]]:  # fmt: skip
    """The hunks of `hunk_jobs`, `path` at each of `base_jobs`' base, (if `crlf`) whether
    git turns the file's CRLF into LF, and the jobs git could not read (logged; they get no
    markers until they change); git reads: call it in a worker thread."""
    hunks: dict[tuple[str, str | None], list[FileHunks]] = {}
    bases: dict[tuple[str, str | None, str], str] = {}
    unreadable: set[str] = set()
    for job in hunk_jobs:
        try:
            hunks[(job.id, job.result.result_commit)] = engine.hunks(job)
        except LogistError as exc:  # a result that is not the reviewed one
            log.warning("job %s: %s", job.id, exc)
            unreadable.add(job.id)
    for job in base_jobs:
        try:
            bases[(job.id, job.base_commit, path)] = blob_of(
                engine.repo, job.base_commit, path
            ).decode(errors="replace")
        except GitError as exc:
            log.warning("job %s: %s at its base: %s", job.id, path, exc)
            unreadable.add(job.id)
    normalised = None
    if crlf:
        with CheckoutForm(engine.repo, [path]) as form:
            normalised = crlf_normalised(form, path)
    return hunks, bases, normalised, unreadable


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


def _edit_range(lines: list[str], start: int, end: int) -> types.Range:
    """The range lines `start..end` take in `lines` (whole lines; end-of-file without a
    newline too)."""
    n = len(lines)
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
    shown, edit = _lsp_range(lines, item), _edit_range(lines, item.start, item.end)
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
    state = (
        " (already in place: accepting records it)"
        if item.in_place
        else " (conflict: you edited these lines)"
        if item.conflict
        else ""
    )
    return f"Logist job {job.id} {what}{state}" + (f": {preview}" if preview else "")


def _range_json(rng: types.Range) -> dict[str, Any]:
    return {
        "start": {"line": rng.start.line, "character": rng.start.character},
        "end": {"line": rng.end.line, "character": rng.end.character},
    }
