"""Configuration end to end: the user file < `logist.yml` < LOGIST_* variables < flags.

Every test runs the real `logist` in a real repository; the user's configuration directory
is a temporary `$XDG_CONFIG_HOME`, so the machine's own `~/.config/logist` never leaks in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import (
    assert_one_line_error,
    list_jobs,
    parse_json,
    parse_json_lines,
    run_logist,
)


@pytest.fixture(autouse=True)
def xdg_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user configuration directory, and no LOGIST_* variable from the caller."""
    home = tmp_path / "xdg-config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    for name in ("LOGIST_AGENT", "LOGIST_MODEL", "LOGIST_RUNTIME", "LOGIST_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    return home


def user_config(xdg: Path, text: str) -> Path:
    path = xdg / "logist" / "config.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def config_show(repo: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`logist config show --json`: {"files": [...], "settings": {key: (value, source)}}."""
    shown = parse_json(run_logist("config", "show", "--json", cwd=repo, env=env).stdout)
    settings = {row["key"]: (row["value"], row["source"]) for row in shown["settings"]}
    return {"files": shown["files"], "settings": settings}


def run_job(repo: Path, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """`logist run --json ...`: the job record (it must exit 0, in review)."""
    proc = run_logist("run", "--json", *args, cwd=repo, env=env)
    record: dict[str, Any] = parse_json(proc.stdout)
    return record


def same_file(source: str, path: Path) -> bool:
    return Path(source).resolve() == path.resolve()


# -- precedence ------------------------------------------------------------------------------
USER_FILE = """\
model: user-model
concurrency: 7
limits:
  max_time_s: 100
  max_turns: 9
  hang_timeout_s: 11
retries:
  backoff_s: 5
  max_retries: 1
"""
REPO_FILE = """\
model: repo-model
limits:
  max_turns: 8
  hang_timeout_s: 22
review:
  max_rounds: 2
"""


def test_config_show_reports_each_value_and_the_layer_it_came_from(
    repo: Path, xdg_config: Path
) -> None:
    user = user_config(xdg_config, USER_FILE)
    (repo / "logist.yml").write_text(REPO_FILE)
    shown = config_show(repo, env={"LOGIST_MODEL": "env-model", "LOGIST_AGENT": "mock"})
    settings = shown["settings"]
    assert [Path(f).resolve() for f in shown["files"]] == [
        user.resolve(),
        (repo / "logist.yml").resolve(),
    ]

    def check(key: str, value: Any, source: str | Path) -> None:
        got_value, got_source = settings[key]
        assert got_value == value, f"{key}: {got_value!r} != {value!r}"
        if isinstance(source, Path):
            assert same_file(got_source, source), f"{key} from {got_source}, not {source}"
        else:
            assert got_source == source, f"{key} from {got_source}, not {source}"

    # Only in the user file.
    check("limits.max_time_s", 100, user)
    check("retries.backoff_s", 5, user)
    check("retries.max_retries", 1, user)
    check("concurrency", 7, user)
    # In both files: logist.yml wins, key by key inside `limits`.
    check("limits.max_turns", 8, repo / "logist.yml")
    check("limits.hang_timeout_s", 22, repo / "logist.yml")
    check("review.max_rounds", 2, repo / "logist.yml")
    # In both files and the environment: the environment wins.
    check("model", "env-model", "$LOGIST_MODEL")
    check("agent", "mock", "$LOGIST_AGENT")
    # Nobody set these.
    check("limits.max_cost_usd", None, "default")
    check("retries.max_backoff_s", 60, "default")
    check("review.supervisor", False, "default")
    check("runtime", "host", "default")

    # The human table says the same, one key per line.
    table = run_logist("config", "show", cwd=repo, env={"LOGIST_MODEL": "env-model"}).stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines()}
    assert rows["model"][1:] == ["env-model", "$LOGIST_MODEL"]
    assert rows["limits.max_turns"][1] == "8"
    assert same_file(rows["limits.max_turns"][2], repo / "logist.yml")
    assert same_file(rows["limits.max_time_s"][2], user)


