"""How an agent's parsed events become the job's events and state.

`AgentEventRecorder.commit` writes, in one transaction: the job events for the agent's
events (a run of messages as one row), what the observer saw in the output, usage added up
on the step and the job, a failure the observer recognised, a question's move to
`needs_input`, and the position in the agent's output they were read up to.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Any

from logist_server.domain import pricing, questions
from logist_server.domain.agent_output import cut, observed_texts, screen
from logist_server.domain.event_kinds import EventKind
from logist_server.domain.events import (
    AgentError,
    AgentEvent,
    AgentMessage,
    AgentQuestion,
    AgentSession,
    AgentUsage,
    event_data,
    event_kind,
)
from logist_server.domain.model import Job, JobEvent, JobStatus, PendingQuestion, Step, Usage
from logist_server.domain.observer import Observer, ObserverHit
from logist_server.domain.pricing import Price
from logist_server.domain.states import check_transition
from logist_server.engine.job_log import JobLog
from logist_server.store.job_store import EventSpec

S = JobStatus
MAX_REASON = 500  # characters of a question shown as the job's status reason
# Output lines that are not JSON objects: plain text (stderr, a text-mode agent) to observe.
PLAIN_LINE = re.compile(rb"(?m)^[^{\n].*$")


class AgentEventRecorder:
    """Commits one step's agent events (and what the observer makes of its output)."""

    def __init__(self, log: JobLog, observer: Observer) -> None:
        self.log = log
        self.observer = observer
        self.step_error = False  # the current step logged an agent error
        self.unpriced_said: set[tuple[int, str]] = set()  # (step, model) warned about

    def commit(
        self,
        events: list[AgentEvent],
        offset: int,
        raw: bytes,
        status: JobStatus | None,
        exit_code: int | None = None,
        cursor: str | None = None,
        notes: Sequence[EventSpec] = (),
    ) -> tuple[Job, list[JobEvent]]:
        """Commit parsed events, what the observer saw and the output position, at once.

        The events are screened first (`agent_output.screen`: bounded, no control
        characters in questions and ids, an unusable session id refused). The agent's
        session id goes on the step. A question (typed, or a prompt the observer saw on
        the terminal) from a running agent becomes the job's `question` and moves it to
        `needs_input` in the same transaction, so no driver can die between the two."""
        specs, others = event_specs(screen(events))
        hits = self.observe(raw, others)
        specs += [(hit.kind, hit_data(hit)) for hit in hits]
        specs += notes  # the follower's own notes (an output line cut)
        failures = [hit for hit in hits if hit.status == "failed" or hit.transient]
        if any(type(e) is AgentError for e in others):
            self.step_error = True
        sessions = [e.id for e in others if type(e) is AgentSession and e.refused is None]
        asked = asked_question(others, hits)
        ask = status == S.RUNNING and asked is not None
        if asked is not None and ask:
            check_transition(S.RUNNING, S.NEEDS_INPUT)
            question, reason = asked
            specs.append(("status", {"from": S.RUNNING.value, "to": S.NEEDS_INPUT.value,
                                     "reason": reason, "kind": question.kind,
                                     "options": question.options}))  # fmt: skip

        def apply(j: Job) -> None:
            step = j.steps[-1]
            step.output_offset = offset
            if cursor is not None:  # the runtime's cursor just past `offset` bytes
                step.output_cursor = cursor
            if sessions:
                self.say_not_resumed(step, sessions[-1], specs)
                step.session_id = sessions[-1]
            if exit_code is not None:
                step.exit_code = exit_code
                step.finished_at = time.time()
            if failures:
                step.failure = failures[-1].reason
                step.transient = failures[-1].transient
            usages = [e for e in others if type(e) is AgentUsage]
            if usages:
                if step.usage is None:
                    step.usage = Usage()
                model = step_model(j, step)
                for event in usages:
                    price = pricing.price_of(event.model or model, j.pricing)
                    apply_usage(step.usage, event, price, event.model or model)
                j.result.usage = total_usage(j.steps)
                self.say_unpriced(step, specs)
            if asked is not None and ask:
                question, reason = asked
                question.step = step.number
                j.status = S.NEEDS_INPUT
                j.status_reason = reason
                j.question = question

        return self.log.store.update(self.log.job_id, apply, specs)

    @staticmethod
    def say_not_resumed(step: Step, session: str, specs: list[EventSpec]) -> None:
        """The step was to continue a session but the agent reports another one (it could
        not load it and started afresh): a `resume` event says so, and the step no longer
        claims to have resumed it."""
        asked = step.resumed_session
        if asked is None or session == asked:
            return
        step.resumed_session = None
        reason = f"the agent started a new session instead of continuing {asked}"
        data = {"step": step.number, "why": step.why, "resumed": False, "reason": reason}
        specs.append((EventKind.RESUME.value, data))

    def say_unpriced(self, step: Step, specs: list[EventSpec]) -> None:
        """An `observer_warning` (once per step and model) when tokens have no cost: the
        agent reported none and Logist has no price for the model."""
        usage = step.usage
        if usage is None or not usage.unpriced:
            return
        key = (step.number, usage.unpriced)
        if key in self.unpriced_said:
            return
        self.unpriced_said.add(key)
        specs.append((EventKind.OBSERVER_WARNING.value, unpriced_warning(usage.unpriced)))

    def observe(self, raw: bytes, others: list[AgentEvent]) -> list[ObserverHit]:
        """Observer hits in plain-text lines and agent errors, one per pattern per batch."""
        texts = [] if all_json_lines(raw) else [
            m.group().decode("utf-8", "replace") for m in PLAIN_LINE.finditer(raw)
        ]  # fmt: skip
        texts += [text for e in others for text in observed_texts(e)]  # JSON errors too
        hits: dict[str, ObserverHit] = {}
        for text in texts:
            hit = self.observer.scan(text)
            if hit is not None:
                hits.setdefault(hit.pattern.name, hit)
        return list(hits.values()) + self.observer.take_warnings()

    def had_error(self, step: Step) -> bool:
        """Whether the step already logged an agent error (a re-attached parser cannot know)."""
        if step.output_offset == 0:
            return False
        start = self.log.step_start_seq(step.number)
        store = self.log.store
        return any(e.kind == "error" for e in store.event_rows(self.log.job_id, after=start))


