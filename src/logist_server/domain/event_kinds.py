"""The kinds of job events, with the payload each one carries.

A job's log (`JobEvent.kind`) holds these kinds, and the kinds of observer patterns: the
built-in ones (`OBSERVER_KINDS`) and a user's own (`logist.yml`, any other
lower_case_with_underscores word). A user pattern may not claim a `RESERVED` kind: those
are written by the engine or parsed from the agent's typed output (or, for `question`, by
the built-in patterns), and a client believes their payload (a fake `harvest`, `status`,
`usage` or `question` would lie to it).

`PAYLOADS` documents every kind's `data` as stored (snake_case keys); on the wire
(`logist/jobEvent`) the same keys are camelCase. doc/protocol.md has the same table
(tests/test_event_kinds.py keeps them equal).
"""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    """Every kind Logist itself writes into a job's log."""

    # The job's life, written by the engine.
    CREATED = "created"
    STATUS = "status"
    WORKSPACE = "workspace"
    STEP = "step"
    STARTED = "started"
    RESTART = "restart"
    HARVEST = "harvest"
    VERDICT = "verdict"
    RETRY = "retry"
    FAILOVER = "failover"
    ASKED = "asked"
    RESUME = "resume"
    REPO_CHANGED = "repo_changed"
    PAUSED = "paused"
    RESUMED = "resumed"
    RERUN = "rerun"
    RESTEP = "restep"
    CANCEL_REQUESTED = "cancel_requested"
    ACCEPTING = "accepting"
    HUNKS_ACCEPTED = "hunks_accepted"
    CHANGES_REQUESTED = "changes_requested"
    KEPT = "kept"
    REAPED = "reaped"
    OBSERVER_WARNING = "observer_warning"
    # The agent's typed output (domain/events.py).
    MESSAGE = "message"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    FILE_CHANGE = "file_change"
    USAGE = "usage"
    SESSION = "session"
    QUESTION = "question"
    ERROR = "error"
    DONE = "done"
    # The built-in observer patterns' kinds (domain/observer.py); user patterns may use them.
    RATE_LIMITED = "rate_limited"
    AUTH_FAILED = "auth_failed"
    NETWORK_ERROR = "network_error"
    CONTEXT_OVERFLOW = "context_overflow"


#: Kinds a user's observer pattern may use too: they mean "the observer recognised this",
#: and none of them changes a job's state by its kind (a pattern's `status`/`transient` do).
OBSERVER_KINDS = frozenset(
    {
        EventKind.RATE_LIMITED,
        EventKind.AUTH_FAILED,
        EventKind.NETWORK_ERROR,
        EventKind.CONTEXT_OVERFLOW,
    }
)

#: Kinds no user (or repository) pattern may claim: the engine's, the agent's typed events,
#: and `question`, which moves a job to `needs_input` and which a client shows as a question
#: to answer: only a typed question or a built-in `question_*` pattern emits it.
RESERVED = frozenset(EventKind) - OBSERVER_KINDS

_HIT = "pattern, reason, excerpt, transient"

#: kind -> (the keys of its data, what it means). `?` marks a key that may be absent.
PAYLOADS: dict[EventKind, tuple[str, str]] = {
    EventKind.CREATED: ("status, rerun_of?", "the job was stored (a rerun names its origin)"),
    EventKind.STATUS: (
        "from, to, reason?, step?, role?, agent?, argv?, kind?, options?, files?",
        "the job moved from one status to another; the first step's start and a question "
        "add their details",
    ),
    EventKind.WORKSPACE: ("path, branch, base", "the job's workspace was made"),
    EventKind.STEP: ("step, role, agent, argv", "a later step started (a rework, a review)"),
    EventKind.STARTED: (
        "step, runtime?, recovered?, + the runtime's identity (host: pid, started_at, cgroup)",
        "the agent process runs",
    ),
    EventKind.RESTART: ("step, reason", "a step whose agent never started runs again"),
    EventKind.HARVEST: ("step, files, insertions, deletions", "the step's change was taken"),
    EventKind.VERDICT: ("step, verdict, comments", "a supervisor's verdict"),
    EventKind.RETRY: ("step, attempt, of, delay_s, reason, agent", "a transient failure"),
    EventKind.FAILOVER: ("step, from, to, reason", "the fallback agent takes over"),
    EventKind.ASKED: ("step, question, answered", "the step ended on a question"),
    EventKind.RESUME: (
        "step, why, resumed, session?, reason?",
        "a step continues the agent's session, or says why it does not",
    ),
    EventKind.REPO_CHANGED: ("changed", "the user's git metadata changed during a step"),
    EventKind.PAUSED: ("", "`job step` paused the job"),
    EventKind.RESUMED: ("", "a paused job goes on"),
    EventKind.RERUN: ("job", "a new job reruns this one"),
    EventKind.RESTEP: ("step, checkpoint", "the last step runs again from its checkpoint"),
    EventKind.CANCEL_REQUESTED: ("", "someone asked to cancel the job"),
    EventKind.ACCEPTING: ("files?, hunks?", "an accept is writing these files or hunks"),
    EventKind.HUNKS_ACCEPTED: ("hunks", "these hunks were accepted"),
    EventKind.CHANGES_REQUESTED: (
        "step, comments",
        "the user asked for changes to the job in review (`comments`: `[{text, hunk?, "
        "path?, lines?}]`); a worker step addresses them",
    ),
    EventKind.KEPT: ("kept", "files kept from the workspace when it was removed"),
    EventKind.REAPED: (
        "processes, unknown?",
        "stray processes of the agent were killed; `unknown`: a cancel found a runtime that "
        "cannot tell whether the agent still runs (why, and what to do)",
    ),
    EventKind.OBSERVER_WARNING: (_HIT, "a user pattern was too slow and is disabled"),
    EventKind.MESSAGE: (
        "text, count?",
        "the agent said something; a coalesced run on the wire: `count` texts joined by newlines",
    ),
    EventKind.TOOL_CALL: ("tool, input, id?", "the agent used a tool"),
    EventKind.TOOL_RESULT: ("id, tool, ok, output", "a tool call ended"),
    EventKind.FILE_CHANGE: ("path, action", "the agent changed a file"),
    EventKind.USAGE: (
        "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, "
        "cost_usd, cumulative, turns, model",
        "tokens and cost",
    ),
    EventKind.SESSION: ("id, resumed?, refused?", "the agent's session id"),
    EventKind.QUESTION: (
        f"text, id?, kind?, options? (from the observer: {_HIT}, text)",
        "the agent waits for an answer",
    ),
    EventKind.ERROR: ("message, detail?", "the agent reported an error"),
    EventKind.DONE: ("success, summary", "the agent says it finished"),
    EventKind.RATE_LIMITED: (_HIT, "the observer saw a rate limit or a used-up quota"),
    EventKind.AUTH_FAILED: (_HIT, "the observer saw an authentication failure"),
    EventKind.NETWORK_ERROR: (_HIT, "the observer saw a network failure"),
    EventKind.CONTEXT_OVERFLOW: (_HIT, "the observer saw the context window overflow"),
}
