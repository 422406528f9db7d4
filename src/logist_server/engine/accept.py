"""Accepting some of a job's hunks: the merge, hunk by hunk, planned before anything is written.

`plan_hunks` decides, for the chosen hunks, what each file (or open editor buffer) becomes:
- whole-file hunks (created, deleted, binary, mode-only files) go through `apply.plan_accept`,
  the three-way merge of a whole accept; it always runs, even for line hunks alone, so a
  result that is not the reviewed one, or that holds a path accept never writes, is refused
  before anything is read or written;
- line hunks of modified text files are located in the user's current text (the open
  buffer given by the editor, else the file read without following a symlink, in git's
  normalised form) and applied there; a hunk whose lines the user changed is a conflict,
  one whose new lines are already there is `in place` (recorded, nothing written).
Disk writes become `PlannedWrite`s, written by `apply.execute_plan` all or nothing; buffer
edits are line ranges of the text the editor gave, for it to apply (`workspace/applyEdit`).

`AcceptRun` carries a started accept between the write and its record (see
`Engine.start_hunk_accept`).
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from logist_server.domain.errors import ConflictError, GitError
from logist_server.domain.model import Job, JobStatus
from logist_server.engine.apply import PlannedWrite, UnsafeResultError, plan_accept
from logist_server.engine.hunk_files import (
    FileRefused,
    HunkFiles,
    buffer_lines,
    normalise_buffer,
)
from logist_server.engine.hunks import (
    FileHunks,
    Hunk,
    MappedHunk,
    apply_to_text,
    exact_lines,
    map_hunks,
)
from logist_server.vcs.checkout_form import READ_ENV
from logist_server.vcs.git import git

EDITED = "you changed these lines since the job started"


class HunkConflict(msgspec.Struct, frozen=True, rename="camel"):
    """A chosen hunk that is not applied, and why."""

    hunk_id: str
    path: str
    reason: str


class BufferEdit(msgspec.Struct, frozen=True):
    """Lines `start..end` (0-based, exclusive) of an open buffer's text become `text`."""

    path: str
    start: int
    end: int
    text: str


class HunkPlan(msgspec.Struct):
    """What accepting the chosen hunks does."""

    applied: list[str] = msgspec.field(default_factory=list)  # hunk ids brought in or in place
    conflicts: list[HunkConflict] = msgspec.field(default_factory=list)
    writes: list[PlannedWrite] = msgspec.field(default_factory=list)
    edits: dict[str, list[BufferEdit]] = msgspec.field(default_factory=dict)  # path -> edits

    def conflict(self, hunks: list[Hunk], reason: str) -> None:
        self.conflicts += [HunkConflict(h.id, h.path, reason) for h in hunks]


class AcceptRun(msgspec.Struct):
    """An accept whose disk writes are done; its buffer edits may still be in flight."""

    job: Job
    files: list[FileHunks]
    plan: HunkPlan
    written: list[str]

    def refuse_buffers(self, refused: dict[str, str]) -> None:
        """Buffers (path -> why) the editor did not edit: their hunks become conflicts."""
        if not refused:
            return
        path_of = {h.id: f.path for f in self.files for h in f.hunks}
        keep = []
        for hunk_id in self.plan.applied:
            path = path_of[hunk_id]
            if path in refused and path in self.plan.edits:
                self.plan.conflicts.append(HunkConflict(hunk_id, path, refused[path]))
            else:
                keep.append(hunk_id)
        self.plan.applied = keep


def blob_of(repo: Path, commit: str | None, path: str) -> bytes:
    """`path` in `commit` (replace objects off); empty when it is not there."""
    proc = git(["cat-file", "blob", f"{commit}:{path}"], repo, env=READ_ENV, check=False)
    return proc.stdout if proc.returncode == 0 else b""


def plan_hunks(
    repo: Path, job: Job, files: list[FileHunks], chosen: list[Hunk], buffers: dict[str, str]
) -> HunkPlan:
    """The plan for `chosen` hunks of `job` (whose hunks are `files`); `buffers` maps the
    paths open in an editor to their text there. Raises what `plan_accept` raises for a
    result that must not be accepted at all; conflicts of single hunks are in the plan."""
    plan = HunkPlan()
    if not chosen:
        return plan
    kinds = {f.path: f.kind for f in files}
    groups: dict[str, list[Hunk]] = {}
    for hunk in chosen:
        groups.setdefault(hunk.path, []).append(hunk)
    whole = {path: hunks for path, hunks in groups.items() if kinds[path] != "modify"}
    _plan_whole_files(repo, job, whole, plan)
    text = {path: hunks for path, hunks in groups.items() if kinds[path] == "modify"}
    _plan_text_files(repo, job, text, buffers, plan)
    return plan