def event_specs(events: list[AgentEvent]) -> tuple[list[EventSpec], list[AgentEvent]]:
    """Job events for agent events, and the events that are not messages, in one pass.

    A run of messages becomes one stored row with a span (a flood stays cheap)."""
    specs: list[EventSpec] = []
    others: list[AgentEvent] = []
    texts: list[str] = []

    def flush() -> None:
        if len(texts) == 1:
            specs.append(("message", {"text": texts[0]}))
        elif texts:
            specs.append(("message", {"texts": list(texts)}, len(texts)))
        texts.clear()

    for event in events:
        if type(event) is AgentMessage:
            texts.append(event.text)
            continue
        flush()
        others.append(event)
        specs.append((event_kind(event), event_data(event)))
    flush()
    return specs, others


def asked_question(
    others: list[AgentEvent], hits: list[ObserverHit]
) -> tuple[PendingQuestion, str] | None:
    """The first question among screened events, else a prompt the observer saw on the
    terminal: the job's question (its step is set when committed) and the status reason."""
    for event in others:
        if type(event) is AgentQuestion:
            return questions.pending(event, 0), cut(event.text, MAX_REASON)
    for hit in hits:
        if hit.status == "needs_input":
            return questions.seen_on_terminal(hit.excerpt, 0), hit.reason
    return None


def hit_data(hit: ObserverHit) -> dict[str, Any]:
    """An observer hit's event data; a question carries its text, as an agent's would."""
    data = hit.event_data()
    if hit.status == "needs_input":
        data["text"] = hit.excerpt
    return data


def all_json_lines(raw: bytes) -> bool:
    """Every line starts with `{` (two byte counts: much cheaper than a regex scan)."""
    return not raw or (raw.startswith(b"{") and raw.count(b"\n{") >= raw.count(b"\n") - 1)


REPORTED, COMPUTED, MIXED = "reported", "computed", "mixed"
#: `Usage.unpriced` when the agent did not name its model and none was given.
UNNAMED_MODEL = "(the agent's default model)"


