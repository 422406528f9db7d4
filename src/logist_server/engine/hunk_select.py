"""Which hunks of a job an accept means: ids checked against the job's hunks as they are now.

An id is `<job id>/<hash>` (`hunks.hunk_id`); the CLI also takes the part after the slash.
An id of another job, an unknown or stale one (from another result of the job), or, when
`strict`, one already accepted is a `UsageError` naming it: nothing is accepted.
"""

from __future__ import annotations

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.engine.hunks import FileHunks, Hunk


class UnknownHunkError(UsageError):
    """A hunk id that is not one of the job's hunks now."""


class HunkAlreadyAcceptedError(UsageError):
    """A hunk id (strictly) asked for again after it was accepted."""


def full_id(job: Job, given: str) -> str:
    """`given` as a full hunk id of `job` (a bare hash gets the job's prefix)."""
    return given if "/" in given else f"{job.id}/{given}"


def find_hunk(job: Job, files: list[FileHunks], given: str) -> tuple[FileHunks, Hunk]:
    """The file and hunk `given` names (full id or the part after the slash); UnknownHunkError
    otherwise (a comment on a hunk, say, names where it is)."""
    hunk_id = full_id(job, given)
    for file in files:
        for hunk in file.hunks:
            if hunk.id == hunk_id:
                return file, hunk
    raise UnknownHunkError(
        f"job {job.id} has no hunk {given!r} (unknown, or from an earlier result: "
        f"list them with `logist job hunks {job.id}`)"
    )


def select_hunks(
    job: Job, files: list[FileHunks], hunk_ids: list[str] | None, strict: bool
) -> list[Hunk]:
    """The hunks `hunk_ids` name (None: every hunk not yet accepted), in the job's order.

    Without `strict`, ids already accepted are skipped (an editor's second click); with it,
    each is an error (the CLI: the user asked for something that will not happen)."""
    by_id = {h.id: h for f in files for h in f.hunks}
    accepted = set(job.result.accepted_hunks)
    if hunk_ids is None:
        return [h for h in by_id.values() if h.id not in accepted]
    wanted = _named(job, by_id, accepted, hunk_ids, strict)
    # A rename's two halves (delete the old path, create the new one) go together: one
    # alone would lose the file or leave a copy.
    halves = {f.path: f for f in files if f.moved is not None}
    for file in halves.values():
        partner = halves.get(file.moved or "")
        if partner is not None and wanted & {h.id for h in file.hunks}:
            wanted |= {h.id for h in partner.hunks}
    return [h for h in by_id.values() if h.id in wanted and h.id not in accepted]


def _named(
    job: Job, by_id: dict[str, Hunk], accepted: set[str], hunk_ids: list[str], strict: bool
) -> set[str]:
    """The full ids `hunk_ids` name, each checked."""
    wanted: set[str] = set()
    for given in hunk_ids:
        hunk_id = full_id(job, given)
        if not hunk_id.startswith(job.id + "/"):
            raise UnknownHunkError(f"hunk {given!r} does not belong to job {job.id}")
        if hunk_id not in by_id:
            raise UnknownHunkError(
                f"job {job.id} has no hunk {given!r} (unknown, or from an earlier result: "
                f"list them with `logist job hunks {job.id}`)"
            )
        if strict and hunk_id in accepted:
            raise HunkAlreadyAcceptedError(f"hunk {hunk_id} of job {job.id} is already accepted")
        wanted.add(hunk_id)
    return wanted