def test_a_job_record_carries_the_effective_limits_and_policy_flags_winning(
    repo: Path, xdg_config: Path
) -> None:
    user_config(xdg_config, USER_FILE)
    (repo / "logist.yml").write_text(REPO_FILE)
    job = run_job(
        repo,
        "--prompt",
        "hi",
        "--max-turns",
        "5",
        "--retries",
        "4",
        "--model",
        "flag-model",
        env={"LOGIST_MODEL": "env-model"},
    )
    assert job["status"] == "review"
    assert job["limits"] == {
        "max_cost_usd": None,
        "max_time_s": 100.0,  # user file
        "max_turns": 5,  # flag over logist.yml over the user file
        "hang_timeout_s": 22.0,  # logist.yml over the user file
    }
    assert job["policy"]["max_retries"] == 4  # flag over the user file
    assert job["policy"]["backoff_s"] == 5.0  # user file
    assert job["policy"]["max_backoff_s"] == 60.0  # default
    assert job["policy"]["max_rounds"] == 2  # logist.yml
    assert job["policy"]["supervise"] is False
    assert job["agent"]["model"] == "flag-model"  # flag over $LOGIST_MODEL

    # Without the flag the environment's model is used, and the record keeps it.
    job = run_job(repo, "--prompt", "again", env={"LOGIST_MODEL": "env-model"})
    assert job["agent"]["model"] == "env-model"
    assert job["limits"]["max_turns"] == 8


def test_the_settings_a_job_was_created_with_stay_with_the_job(repo: Path) -> None:
    """A draft keeps the limits of its creation even when logist.yml changes before it runs."""
    (repo / "logist.yml").write_text("limits:\n  max_turns: 12\n")
    draft = parse_json(run_logist("job", "create", "--prompt", "hi", "--json", cwd=repo).stdout)
    assert draft["limits"]["max_turns"] == 12
    (repo / "logist.yml").write_text("limits:\n  max_turns: 1\n")
    done = parse_json(run_logist("job", "run", draft["id"], "--json", cwd=repo).stdout)
    assert done["status"] == "review"
    assert done["limits"]["max_turns"] == 12


# -- the done-when -------------------------------------------------------------------
def test_max_cost_lots_in_logist_yml_exits_2_naming_the_file_and_key(repo: Path) -> None:
    (repo / "logist.yml").write_text("limits: {max_cost_usd: lots}\n")
    proc = run_logist("run", "--prompt", "x", cwd=repo, check=False)
    line = assert_one_line_error(proc, 2)
    assert "logist.yml" in line and "max_cost_usd" in line
    assert "lots" in line and "number" in line  # what was expected, and what was given
    assert "Traceback" not in proc.stderr
    assert not (repo / ".logist" / "logist.db").exists()
    assert not (repo / ".logist").exists()
    assert list_jobs(repo) == []


@pytest.mark.parametrize(
    "command",
    [
        ["run", "--prompt", "x", "--json"],
        ["run", "--prompt", "x", "--dry-run"],
        ["job", "create", "--prompt", "x"],
        ["config", "show"],
        ["config", "show", "--json"],
    ],
    ids=" ".join,
)
def test_every_command_that_reads_the_configuration_rejects_it(
    repo: Path, command: list[str]
) -> None:
    (repo / "logist.yml").write_text("limits: {max_cost_usd: lots}\n")
    line = assert_one_line_error(run_logist(*command, cwd=repo, check=False), 2)
    assert "logist.yml" in line and "max_cost_usd" in line
    assert not (repo / ".logist").exists()


def test_a_bad_logist_yml_creates_no_job_in_an_existing_store(repo: Path) -> None:
    first = run_job(repo, "--prompt", "fine")
    (repo / "logist.yml").write_text("limits: {max_cost_usd: lots}\n")
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False))
    assert "max_cost_usd" in line
    assert [job["id"] for job in list_jobs(repo)] == [first["id"]]