def step_model(job: Job, step: Step) -> str | None:
    """The model a step's agent was given (its own default when None); a step recorded
    before steps kept it: the job's model for the job's own agent."""
    if step.model is not None or step.agent != job.agent.name:
        return step.model
    return job.agent.model


def unpriced_warning(model: str) -> dict[str, Any]:
    return {
        "warning": "unpriced",
        "model": model,
        "reason": f"no cost for the tokens of {model}: the agent reports none and Logist has "
        f"no price for it; add it under `pricing:` in your configuration (or give --model)",
    }


def merge_source(a: str, b: str) -> str:
    """Where a sum of two costs comes from: `reported`, `computed`, or `mixed`."""
    if not a or a == b:
        return b
    if not b:
        return a
    return MIXED


def total_usage(steps: list[Step]) -> Usage:
    """The job's usage: every step's, added up (a retried step cost money too); the cost
    is `reported`, `computed` or `mixed` as its steps' are, and `unpriced` names a model
    some step's tokens had no price for."""
    total = Usage()
    for step in steps:
        usage = step.usage
        if usage is None:
            continue
        total.input_tokens += usage.input_tokens
        total.output_tokens += usage.output_tokens
        total.cache_read_tokens += usage.cache_read_tokens
        total.cache_write_tokens += usage.cache_write_tokens
        total.reasoning_tokens += usage.reasoning_tokens
        total.cost_usd += usage.cost_usd
        total.turns += usage.turns
        total.cost_source = merge_source(total.cost_source, usage.cost_source)
        total.unpriced = total.unpriced or usage.unpriced
    return total


def apply_usage(
    usage: Usage, event: AgentUsage, price: Price | None = None, model: str | None = None
) -> None:
    """Add (or, `cumulative`, replace with) an agent's usage report on a step's usage.

    The cost is the agent's own when it reports one (`reported`), else computed from the
    event's tokens and `price` (`computed`; reasoning billed as output); with neither, the
    tokens count and the cost does not: `usage.unpriced` names `model`. A cumulative report
    is a running total: each figure (tokens, cost, turns) only ever rises to it, so an agent
    cannot lower a step's spend under `--max-cost` or wipe its tokens with a smaller report
    (a cost-only report leaves the tokens); a higher cost brings its source along."""
    cost, source = event.cost_usd, REPORTED
    if cost is None and price is not None:
        cost, source = pricing.cost(
            price,
            input_tokens=event.input_tokens,
            output_tokens=event.output_tokens,
            cache_read_tokens=event.cache_read_tokens,
            cache_write_tokens=event.cache_write_tokens,
            reasoning_tokens=event.reasoning_tokens,
        ), COMPUTED  # fmt: skip
    tokens = (event.input_tokens, event.output_tokens, event.cache_read_tokens,
              event.cache_write_tokens, event.reasoning_tokens)  # fmt: skip
    if event.cumulative:
        usage.input_tokens = max(usage.input_tokens, event.input_tokens)
        usage.output_tokens = max(usage.output_tokens, event.output_tokens)
        usage.cache_read_tokens = max(usage.cache_read_tokens, event.cache_read_tokens)
        usage.cache_write_tokens = max(usage.cache_write_tokens, event.cache_write_tokens)
        usage.reasoning_tokens = max(usage.reasoning_tokens, event.reasoning_tokens)
        if cost is not None:
            if cost >= usage.cost_usd:
                usage.cost_usd, usage.cost_source = cost, source
            usage.unpriced = ""
    else:
        usage.input_tokens += event.input_tokens
        usage.output_tokens += event.output_tokens
        usage.cache_read_tokens += event.cache_read_tokens
        usage.cache_write_tokens += event.cache_write_tokens
        usage.reasoning_tokens += event.reasoning_tokens
        if cost is not None:
            usage.cost_usd += cost
            usage.cost_source = merge_source(usage.cost_source, source)
    if cost is None and any(tokens):
        usage.unpriced = model or UNNAMED_MODEL
    if event.turns is None:
        usage.turns += 1
    else:
        usage.turns = max(usage.turns, event.turns) if event.cumulative else event.turns


def last_error(events: list[JobEvent]) -> str | None:
    """The message of the last agent error among `events`."""
    for event in reversed(events):
        if event.kind == AgentError.__struct_config__.tag:
            return str(event.data.get("message", "")) or None
    return None
