"""A question on the job record, and how the user's answer reaches the agent.

A question (or permission request) is a typed agent event, or a prompt the observer saw on
the agent's terminal. Either moves the job to `needs_input` with a `PendingQuestion`;
`logist job answer` sets its `answer` (the agent never can) and continues the job the way
the agent's provider declares (`AgentProvider.answer_via`):

- `resume`: the agent exits after asking (as real CLIs do headless); the answer starts the
  next step, which resumes the agent's session with the answer as its prompt;
- `stdin`: the live agent reads the answer on its input (needs a runtime that can write to
  it: none can yet, so answering says so and changes nothing);
- `file`: the live agent waits for the file `$LOGIST_ANSWER_FILE` (`AgentContext.answer_file`).
"""

from __future__ import annotations

import time
from typing import Literal

from logist_server.domain.errors import UsageError
from logist_server.domain.events import AgentQuestion
from logist_server.domain.model import Job, PendingQuestion

AnswerVia = Literal["resume", "stdin", "file"]
ANSWER_VIAS: tuple[str, ...] = ("resume", "stdin", "file")
MAX_ANSWER = 16 * 1024  # characters: it goes on the agent's command line


def pending(event: AgentQuestion, step: int) -> PendingQuestion:
    """The job's question for an agent's (screened) question event."""
    return PendingQuestion(
        text=event.text,
        step=step,
        asked_at=time.time(),
        id=event.id,
        kind=event.kind,
        options=list(event.options),
    )


def seen_on_terminal(text: str, step: int) -> PendingQuestion:
    """The job's question for a prompt the observer saw in the agent's plain output."""
    return PendingQuestion(text=text, step=step, asked_at=time.time(), source="observer")


def asked_in(job: Job, step: int) -> bool:
    """Whether step `step` asked a typed question (its session is to be resumed)."""
    question = job.question
    return question is not None and question.step == step and question.source == "agent"


def route(job: Job, answer_via: str) -> AnswerVia:
    """How the answer to the job's question reaches its agent.

    Only a typed question ends a run that can be resumed; a prompt seen on the terminal
    comes from a live process, answered through its input or the answer file."""
    if answer_via == "resume" and job.question is not None and job.question.source == "agent":
        return "resume"
    return "stdin" if answer_via == "stdin" else "file"


def check_answer(text: str) -> str:
    """The user's answer, or UsageError: not empty, no NUL, at most MAX_ANSWER characters."""
    if not text.strip():
        raise UsageError("the answer is empty")
    if "\x00" in text:
        raise UsageError("the answer holds a NUL character")
    if len(text) > MAX_ANSWER:
        raise UsageError(f"the answer is {len(text)} characters long (at most {MAX_ANSWER})")
    return text


def answered(job: Job, text: str) -> None:
    """Record the user's answer on the job's question (a store mutation)."""
    if job.question is not None:
        job.question.answer = text
        job.question.answered_at = time.time()