# -- bad inputs ------------------------------------------------------------------------------
BAD_FILES = {
    "unknown top-level key": ("limts:\n  max_turns: 3\n", ["unknown key 'limts'", "'limits'"]),
    "unknown nested key": ("limits:\n  max_cost: 1\n", ["limits.max_cost", "'max_cost_usd'"]),
    "unknown key in an inline role": (
        "roles:\n  tester:\n    instructons: hi\n",
        ["roles.tester.instructons", "'instructions'"],
    ),
    "yaml syntax error": (
        "agent: mock\nmodel: m\nlimits:\n  max_turns: 3\n   bad: 1\n",
        ["line 5", "YAML"],
    ),
    "top level is a list": ("- agent\n- mock\n", ["mapping", "list"]),
    "top level is a number": ("42\n", ["mapping", "int"]),
    "whole number expected": ("retries:\n  max_retries: many\n", ["retries.max_retries", "many"]),
    "true or false expected": ("review: {supervisor: maybe}\n", ["review.supervisor", "maybe"]),
    "negative hang timeout": ("limits: {hang_timeout_s: -1}\n", ["limits.hang_timeout_s", "-1"]),
    "float for max_turns": ("limits: {max_turns: 1.5}\n", ["limits.max_turns", "1.5"]),
    "too many retries": ("retries: {max_retries: 99}\n", ["retries.max_retries", "20"]),
    "limits is text": ("limits: none please\n", ["limits", "mapping"]),
    "bad observer regex": (
        "observer:\n  patterns:\n    - {name: vpn-down, regex: '(unclosed', kind: network_error}\n",
        ["observer.patterns", "vpn-down", "(unclosed"],
    ),
    "observer pattern without kind": (
        "observer:\n  patterns:\n    - {name: vpn-down, regex: 'VPN'}\n",
        ["observer.patterns", "vpn-down", "kind"],
    ),
    "bad role kind": ("roles:\n  tester:\n    kind: boss\n", ["roles.tester.kind", "boss"]),
}


@pytest.mark.parametrize(("text", "needles"), BAD_FILES.values(), ids=BAD_FILES.keys())
def test_bad_logist_yml(repo: Path, text: str, needles: list[str]) -> None:
    (repo / "logist.yml").write_text(text)
    for command in (["run", "--prompt", "x"], ["config", "show"]):
        line = assert_one_line_error(run_logist(*command, cwd=repo, check=False), 2)
        assert line.startswith(f"logist: error: {(repo / 'logist.yml').resolve()}:"), line
        for needle in needles:
            assert needle in line, f"{needle!r} not in {line!r}"
    assert not (repo / ".logist").exists()


USER_CASES = [
    "unknown top-level key",
    "yaml syntax error",
    "top level is a list",
    "whole number expected",
    "bad observer regex",
]


@pytest.mark.parametrize(("text", "needles"), [BAD_FILES[k] for k in USER_CASES], ids=USER_CASES)
def test_bad_user_config_names_the_user_file(
    repo: Path, xdg_config: Path, text: str, needles: list[str]
) -> None:
    path = user_config(xdg_config, text)
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False), 2)
    assert line.startswith(f"logist: error: {path}:"), line
    assert "logist.yml" not in line
    for needle in needles:
        assert needle in line, f"{needle!r} not in {line!r}"
    assert not (repo / ".logist" / "logist.db").exists()


BAD_ROLE_FILES = {
    "bad kind": ("name: tester\nkind: boss\n", ["kind", "boss"]),
    "instructions not text": ("instructions: [1, 2]\n", ["instructions", "text"]),
    "yaml syntax error": ("name: tester\ninstructions: [\n", ["line 3", "YAML"]),
    "not a mapping": ("- tester\n", ["mapping"]),
}