def _plan_whole_files(repo: Path, job: Job, whole: dict[str, list[Hunk]], plan: HunkPlan) -> None:
    assert job.base_commit is not None and job.result.result_commit is not None
    remaining = set(whole)
    while True:
        try:
            writes = plan_accept(
                repo,
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
                plan.conflict(whole.get(path, []), exc.reasons.get(path, EDITED))
            remaining -= set(exc.files)
    plan.writes += writes
    for path in sorted(remaining):
        plan.applied += [h.id for h in whole[path]]


def _plan_text_files(
    repo: Path, job: Job, text: dict[str, list[Hunk]], buffers: dict[str, str], plan: HunkPlan
) -> None:
    if not text:
        return
    with HunkFiles(repo, list(text)) as local:
        for path, hunks in text.items():
            buffer = buffers.get(path)
            try:
                local.check(path)  # a buffer too: saving it would write there
                current = local.read(path) if buffer is None else None
            except (FileRefused, GitError) as refused:
                plan.conflict(hunks, getattr(refused, "reason", str(refused)))
                continue
            crlf = buffer is not None and "\r\n" in buffer and local.crlf_normalised(path)
            if buffer is not None:
                now = normalise_buffer(buffer, crlf)
                base = blob_of(repo, job.base_commit, path).decode(errors="replace")
                mapped = map_hunks(base, now, hunks)
            elif current is not None:
                now = current.text  # bytes that are not UTF-8 kept as they are, in every line
                base = blob_of(repo, job.base_commit, path).decode(errors="surrogateescape")
                result = blob_of(repo, job.result.result_commit, path)
                mapped = map_hunks(
                    base, now, exact_lines(hunks, result.decode("utf-8", "surrogateescape"))
                )
            else:
                plan.conflict(hunks, "the file is gone")
                continue
            plan.conflict([m.hunk for m in mapped if m.conflict and not m.in_place], EDITED)
            plan.applied += [m.hunk.id for m in mapped if m.in_place]
            good = [m for m in mapped if not m.conflict]
            if not good:
                continue
            if buffer is not None:
                plan.edits[path] = [_buffer_edit(path, buffer, m, crlf) for m in good]
            else:
                assert current is not None
                plan.writes.append(local.write(current, apply_to_text(now, good)))
            plan.applied += [m.hunk.id for m in good]


def _buffer_edit(path: str, buffer: str, item: MappedHunk, crlf: bool) -> BufferEdit:
    return BufferEdit(path, item.start, item.end, buffer_lines(item.hunk.new_lines, buffer, crlf))


def hunk_states(repo: Path, job: Job, files: list[FileHunks]) -> dict[str, str]:
    """Each hunk's state against the files on disk: `accepted`, `pending`, `conflict` (the
    user changed its lines) or `in place` (its new lines are there, not yet recorded: an
    accept again records it). Whole-file hunks not yet accepted are `pending`. Once the job
    is settled, every hunk not accepted one by one has the job's status (`accepted`...)."""
    accepted = set(job.result.accepted_hunks)
    if job.status != JobStatus.REVIEW:
        return {h.id: "accepted" if h.id in accepted else job.status.value
                for f in files for h in f.hunks}  # fmt: skip
    states = {h.id: "accepted" if h.id in accepted else "pending" for f in files for h in f.hunks}
    text = {f.path: [h for h in f.hunks if h.id not in accepted] for f in files}
    text = {p: hs for p, hs in text.items() if hs and _kind_of(files, p) == "modify"}
    if not text:
        return states
    with HunkFiles(repo, list(text)) as local:
        for path, hunks in text.items():
            try:
                current = local.read(path)
            except (FileRefused, GitError) as refused:
                log_reason = getattr(refused, "reason", str(refused))
                states.update(dict.fromkeys((h.id for h in hunks), f"conflict: {log_reason}"))
                continue
            if current is None:
                states.update(dict.fromkeys((h.id for h in hunks), "conflict: the file is gone"))
                continue
            base = blob_of(repo, job.base_commit, path).decode(errors="surrogateescape")
            result = blob_of(repo, job.result.result_commit, path)
            exact = exact_lines(hunks, result.decode("utf-8", "surrogateescape"))
            for m in map_hunks(base, current.text, exact):
                if m.in_place:
                    states[m.hunk.id] = "in place"
                elif m.conflict:
                    states[m.hunk.id] = "conflict"
    return states


def _kind_of(files: list[FileHunks], path: str) -> str:
    return next(f.kind for f in files if f.path == path)
