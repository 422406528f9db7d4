"""The observer's table on lines the real agent CLIs print, and on prose it must leave alone.

The error lines are quoted from the CLIs' own output as reported in their issue trackers
(anthropics/claude-code, openai/codex, google-gemini/gemini-cli, Aider-AI/aider) and from
aider's `exceptions.py`; the issue is named next to each.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import job_events, run_job
from hostile_agent import SCRIPT_AGENT, engine_with
from logist_server.domain.model import Limits
from logist_server.domain.observer import (
    BUILTIN_PATTERNS,
    EXCERPT_CHARS,
    FLAGS,
    Observer,
    ObserverPattern,
    pattern_from_dict,
    required_literals,
)
from logist_server.domain.requests import JobRequest

REAL_LINES: dict[str, list[str]] = {
    "context_overflow": [
        # claude-code, anthropics/claude-code#57296 (HTTP 400 from the API)
        'API Error: 400 {"type":"error","error":{"type":"invalid_request_error",'
        '"message":"prompt is too long: 213462 tokens > 200000 maximum"}}',
        # claude-code's result when compaction cannot help, anthropics/claude-code#58087
        "Prompt is too long",
        # codex, openai/codex#20866
        '■ Error running remote compact task: {"error":{"message":"Your input exceeds the '
        'context window of this model. Please adjust your input and try again.",'
        '"type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}',
        # codex, openai/codex#36456
        "■ Codex ran out of room in the model's context window. Start a new thread or clear "
        "earlier history before retrying.",
        # aider / litellm, onyx-dot-app/onyx#4728
        "litellm.exceptions.ContextWindowExceededError: litellm.ContextWindowExceededError: "
        "litellm.BadRequestError: ContextWindowExceededError: OpenAIException - This model's "
        "maximum context length is 128000 tokens. However, your messages resulted in 172152 "
        "tokens. Please reduce the length of the messages.",
        # Gemini API
        "The input token count (1196265) exceeds the maximum number of tokens allowed (1048575)",
    ],
    "auth": [
        # claude-code, anthropics/claude-code#6822
        "Invalid API key · Please run /login",
        # claude-code, anthropics/claude-code#6893
        "Missing API key · Run /login",
        # claude-code with a wrong key (Anthropic error object)
        'API Error: 401 {"type":"error","error":{"type":"authentication_error",'
        '"message":"invalid x-api-key"}}',
        # codex, openai/codex#26497
        'unexpected status 401 Unauthorized: {"detail":"Unauthorized"}, url: '
        "https://chatgpt.com/backend-api/codex/responses",
        # codex, openai/codex#2896 (a stream error, but an authentication failure first)
        "stream error: exceeded retry limit, last status: 401 Unauthorized",
        # aider, Aider-AI/aider#1490
        "Unexpected error: litellm.AuthenticationError: AnthropicException - "
        'b\'{"type":"error","error":{"type":"authentication_error","message":"invalid '
        "x-api-key\"}}'",
        # gemini-cli, google-gemini/gemini-cli#4690
        "✕ [API Error: API key not valid. Please pass a valid API key. (Status: INVALID_ARGUMENT)]",
    ],
    "quota": [
        # claude-code, anthropics/claude-code#4048
        "Claude AI usage limit reached|1753077600",
        # claude-code, anthropics/claude-code#59637
        "You've hit your limit · resets 2:10pm (Europe/Moscow)",
        # OpenAI's 429 for a used-up balance, OpenHands/OpenHands#998: also an HTTP 429,
        # but the quota row comes first in the table.
        "OpenAIException - Error code: 429 - {'error': {'message': 'You exceeded your current "
        "quota, please check your plan and billing details.', 'type': 'insufficient_quota', "
        "'param': None, 'code': 'insufficient_quota'}}",
    ],
    "rate_limit": [
        # claude-code, anthropics/claude-code#59637
        'API Error: 429 {"type":"error","error":{"type":"rate_limit_error","message":"This '
        "request would exceed your account's rate limit. Please try again later.\"}}",
        # claude-code while it retries, Wei-Shaw/claude-relay-service#56
        'API Error (429 {"type":"error","error":{"type":"rate_limit_error","message":"This '
        "request would exceed your account's rate limit. Please try again later.\"}}) · "
        "Retrying in 2892 seconds… (attempt 1/10)",
        # codex, openai/codex#10550
        "exceeded retry limit, last status: 429 Too Many Requests, request id: "
        "9c84b52ce87fbe62-SJC",
        # gemini-cli, google-gemini/gemini-cli#1905 (one raw line, escaped newlines)
        '[API Error: {"error":{"message":"{\\n  \\"error\\": {\\n    \\"code\\": 429,\\n    '
        '\\"message\\": \\"Resource has been exhausted (e.g. check quota).\\",\\n    '
        '\\"status\\":\\n  \\"RESOURCE_EXHAUSTED\\"\\n  }\\n}\\n","code":429,'
        '"status":"Too Many Requests"}}]',
        # Google quota message
        "Quota exceeded for quota metric 'Generate Content API requests per minute' and "
        "limit 'GenerateContent request limit per minute for a project'",
        # aider, Aider-AI/aider's exceptions.py and its chat transcripts
        "litellm.RateLimitError: RateLimitError: OpenrouterException - rate limit exceeded",
        "The API provider has rate limited you. Try again later or check your quotas.",
    ],
    "overloaded": [
        'API Error: 529 {"type":"error","error":{"type":"overloaded_error",'
        '"message":"Overloaded"}}',
    ],
    "network": [
        # claude-code, anthropics/claude-code#6596
        "    ⎿  TypeError (fetch failed)",
        # Node
        "Error: connect ECONNREFUSED 127.0.0.1:8080",
        "getaddrinfo ENOTFOUND api.anthropic.com",
        "getaddrinfo EAI_AGAIN api.openai.com",
        "Error: socket hang up",
        # Python / curl
        "httpx.ConnectError: [Errno 111] Connection refused",
        "curl: (7) Failed to connect to api.openai.com port 443: Network is unreachable",
    ],
    "network_agent": [
        # claude-code, anthropics/claude-code#6596
        "API Error (Connection error.) · Retrying in 1 seconds… (attempt 1/10)",
        # claude-code, anthropics/claude-code#66758
        "API Error: Unable to connect to API (ECONNRESET)",
        # codex, qxcnm/Codex-Manager#123
        "stream disconnected before completion: error sending request for url "
        "(https://localhost:48760/v1/responses)",
        # aider, Aider-AI/aider#2812
        "litellm.APIError: APIError: OpenAIException - Connection error.",
        "litellm.APIConnectionError: APIConnectionError: OpenAIException - Connection error.",
    ],
    "question_yes_no": [
        # aider's confirmation prompts (from its chat transcripts)
        "Create new file? (Y)es/(N)o [Yes]:",
        "Add file to the chat? (Y)es/(N)o/(D)on't ask again [Yes]:",
        "Overwrite the existing file? [y/N]",
    ],
    "question_press_enter": ["Press Enter to continue..."],
}

# What a model (or a tool) might print in ordinary prose: none of it is an alarm.
PROSE = [
    "I added a rate limit to the API",
    "The client now retries when the server answers 429 Too Many Requests.",
    "Handle the 429 status by backing off exponentially",
    "The quota exceeded handler now logs a warning",
    "Fixed the connection refused bug in the client",
    "We should retry on ECONNRESET and ETIMEDOUT errors",
    "The prompt is too long for a tweet, so I shortened it.",
    "The context window of this model is large enough.",
    "Added a RateLimitError exception class and an AuthenticationError one",
    "Set ANTHROPIC_API_KEY before running the tests",
    "if the fetch failed, show a toast",
    "Stream errors are logged and the socket is closed",
    "Answer yes/no questions in the form",
    "Press the button to continue",
    "authentication failed for user bob in the fixture",
    "Tokens: 12k sent, 830 received. Cost: $0.04 message, $0.04 session.",
    "Applied edit to src/limits.py",
    "Commit 93e32a1 feat: add a network timeout and an overload guard",
    "status: 401 means the user is not logged in",
]


def reference_scan(patterns: tuple[ObserverPattern, ...], text: str) -> str | None:
    """What `scan` must answer, done the slow and obvious way."""
    for pattern in patterns:
        if re.search(pattern.regex, text, FLAGS):
            return pattern.name
    return None


@pytest.fixture(scope="module")
def observer() -> Observer:
    return Observer()


def test_the_table_has_one_row_per_name_and_a_reason_for_each() -> None:
    names = [p.name for p in BUILTIN_PATTERNS]
    assert len(names) == len(set(names))
    assert set(REAL_LINES) == set(names)
    for pattern in BUILTIN_PATTERNS:
        assert pattern.reason and pattern.kind
        assert pattern.status in (None, "failed", "needs_input")
        assert required_literals(pattern.regex), f"{pattern.name} escapes the prefilter"


@pytest.mark.parametrize(
    ("name", "line"), [(n, line) for n, lines in REAL_LINES.items() for line in lines]
)
def test_each_builtin_matches_what_the_real_clis_print(
    observer: Observer, name: str, line: str
) -> None:
    hit = observer.scan(line)
    assert hit is not None, line
    assert hit.pattern.name == name
    if len(line) <= EXCERPT_CHARS:
        assert hit.excerpt == line.strip()
    else:
        assert len(hit.excerpt) <= EXCERPT_CHARS
        assert hit.excerpt.strip("…") in line


def test_kinds_statuses_and_transience(observer: Observer) -> None:
    def hit_for(name: str) -> tuple[str, str | None, bool]:
        hit = observer.scan(REAL_LINES[name][0])
        assert hit is not None
        return hit.kind, hit.status, hit.transient

    assert hit_for("rate_limit") == ("rate_limited", None, True)
    assert hit_for("overloaded") == ("rate_limited", None, True)
    assert hit_for("quota") == ("rate_limited", "failed", False)
    assert hit_for("auth") == ("auth_failed", "failed", False)
    assert hit_for("context_overflow") == ("context_overflow", "failed", False)
    assert hit_for("network") == ("network_error", None, True)
    assert hit_for("network_agent") == ("network_error", None, True)
    assert hit_for("question_yes_no") == ("question", "needs_input", False)
    hit = observer.scan(REAL_LINES["auth"][0])
    assert hit is not None
    assert "ANTHROPIC_API_KEY" in hit.reason
    assert hit.event_data() == {
        "pattern": "auth",
        "reason": hit.reason,
        "excerpt": "Invalid API key · Please run /login",
        "transient": False,
    }


@pytest.mark.parametrize("line", PROSE)
def test_prose_does_not_match(observer: Observer, line: str) -> None:
    assert observer.scan(line) is None


def test_table_order_decides_not_position_in_the_line(observer: Observer) -> None:
    # The network shape comes first in the line, the authentication failure first in the table.
    line = "stream disconnected before completion: unexpected status 401 Unauthorized"
    hit = observer.scan(line)
    assert hit is not None and hit.pattern.name == "auth"


def test_a_block_of_lines_and_ansi_colours(observer: Observer) -> None:
    block = "Tokens: 1k sent\n\x1b[31mlitellm.RateLimitError\x1b[0m: slow down\nmore text"
    hit = observer.scan(block)
    assert hit is not None
    assert hit.pattern.name == "rate_limit"
    assert hit.excerpt == "litellm.RateLimitError: slow down"


def test_excerpt_is_trimmed_around_the_match(observer: Observer) -> None:
    line = "x" * 500 + " connect ECONNREFUSED 127.0.0.1:443 " + "y" * 500
    hit = observer.scan(line)
    assert hit is not None
    assert len(hit.excerpt) <= EXCERPT_CHARS
    assert "connect ECONNREFUSED 127.0.0.1:443" in hit.excerpt
    assert hit.excerpt.startswith("…") and hit.excerpt.endswith("…")


def test_user_patterns_win_over_the_builtins() -> None:
    mine = pattern_from_dict(
        {
            "name": "proxy_down",
            "regex": r"API Error \(Connection error\.\)",
            "kind": "proxy_down",
            "status": "failed",
            "reason": "the company proxy is down: see the status page",
        }
    )
    observer = Observer().with_extra([mine])
    assert observer.patterns[0] == mine
    hit = observer.scan(REAL_LINES["network_agent"][0])
    assert hit is not None
    assert (hit.pattern.name, hit.kind, hit.status) == ("proxy_down", "proxy_down", "failed")
    # Everything else still works.
    hit = observer.scan(REAL_LINES["auth"][0])
    assert hit is not None and hit.pattern.name == "auth"


def test_a_user_pattern_with_a_builtin_name_replaces_it() -> None:
    quieter = pattern_from_dict(
        {"name": "rate_limit", "regex": r"^API Error: 429 slow down$", "kind": "rate_limited"}
    )
    observer = Observer().with_extra([quieter])
    assert [p.name for p in observer.patterns].count("rate_limit") == 1
    assert observer.scan("API Error: 429 Too Many Requests") is None
    hit = observer.scan("API Error: 429 slow down")
    assert hit is not None and hit.pattern is quieter


@pytest.mark.parametrize(
    ("entry", "needle"),
    [
        # A fake question (H3): a client would show it as one to answer.
        (
            {"name": "fakeq", "regex": "plain env", "kind": "question"},
            "kind 'question' is reserved",
        ),
        # ... or any kind with needs_input: the job would wait for an answer to nothing.
        (
            {"name": "wait", "regex": "plain env", "kind": "my_wait", "status": "needs_input"},
            "status needs_input is reserved",
        ),
        # The engine's own kinds, as before.
        ({"name": "st", "regex": "x+y", "kind": "status"}, "kind 'status' is reserved"),
        ({"name": "dn", "regex": "x+y", "kind": "done"}, "kind 'done' is reserved"),
    ],
)
def test_a_user_pattern_cannot_emit_a_kind_or_status_that_asks_the_user(
    entry: dict[str, str], needle: str
) -> None:
    with pytest.raises(ValueError, match=needle):
        pattern_from_dict(entry)


def test_the_builtin_question_patterns_still_ask() -> None:
    hit = Observer().scan("Create new file? (Y)es/(N)o [Yes]:")
    assert hit is not None and (hit.kind, hit.status) == ("question", "needs_input")
    hit = Observer().scan("Press Enter to continue")
    assert hit is not None and (hit.kind, hit.status) == ("question", "needs_input")


def test_disable_works() -> None:
    observer = Observer(disabled={"question_yes_no", "network"})
    assert observer.scan("Create new file? (Y)es/(N)o [Yes]:") is None
    assert observer.scan("Error: connect ECONNREFUSED 127.0.0.1:8080") is None
    assert observer.scan("API Error: Unable to connect to API (ECONNRESET)") is not None
    with pytest.raises(ValueError, match="no_such_pattern"):
        Observer(disabled={"no_such_pattern"})


def test_from_config_reads_the_logist_yml_section() -> None:
    observer = Observer.from_config(
        {
            "patterns": [
                {
                    "name": "vpn",
                    "regex": r"VPN session expired",
                    "kind": "network_error",
                    "reason": "the VPN session expired: reconnect",
                    "transient": True,
                }
            ],
            "disable": ["question_press_enter"],
        }
    )
    hit = observer.scan("warning: VPN session expired at 10:02")
    assert hit is not None and hit.transient and hit.status is None
    assert hit.reason == "the VPN session expired: reconnect"
    assert observer.scan("Press Enter to continue...") is None
    assert Observer.from_config(None).patterns == BUILTIN_PATTERNS
    with pytest.raises(ValueError, match="patternz"):
        Observer.from_config({"patternz": []})
    with pytest.raises(ValueError, match="'nope'"):
        Observer.from_config({"patterns": [{"name": "nope", "regex": "(", "kind": "x"}]})


BAD_PATTERNS = {
    "bad regex": ({"name": "broken", "regex": "API Error: (429", "kind": "x"}, "'broken'.*regex"),
    "matches everything": ({"name": "greedy", "regex": ".*", "kind": "x"}, "'greedy'.*empty"),
    "unknown status": (
        {"name": "odd", "regex": "x+y", "kind": "x", "status": "halted"},
        "'odd'.*unknown status 'halted'",
    ),
    "missing kind": ({"name": "nokind", "regex": "abc"}, "'nokind'.*kind"),
    "reserved kind": ({"name": "sneaky", "regex": "abc", "kind": "status"}, "'sneaky'.*status"),
    "typo in a field": (
        {"name": "typo", "regex": "abc", "kind": "x", "transcient": True},
        "'typo'.*transcient",
    ),
    "transient not a bool": (
        {"name": "tb", "regex": "abc", "kind": "x", "transient": "yes"},
        "'tb'.*transient",
    ),
    "no name": ({"regex": "abc", "kind": "x"}, "name"),
}


@pytest.mark.parametrize(("entry", "message"), BAD_PATTERNS.values(), ids=BAD_PATTERNS.keys())
def test_bad_patterns_are_refused_with_a_clear_message(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        pattern_from_dict(entry)


def test_user_regex_with_groups_and_backreferences() -> None:
    """Patterns that cannot join the combined regex are searched on their own, correctly."""
    echo = pattern_from_dict({"name": "echo", "regex": r"(\w+) \1 again", "kind": "echo"})
    flagged = pattern_from_dict({"name": "flagged", "regex": r"(?s)begin.+end", "kind": "blk"})
    short = pattern_from_dict({"name": "short", "regex": r"^E\d$", "kind": "short"})
    observer = Observer().with_extra([echo, flagged, short])
    assert observer.scan("boom boom again") is not None
    assert observer.scan("boom bang again") is None
    hit = observer.scan("begin\nmiddle\nend")
    assert hit is not None and hit.pattern.name == "flagged"
    # No literal to prefilter on: it is searched on every line.
    assert required_literals(short.regex) is None
    hit = observer.scan("E7")
    assert hit is not None and hit.pattern.name == "short"


_OBSERVER = Observer()
_FRAGMENTS = [
    *(line for lines in REAL_LINES.values() for line in lines),
    *PROSE,
    "429",
    "API Error",
    "ECONNRESET",
    "İnvalid x-api-key",
    "\u017ftream error:",
    "(y/n)",
    "\n",
    " ",
]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.sampled_from(_FRAGMENTS), st.text(max_size=12)),
        max_size=6,
    ).map("".join)
)
def test_scan_agrees_with_the_obvious_reference(text: str) -> None:
    """The prefilter and the combined regex never change the answer."""
    hit = _OBSERVER.scan(text)
    assert (hit.pattern.name if hit else None) == reference_scan(_OBSERVER.patterns, text)


def test_many_ordinary_lines_go_through_quickly(observer: Observer) -> None:
    """Throughput: a long plain-text run (aider prints one) raises nothing. Not timed."""
    lines = [
        f"Applied edit to src/module_{i}.py: tidied the loop ({i} of 20000)" for i in range(20000)
    ]
    assert not any(observer.scan(line) for line in lines)


# -- a repository's patterns cannot stall the driver ----------------------------------------
# `(x|xx)+` tries every way to split a run of x's: exponential backtracking when the rest
# of the pattern fails. Both shapes defeat the `regex` package's own shortcuts too.
HOSTILE_A = {"name": "evil", "kind": "evil_kind", "regex": "^(a|aa)+x$"}
HOSTILE_LINE = "a" * 60 + "b"  # unguarded: about 10**12 steps


def test_a_backtracking_user_pattern_is_disabled_once_and_reported() -> None:
    observer = Observer.from_config({"patterns": [HOSTILE_A]}).for_job()
    assert observer.scan(HOSTILE_LINE) is None
    [warning] = observer.take_warnings()
    assert warning.kind == "observer_warning" and warning.pattern.name == "evil"
    assert "evil" in warning.reason and "disabled" in warning.reason
    assert warning.excerpt == HOSTILE_LINE
    # Disabled for the rest of the job: not searched again, not reported again.
    assert observer.scan(HOSTILE_LINE) is None
    assert observer.scan("a" * 5 + "x") is None
    assert observer.take_warnings() == []
    # The built-ins still see what they must.
    hit = observer.scan('API Error: 429 {"type":"error"}')
    assert hit is not None and hit.pattern.name == "rate_limit"


def test_each_job_has_its_own_budget() -> None:
    shared = Observer.from_config({"patterns": [HOSTILE_A]})  # an engine's, for every job
    first = shared.for_job()
    first.scan(HOSTILE_LINE)
    assert len(first.take_warnings()) == 1
    second = shared.for_job()
    hit = second.scan("aaax")
    assert hit is not None and hit.pattern.name == "evil"  # a fair line still matches
    second.scan(HOSTILE_LINE)
    assert len(second.take_warnings()) == 1


def test_a_user_pattern_cannot_pose_as_the_warning() -> None:
    with pytest.raises(ValueError, match="observer_warning"):
        pattern_from_dict({"name": "fake", "kind": "observer_warning", "regex": "boom"})


def _hostile_config(repo: Path, regex: str) -> None:
    (repo / "logist.yml").write_text(
        "observer:\n  patterns:\n"
        f"    - name: evil\n      kind: evil_kind\n      status: failed\n      regex: '{regex}'\n"
    )


def test_through_the_cli_a_stalling_pattern_cannot_hide_a_real_failure(repo: Path) -> None:
    """The mock fails the way claude-code does (`Invalid API key · Please run /login`); the
    repository's pattern backtracks on that line. The job still fails with the built-in
    authentication reason, and the pattern's time-out is recorded once."""
    _hostile_config(repo, r"^(\D|\D\D)+\d$")
    args = ["--prompt", "x", "--agent-opt", "scenario=fail", "--agent-opt", "kind=auth"]
    job = run_job(repo, *args, expect=1)
    assert job["status"] == "failed", job
    assert "authentication failed" in job["status_reason"], job
    warnings = [e for e in job_events(repo, job["id"]) if e["kind"] == "observer_warning"]
    assert len(warnings) == 1, warnings
    assert warnings[0]["data"]["pattern"] == "evil"


def test_a_stalling_pattern_does_not_keep_a_job_past_its_time_limit(repo: Path) -> None:
    """A hostile agent prints the line the repository's pattern chokes on, then hangs: the
    job ends by its time limit, with that reason (unguarded, the driver would be stuck in
    the regex for hours and the limit never checked)."""
    _hostile_config(repo, HOSTILE_A["regex"])
    script = f"echo {HOSTILE_LINE}; exec sleep 600"
    engine = engine_with(repo, script)
    job = engine.create_job(JobRequest(prompt="x", agent=SCRIPT_AGENT, limits=Limits(max_time_s=2)))
    job = asyncio.run(engine.drive(job.id))
    assert job.status.value == "halted", job
    assert job.status_reason is not None and "time limit" in job.status_reason
    kinds = [e.kind for e in engine.store.events(job.id)]
    assert kinds.count("observer_warning") == 1, kinds