@pytest.mark.parametrize(("text", "needles"), BAD_ROLE_FILES.values(), ids=BAD_ROLE_FILES.keys())
def test_bad_role_file(repo: Path, text: str, needles: list[str]) -> None:
    roles = repo / ".logist" / "roles"
    roles.mkdir(parents=True)
    (roles / "tester.yml").write_text(text)
    for command in (["run", "--prompt", "x"], ["role", "list"], ["role", "inspect", "worker"]):
        line = assert_one_line_error(run_logist(*command, cwd=repo, check=False), 2)
        assert ".logist/roles/tester.yml" in line, line
        for needle in needles:
            assert needle in line, f"{needle!r} not in {line!r}"
    assert list_jobs(repo) == []
    assert not (repo / ".logist" / "logist.db").exists()


def test_unknown_key_in_a_role_file_suggests_the_role_key(repo: Path) -> None:
    """A typo in a role file is matched against the keys a role file can have."""
    roles = repo / ".logist" / "roles"
    roles.mkdir(parents=True)
    (roles / "tester.yml").write_text("name: tester\ninstructons: Write tests.\n")
    line = assert_one_line_error(run_logist("role", "list", cwd=repo, check=False), 2)
    assert ".logist/roles/tester.yml" in line and "instructons" in line
    assert "did you mean 'instructions'" in line
    assert "concurrency" not in line  # not a key a role file can have


def test_bad_environment_variable_names_the_variable(repo: Path) -> None:
    proc = run_logist("config", "show", cwd=repo, check=False, env={"LOGIST_CONCURRENCY": "lots"})
    line = assert_one_line_error(proc, 2)
    assert "$LOGIST_CONCURRENCY" in line and "lots" in line


def test_an_empty_logist_yml_is_no_configuration(repo: Path) -> None:
    (repo / "logist.yml").write_text("# nothing here yet\n")
    shown = config_show(repo)
    assert shown["files"] == []
    assert shown["settings"]["agent"] == ("mock", "default")


