"""Fresh configuration in a long-lived language server: an edit of `logist.yml`, of a role
file or of the user's `config.yml` counts from the next job on, with no restart; a broken
edit is a clear InvalidParams while the server keeps serving; `workspace/didChangeConfiguration`
and `workspace/didChangeWatchedFiles` make every engine read its configuration again.

All through the real `logist-server` over stdio (pytest-lsp), real git repositories and the
real mock agent.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from lsprotocol import types
from pygls.exceptions import JsonRpcException

from conftest import job_events, make_repo, show_job
from review_harness import Utf16Editor, lsp_session

SETTLED = {"review", "accepted", "rejected", "failed", "cancelled", "stuck", "halted"}
TESTER = """\
name: tester
description: a role added while the server runs
instructions: |
  Only what is asked.
  TASK: $task
agent: mock
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo", {"a.txt": b"one\ntwo\n"})


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's `config.yml` for the server this test starts (not written yet)."""
    home = tmp_path / "xdg"
    (home / "logist").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "logist" / "config.yml"


def write(path: Path, text: str) -> None:
    """Replace `path` the way an editor saving atomically does (a new inode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def overwrite_in_place(path: Path, text: str) -> None:
    """Rewrite `path` in place (same inode) with text of the same size, then put its
    modification time back: only the change time tells the edit apart."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    with path.open("r+") as handle:
        handle.write(text)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


async def create(editor: Utf16Editor, **params: Any) -> str:
    created = await editor.request(
        "logist/createJob", {"prompt": "note", "agent": "mock", **params}
    )
    return str(created["jobId"])


async def create_error(editor: Utf16Editor, **params: Any) -> str:
    with pytest.raises(JsonRpcException) as caught:
        await create(editor, **params)
    return str(caught.value)


async def test_limits_and_agent_options_of_logist_yml_count_from_the_next_job(
    repo: Path, user_config: Path, no_stray_agents: None
) -> None:
    write(repo / "logist.yml", "limits:\n  max_turns: 3\nagent_options:\n  scenario: edit\n")
    async with lsp_session([repo]) as editor:
        first = await create(editor)
        await editor.wait_status(first, SETTLED)
        write(
            repo / "logist.yml",
            "limits:\n  max_turns: 17\nmodel: m2\nagent_options:\n  scenario: hang\n",
        )
        second = await create(editor)
        await editor.request("logist/cancelJob", {"jobId": second})
        await editor.wait_status(second, {"cancelled"})
        # Same size, same inode, same modification time: the change time still counts.
        overwrite_in_place(
            repo / "logist.yml",
            "limits:\n  max_turns: 71\nmodel: m9\nagent_options:\n  scenario: hang\n",
        )
        third = await create(editor)
        await editor.request("logist/cancelJob", {"jobId": third})
        await editor.wait_status(third, {"cancelled"})
    one, two, three = (show_job(repo, job) for job in (first, second, third))
    assert one["limits"]["max_turns"] == 3
    assert one["agent"]["options"] == {"scenario": "edit"}
    assert two["limits"]["max_turns"] == 17
    assert two["agent"]["model"] == "m2"
    assert two["agent"]["options"] == {"scenario": "hang"}
    assert three["limits"]["max_turns"] == 71
    assert three["agent"]["model"] == "m9"


