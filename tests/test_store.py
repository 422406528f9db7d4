"""The durable job store under `<repo>/.logist/`, on real repositories."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from conftest import git, make_repo, parse_json, porcelain, run_logist
from logist_server.domain.errors import IllegalTransitionError, JobNotFoundError
from logist_server.domain.model import AgentSpec, Job, JobStatus, Target
from logist_server.store.job_store import JobStore, new_job_id

S = JobStatus


def make_job(repo: Path, job_id: str | None = None, **fields: object) -> Job:
    return Job(
        id=job_id or new_job_id(),
        prompt="do something",
        repo=str(repo),
        agent=AgentSpec("mock"),
        **fields,  # type: ignore[arg-type]
    )


@pytest.fixture
def store(repo: Path) -> JobStore:
    s = JobStore(repo)
    yield s  # type: ignore[misc]
    s.close()


def seqs(store: JobStore, job_id: str) -> list[int]:
    return [event.seq for event in store.events(job_id)]


def test_insert_then_get_round_trips_the_record(store: JobStore, repo: Path) -> None:
    job = make_job(repo, target=Target(file="a.txt"))
    events = store.insert(job, [("created", {"status": "pending"})])
    assert [(e.seq, e.kind, e.data) for e in events] == [(1, "created", {"status": "pending"})]
    got = store.get(job.id)
    assert msgspec.json.encode(got) == msgspec.json.encode(job)
    assert got.target == Target(file="a.txt")
    assert (repo / ".logist").is_dir()


def test_get_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        store.get("zzzzzzzz")


def test_new_job_ids_are_short_and_typeable() -> None:
    ids = [new_job_id() for _ in range(200)]
    assert len(set(ids)) > 190  # random, not a counter or a constant
    for job_id in ids:
        assert len(job_id) == len(ids[0]) and 6 <= len(job_id) <= 12
        assert set(job_id) <= set("0123456789abcdefghjkmnpqrstvwxyz")


def test_resolve_full_id_prefix_and_case(store: JobStore, repo: Path) -> None:
    job = make_job(repo, "abc12345")
    store.insert(job)
    assert store.resolve("abc12345") == "abc12345"
    assert store.resolve("abc1") == "abc12345"
    assert store.resolve("ABC12") == "abc12345"
    assert store.resolve("  abc123 ") == "abc12345"


def test_resolve_ambiguous_prefix_and_unknown(store: JobStore, repo: Path) -> None:
    store.insert(make_job(repo, "aaaa0001"))
    store.insert(make_job(repo, "aaaa0002"))
    store.insert(make_job(repo, "bbbb0001"))
    with pytest.raises(JobNotFoundError, match="ambiguous"):
        store.resolve("aaaa")
    assert store.resolve("aaaa0002") == "aaaa0002"
    assert store.resolve("aaaa0001") == "aaaa0001"
    assert store.resolve("b") == "bbbb0001"
    with pytest.raises(JobNotFoundError):
        store.resolve("cccc")
    for bad in ("", "   ", "aa-1", "ilou", "a/b"):
        with pytest.raises(JobNotFoundError):
            store.resolve(bad)


def test_update_and_transition_append_gapless_seq_from_one(store: JobStore, repo: Path) -> None:
    job = make_job(repo)
    store.insert(job, [("created", {})])
    _, evs = store.update(job.id, None, [("message", {"text": "a"}), ("message", {"text": "b"})])
    assert [e.seq for e in evs] == [2, 3]
    job2, ev = store.transition(job.id, S.PROVISIONING)
    assert ev.seq == 4 and ev.kind == "status"
    assert ev.data == {"from": "pending", "to": "provisioning"}
    assert job2.status == S.PROVISIONING
    # update without events adds none; with a mutation the record changes.
    job3, none = store.update(job.id, lambda j: setattr(j, "base_commit", "cafe"))
    assert none == []
    assert job3.base_commit == "cafe" and store.get(job.id).base_commit == "cafe"
    _, ev = store.transition(job.id, S.RUNNING, "go", data={"step": 1})
    assert ev.seq == 5 and ev.data == {
        "from": "provisioning",
        "to": "running",
        "reason": "go",
        "step": 1,
    }
    assert seqs(store, job.id) == [1, 2, 3, 4, 5]
    assert store.last_seq(job.id) == 5
    assert store.get(job.id).status_reason == "go"


def test_seq_is_per_job(store: JobStore, repo: Path) -> None:
    one, two = make_job(repo), make_job(repo)
    store.insert(one, [("created", {})])
    store.insert(two)
    store.update(two.id, None, [("x", {})])
    store.update(one.id, None, [("x", {})])
    store.update(two.id, None, [("y", {})])
    assert seqs(store, one.id) == [1, 2]
    assert seqs(store, two.id) == [1, 2]


def test_illegal_transition_leaves_record_and_log_unchanged(store: JobStore, repo: Path) -> None:
    job = make_job(repo)
    store.insert(job, [("created", {})])
    before = msgspec.json.encode(store.get(job.id))
    before_events = store.events(job.id)

    def would_change(j: Job) -> None:
        j.prompt = "changed"

    with pytest.raises(IllegalTransitionError):
        store.transition(job.id, S.REVIEW, "skip ahead", mutate=would_change)
    assert msgspec.json.encode(store.get(job.id)) == before
    assert store.events(job.id) == before_events
    assert store.last_seq(job.id) == 1
    # The store still works afterwards (the transaction was rolled back, not left open).
    store.transition(job.id, S.PROVISIONING)
    assert seqs(store, job.id) == [1, 2]


def test_accepted_job_cannot_move_again(store: JobStore, repo: Path) -> None:
    job = make_job(repo, status=S.REVIEW)
    store.insert(job)
    store.transition(job.id, S.ACCEPTED)
    for target in (S.PENDING, S.REVIEW, S.REJECTED, S.CANCELLED):
        with pytest.raises(IllegalTransitionError):
            store.transition(job.id, target)
    assert store.get(job.id).status == S.ACCEPTED
    assert seqs(store, job.id) == [1]


def test_failing_mutation_rolls_back(store: JobStore, repo: Path) -> None:
    job = make_job(repo)
    store.insert(job, [("created", {})])

    def boom(j: Job) -> None:
        j.prompt = "half-done"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.update(job.id, boom, [("message", {"text": "lost"})])
    assert store.get(job.id).prompt == "do something"
    assert seqs(store, job.id) == [1]


def test_update_unknown_job_raises(store: JobStore) -> None:
    with pytest.raises(JobNotFoundError):
        store.update("zzzzzzzz", None, [("x", {})])
    with pytest.raises(JobNotFoundError):
        store.transition("zzzzzzzz", S.RUNNING)


def test_events_after_and_limit(store: JobStore, repo: Path) -> None:
    job = make_job(repo)
    store.insert(job, [(f"k{i}", {"i": i}) for i in range(1, 7)])
    assert [e.seq for e in store.events(job.id, after=4)] == [5, 6]
    assert [e.data["i"] for e in store.events(job.id, after=2, limit=2)] == [3, 4]
    assert store.events(job.id, after=6) == []
    assert store.events("zzzzzzzz") == []


def test_list_jobs_oldest_first_and_status_filter(store: JobStore, repo: Path) -> None:
    created = {"job00003": 300.0, "job00001": 100.0, "job00002": 200.0}
    for job_id, at in created.items():
        store.insert(make_job(repo, job_id, created_at=at))
    store.transition("job00002", S.CANCELLED)
    assert [j.id for j in store.list_jobs()] == ["job00001", "job00002", "job00003"]
    assert [j.id for j in store.list_jobs([S.CANCELLED])] == ["job00002"]
    assert [j.id for j in store.list_jobs([S.PENDING])] == ["job00001", "job00003"]
    assert store.list_jobs([S.REVIEW]) == []


def test_delete_removes_record_and_events(store: JobStore, repo: Path) -> None:
    job = make_job(repo)
    store.insert(job, [("created", {})])
    store.delete(job.id)
    with pytest.raises(JobNotFoundError):
        store.get(job.id)
    assert store.events(job.id) == []
    assert store.list_jobs() == []


def test_a_second_store_instance_sees_committed_changes(store: JobStore, repo: Path) -> None:
    job = make_job(repo)
    store.insert(job, [("created", {})])
    other = JobStore(repo)
    try:
        other.transition(job.id, S.PROVISIONING)
        assert store.get(job.id).status == S.PROVISIONING
        assert seqs(store, job.id) == [1, 2]
    finally:
        other.close()


def test_store_dir_is_excluded_exactly_once(repo: Path) -> None:
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_bytes(b"# my own rule\n*.bak")  # no trailing newline
    for _ in range(3):
        JobStore(repo).close()
    lines = exclude.read_bytes().splitlines()
    assert lines.count(b"/.logist/") == 1
    assert lines[:2] == [b"# my own rule", b"*.bak"]  # the user's rules are kept intact
    assert ".logist" not in porcelain(repo)
    assert (repo / ".logist").is_dir()


def test_store_creates_missing_info_exclude(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r")
    info = repo / ".git" / "info"
    for child in info.iterdir():
        child.unlink()
    info.rmdir()
    JobStore(repo).close()
    assert (info / "exclude").read_bytes().splitlines().count(b"/.logist/") == 1
    assert ".logist" not in porcelain(repo)


def test_ten_thousand_jobs_all_listed(store: JobStore, repo: Path) -> None:
    n = 10_000
    for i in range(n):
        store.insert(make_job(repo, f"{i:08d}", created_at=1_000_000.0 + i))
    jobs = store.list_jobs()
    assert len(jobs) == n
    assert [j.id for j in jobs[:3]] == ["00000000", "00000001", "00000002"]
    assert jobs[-1].id == f"{n - 1:08d}"
    assert len(store.list_raw()) == n
    # The CLI lists them all too, as one JSON array.
    listed = parse_json(run_logist("job", "list", "--json", cwd=repo).stdout)
    assert len(listed) == n
    assert listed[0]["id"] == "00000000" and listed[-1]["id"] == f"{n - 1:08d}"
    assert git(repo, "status", "--porcelain") == ""


def test_job_id_collision_does_not_break_job_creation(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import secrets
    import time
    import types

    from logist_server.domain.requests import JobRequest
    from logist_server.engine.facade import Engine
    from logist_server.store import job_store as store_module

    # Rare by nature (the same second and the same random bits), forced here.
    clock = types.SimpleNamespace(time=lambda: 1.8e9, monotonic=time.monotonic, sleep=time.sleep)
    monkeypatch.setattr(store_module, "time", clock)
    monkeypatch.setattr(secrets, "randbits", lambda bits: 0x5A5A5)
    engine = Engine.for_path(repo)
    try:
        first = engine.create_job(JobRequest(prompt="one", cwd=str(repo)))
        second = engine.create_job(JobRequest(prompt="two", cwd=str(repo)))
        assert first.id != second.id
        assert len(engine.store.list_jobs()) == 2
    finally:
        engine.store.close()


def test_a_run_of_messages_stored_as_one_row_reads_back_one_event_per_seq(
    store: JobStore, repo: Path
) -> None:
    job = make_job(repo)
    store.insert(job, [("created", {})])
    _, stored = store.update(
        job.id,
        None,
        [("message", {"texts": ["m1", "m2", "m3"]}, 3), ("usage", {"input_tokens": 1})],
    )
    assert [(e.seq, e.span) for e in stored] == [(2, 3), (5, 1)]
    assert store.last_seq(job.id) == 5
    events = store.events(job.id)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert [e.data for e in events[1:4]] == [{"text": "m1"}, {"text": "m2"}, {"text": "m3"}]
    assert all(e.kind == "message" for e in events[1:4])
    # Reading from the middle of a run gives the rest of it, not the whole run again.
    assert [(e.seq, e.data.get("text")) for e in store.events(job.id, after=3)] == [
        (4, "m3"),
        (5, None),
    ]
    _, ev = store.transition(job.id, S.PROVISIONING)
    assert ev.seq == 6