def test_a_repository_cannot_choose_where_workspaces_go(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hostile logist.yml pointing workspace_root elsewhere is refused; nothing is made."""
    monkeypatch.delenv("LOGIST_WORKSPACE_ROOT")
    elsewhere = tmp_path / "planted"
    (repo / "logist.yml").write_text(f"workspace_root: {elsewhere}\n")
    proc = run_logist("run", "--prompt", "hi", cwd=repo, check=False)
    assert "logist.yml: workspace_root: a repository cannot choose" in assert_one_line_error(proc)
    assert not elsewhere.exists()
    assert not (repo / ".logist" / "logist.db").exists()


def test_workspace_root_from_the_user_file_relative_to_the_repository_env_wins(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_root = Path(os.environ["LOGIST_WORKSPACE_ROOT"])
    monkeypatch.delenv("LOGIST_WORKSPACE_ROOT")
    user_config(Path(os.environ["XDG_CONFIG_HOME"]), "workspace_root: ../wt-from-config\n")
    job = run_job(repo, "--prompt", "hi")
    configured = (repo.parent / "wt-from-config").resolve()
    assert configured in Path(job["workspace"]["path"]).resolve().parents
    assert repo.resolve() not in Path(job["workspace"]["path"]).resolve().parents

    job = run_job(repo, "--prompt", "hi", env={"LOGIST_WORKSPACE_ROOT": str(env_root)})
    assert env_root.resolve() in Path(job["workspace"]["path"]).resolve().parents


# -- agent options follow their agent --------------------------------------------------------
def test_agent_options_of_one_agent_are_dropped_when_a_flag_picks_another(repo: Path) -> None:
    (repo / "logist.yml").write_text(
        "agent: fancy\nagent_options:\n  scenario: crash\n  seconds: 3\n"
    )
    shown = config_show(repo)["settings"]
    assert shown["agent"][0] == "fancy"
    assert shown["agent_options.scenario"][0] == "crash"

    # Had `scenario: crash` carried over to mock, the job would fail.
    job = run_job(repo, "--agent", "mock", "--prompt", "hi")
    assert job["status"] == "review"
    assert job["agent"] == {"name": "mock", "model": None, "options": {}}

    # Options given with the flag that picks the agent are kept, the file's are not.
    job = run_job(repo, "--agent", "mock", "--agent-opt", "scenario=noop", "--prompt", "hi")
    assert job["agent"]["options"] == {"scenario": "noop"}
    assert job["result"]["diff"]["files"] == 0

    # An environment variable picking another agent drops them as well.
    shown = config_show(repo, env={"LOGIST_AGENT": "mock"})["settings"]
    assert shown["agent"] == ("mock", "$LOGIST_AGENT")
    assert shown["agent_options"] == ({}, "default")


def test_agent_options_stay_when_the_flag_names_the_same_agent(repo: Path) -> None:
    (repo / "logist.yml").write_text("agent: mock\nagent_options:\n  scenario: noop\n")
    job = run_job(repo, "--agent", "mock", "--prompt", "hi")
    assert job["agent"]["options"] == {"scenario": "noop"}
    assert job["result"]["diff"]["files"] == 0


def test_runtime_options_follow_their_runtime(repo: Path, xdg_config: Path) -> None:
    # `image` is user-only (a repository cannot choose it): the user's own file sets it.
    user_config(xdg_config, "runtime: docker\nruntime_options:\n  image: x:latest\n")
    shown = config_show(repo)["settings"]
    assert shown["runtime_options.image"][0] == "x:latest"
    shown = config_show(repo, env={"LOGIST_RUNTIME": "host"})["settings"]
    assert shown["runtime"] == ("host", "$LOGIST_RUNTIME")
    assert shown["runtime_options"] == ({}, "default")


# -- logist init -----------------------------------------------------------------------------
def flat(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def test_init_writes_a_starter_that_loads_and_config_show_agrees(repo: Path) -> None:
    proc = run_logist("init", cwd=repo)
    path = repo / "logist.yml"
    assert path.is_file()
    assert str(path.name) in proc.stdout
    text = path.read_text()
    assert text.lstrip().startswith("#")  # commented

    shown = config_show(repo)
    assert [Path(f).resolve() for f in shown["files"]] == [path.resolve()]
    starter = flat(yaml.safe_load(text))
    assert {"agent", "limits.hang_timeout_s", "retries.max_retries"} <= set(starter)
    for key, value in starter.items():
        got_value, source = shown["settings"][key]
        assert got_value == value, f"{key}: config show says {got_value!r}, the file {value!r}"
        assert same_file(source, path), f"{key} comes from {source}"
    # Everything it does not set is a default (except the test's workspace variable).
    for key, (_, source) in shown["settings"].items():
        if key not in starter and key != "workspace_root":
            assert source == "default", key

    # A job under the starter runs, with the starter's values in its record.
    job = run_job(repo, "--prompt", "hi")
    assert job["limits"]["hang_timeout_s"] == starter["limits.hang_timeout_s"]
    assert job["policy"]["max_retries"] == starter["retries.max_retries"]


def test_init_refuses_to_overwrite_without_force(repo: Path) -> None:
    path = repo / "logist.yml"
    path.write_text("limits:\n  max_turns: 3\n")
    line = assert_one_line_error(run_logist("init", cwd=repo, check=False), 2)
    assert "logist.yml" in line and "--force" in line
    assert path.read_text() == "limits:\n  max_turns: 3\n"

    run_logist("init", "--force", cwd=repo)
    assert path.read_text() != "limits:\n  max_turns: 3\n"
    shown = config_show(repo)["settings"]
    assert shown["limits.max_turns"] == (None, "default")
    assert same_file(shown["agent"][1], path)


def test_init_in_a_subdirectory_writes_at_the_repository_root(repo: Path) -> None:
    sub = repo / "pkg" / "inner"
    sub.mkdir(parents=True)
    run_logist("init", cwd=sub)
    assert (repo / "logist.yml").is_file()
    assert not (sub / "logist.yml").exists()
    assert config_show(sub)["settings"]["agent"][1] != "default"


def test_options_for_the_default_agent_survive_naming_that_agent(repo: Path) -> None:
    """Options set for the default agent stay when a later layer names that same agent."""
    (repo / "logist.yml").write_text("agent_options:\n  scenario: noop\n")
    shown = config_show(repo, env={"LOGIST_AGENT": "mock"})["settings"]
    assert shown["agent_options.scenario"][0] == "noop"
    job = run_job(repo, "--agent", "mock", "--prompt", "hi")
    assert job["agent"]["options"] == {"scenario": "noop"}


# -- the observer section --------------------------------------------------------------------
def test_observer_patterns_from_logist_yml_decide_retries(repo: Path) -> None:
    """A user pattern makes the mock's crash transient (retried, with the pattern's reason);
    turning the built-in rate_limit pattern off makes a 429 a plain failure."""
    (repo / "logist.yml").write_text(
        "retries:\n  backoff_s: 0.1\n"
        "observer:\n  patterns:\n"
        "    - name: sim-crash\n      regex: 'simulated crash'\n      kind: flaky_tool\n"
        "      reason: the tool crashed, worth another go\n      transient: true\n"
    )
    proc = run_logist(
        "run",
        "--json",
        "--prompt",
        "hi",
        "--agent-opt",
        "scenario=crash",
        "--retries",
        "1",
        cwd=repo,
        check=False,
    )
    job = parse_json(proc.stdout)
    assert job["status"] == "failed"
    assert [s["outcome"] for s in job["steps"]] == ["retry", "failed"]
    assert job["status_reason"].startswith("the tool crashed, worth another go")
    events = parse_json_lines(run_logist("job", "log", job["id"], "--json", cwd=repo).stdout)
    assert [e["kind"] for e in events].count("flaky_tool") == 2

    (repo / "logist.yml").write_text(
        "retries:\n  backoff_s: 0.1\nobserver:\n  disable: [rate_limit]\n"
    )
    proc = run_logist(
        "run",
        "--json",
        "--prompt",
        "hi",
        "--agent-opt",
        "scenario=fail",
        "--agent-opt",
        "times=1",
        "--retries",
        "2",
        cwd=repo,
        check=False,
    )
    job = parse_json(proc.stdout)
    assert [s["outcome"] for s in job["steps"]] == ["failed"]
    assert "429" in job["status_reason"]


def test_unknown_observer_disable_name_names_its_file_and_key(repo: Path, xdg_config: Path) -> None:
    """An unknown `observer.disable` name is reported for the file that has it, with the key."""
    user = user_config(xdg_config, "observer:\n  disable: [no-such-pattern]\n")
    (repo / "logist.yml").write_text("limits:\n  max_turns: 3\n")
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False))
    assert line.startswith(f"logist: error: {user}:"), line
    assert "logist.yml" not in line
    assert "observer.disable" in line and "no-such-pattern" in line
    line = assert_one_line_error(run_logist("config", "show", cwd=repo, check=False))
    assert "no-such-pattern" in line


@pytest.mark.parametrize(
    ("pattern", "needle"),
    [
        ("{name: fakeq, regex: 'plain env', kind: question}", "kind 'question' is reserved"),
        (
            "{name: wait, regex: 'plain env', kind: my_wait, status: needs_input}",
            "status needs_input is reserved",
        ),
    ],
)
def test_a_repository_pattern_cannot_ask_the_user_a_fake_question(
    repo: Path, pattern: str, needle: str
) -> None:
    """H3: a logist.yml pattern that would record a `question` or move the job to
    needs_input is refused in one line naming the file; no job is made."""
    (repo / "logist.yml").write_text(f"observer:\n  patterns:\n    - {pattern}\n")
    line = assert_one_line_error(run_logist("run", "--prompt", "x", cwd=repo, check=False))
    assert "logist.yml: observer.patterns" in line and needle in line
    assert not (repo / ".logist" / "logist.db").exists()