async def test_the_users_config_yml_counts_from_the_next_job(
    repo: Path, user_config: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        first = await create(editor)
        await editor.wait_status(first, SETTLED)
        write(user_config, "limits:\n  max_turns: 23\n")
        second = await create(editor)
        await editor.wait_status(second, SETTLED)
    assert show_job(repo, first)["limits"]["max_turns"] != 23
    assert show_job(repo, second)["limits"]["max_turns"] == 23


async def test_a_role_file_added_while_the_server_runs_can_be_used(
    repo: Path, user_config: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        first = await create(editor)  # the server has read roles: none of the repository's
        await editor.wait_status(first, SETTLED)
        assert "tester" in await create_error(editor, role="tester")
        write(repo / ".logist" / "roles" / "tester.yml", TESTER)
        job = await create(editor, role="tester")
        await editor.wait_status(job, SETTLED)
        (repo / ".logist" / "roles" / "tester.yml").unlink()
        assert "tester" in await create_error(editor, role="tester")
    record = show_job(repo, job)
    assert record["role"] == "tester"


async def test_a_broken_logist_yml_is_named_and_fixing_it_works_again(
    repo: Path, user_config: Path, no_stray_agents: None
) -> None:
    write(repo / "logist.yml", "limits:\n  max_turns: 4\n")
    async with lsp_session([repo]) as editor:
        first = await create(editor)
        await editor.wait_status(first, SETTLED)
        write(repo / "logist.yml", "limits:\n  max_turns: [unclosed\n")
        message = await create_error(editor)
        assert "logist.yml" in message
        assert "\n" not in message.strip()
        assert "Traceback" not in message
        write(repo / "logist.yml", "limits:\n  max_turns: many\n")
        message = await create_error(editor)
        assert "logist.yml" in message and "max_turns" in message
        write(repo / "logist.yml", "limits:\n  max_turns: 9\n")
        fixed = await create(editor)
        await editor.wait_status(fixed, SETTLED)
    assert show_job(repo, fixed)["limits"]["max_turns"] == 9
    assert show_job(repo, fixed)["status"] == "review"


@pytest.mark.parametrize("notification", ["didChangeConfiguration", "didChangeWatchedFiles"])
async def test_client_notifications_make_the_engine_read_configuration_again(
    repo: Path, user_config: Path, no_stray_agents: None, notification: str
) -> None:
    """After the notification, a role file added meanwhile is usable and the server keeps
    serving. (The stat check would notice this file too; with that check switched off by
    hand, this test still passes through the notification alone.)"""
    async with lsp_session([repo]) as editor:
        first = await create(editor)
        await editor.wait_status(first, SETTLED)
        write(repo / ".logist" / "roles" / "tester.yml", TESTER)
        if notification == "didChangeConfiguration":
            editor.client.workspace_did_change_configuration(
                types.DidChangeConfigurationParams(settings={"logist": {}})
            )
        else:
            uri = (repo / ".logist" / "roles" / "tester.yml").as_uri()
            editor.client.workspace_did_change_watched_files(
                types.DidChangeWatchedFilesParams(
                    changes=[types.FileEvent(uri=uri, type=types.FileChangeType.Created)]
                )
            )
        second = await create(editor, role="tester")
        await editor.wait_status(second, SETTLED)
    assert show_job(repo, second)["role"] == "tester"


async def test_observer_patterns_of_logist_yml_count_from_the_next_job(
    repo: Path, user_config: Path, no_stray_agents: None
) -> None:
    """The observer table is cached by the engine: a pattern added to `logist.yml` while the
    server runs classifies the next job's output; a bad regex is named with its file."""
    crash = {"agentOptions": {"scenario": "crash"}}
    async with lsp_session([repo]) as editor:
        first = await create(editor, **crash)
        await editor.wait_status(first, SETTLED)
        write(
            repo / "logist.yml",
            "observer:\n  patterns:\n"
            "    - name: sim-crash\n      regex: 'simulated crash'\n      kind: flaky_tool\n",
        )
        second = await create(editor, **crash)
        await editor.wait_status(second, SETTLED)
        write(
            repo / "logist.yml",
            "observer:\n  patterns:\n    - {name: sim-crash, regex: '(unclosed', kind: x}\n",
        )
        message = await create_error(editor, **crash)
        assert "logist.yml" in message and "observer" in message
    kinds = [[e["kind"] for e in job_events(repo, job)] for job in (first, second)]
    assert "flaky_tool" not in kinds[0]
    assert "flaky_tool" in kinds[1]


async def test_a_broken_role_file_is_named_and_removing_it_works_again(
    repo: Path, user_config: Path, no_stray_agents: None
) -> None:
    async with lsp_session([repo]) as editor:
        first = await create(editor)
        await editor.wait_status(first, SETTLED)
        broken = repo / ".logist" / "roles" / "broken.yml"
        write(broken, "name: broken\ninstructions: [unclosed\n")
        message = await create_error(editor)
        assert "broken.yml" in message and "Traceback" not in message
        broken.unlink()
        fixed = await create(editor)
        await editor.wait_status(fixed, SETTLED)
    assert show_job(repo, fixed)["status"] == "review"
