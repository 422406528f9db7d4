"""Showing a job's events as they happen: rich on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from logist_server.cli.render import event_line, summarize
from logist_server.domain.model import JobEvent, Usage
from logist_server.store.job_store import expand_spans


class PlainProgress:
    """One line per event on stderr (stdout stays free for results)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def __call__(self, events: list[JobEvent]) -> None:
        if self.quiet:
            return
        for event in expand_spans(events):
            sys.stderr.write(event_line(event) + "\n")
        sys.stderr.flush()


#: The job's usage and when it started, read from the store (None: not known yet).
JobFigures = Callable[[], tuple[Usage, float] | None]
#: Reading the job's figures again at most this often (a usage event asks for them).
FIGURES_EVERY_S = 0.5


def format_figures(usage: Usage, elapsed_s: float) -> str:
    """`1:02 · 12.3k tokens · $0.0123`, as agents' own interfaces show them: elapsed time,
    every token (input, cached, written, output, reasoning) and the cost so far (`computed`
    when Logist priced the tokens, `cost unknown` when it could not)."""
    minutes, seconds = divmod(int(max(elapsed_s, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    clock = f"{hours}:{minutes:02}:{seconds:02}" if hours else f"{minutes}:{seconds:02}"
    tokens = (usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
              + usage.output_tokens + usage.reasoning_tokens)  # fmt: skip
    parts = [clock]
    if tokens:
        parts.append(f"{_count(tokens)} tokens")
    if usage.unpriced:
        parts.append("cost unknown")
    elif usage.cost_source:
        label = "" if usage.cost_source == "reported" else f" ({usage.cost_source})"
        parts.append(f"${usage.cost_usd:.4f}{label}")
    return " · ".join(parts)


def _count(n: int) -> str:
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


class RichProgress:
    """A live status line with a spinner (elapsed time, tokens and cost so far, the last
    thing the agent said); status changes and messages scroll above it."""

    def __init__(self, job_id: str, figures: JobFigures | None = None) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        self.console = Console(stderr=True)
        self.job_id = job_id
        self.status = "pending"
        self.figures = figures
        self.usage = Usage()
        self.started = time.time()
        self.last = ""
        self._read_at = 0.0
        self._refresh_figures()
        self.spinner = Spinner("dots", text=_Line(self))
        self.live = Live(self.spinner, console=self.console, refresh_per_second=12, transient=True)

    def _text(self, last: str) -> str:
        from rich.markup import escape

        shown = escape(format_figures(self.usage, time.time() - self.started))
        return f"[bold]{self.job_id}[/bold] [cyan]{self.status}[/cyan] [dim]{shown}[/dim] {last}"

    def _refresh_figures(self, force: bool = True) -> None:
        now = time.monotonic()
        if self.figures is None or (not force and now - self._read_at < FIGURES_EVERY_S):
            return
        self._read_at = now
        got = self.figures()
        if got is not None:
            self.usage, self.started = got

    def __enter__(self) -> RichProgress:
        self.live.__enter__()
        return self

    def __exit__(self, et: Any, ev: Any, tb: Any) -> None:
        self.live.__exit__(et, ev, tb)

    def __call__(self, events: list[JobEvent]) -> None:
        from rich.markup import escape

        last = ""
        for event in events:
            if event.span > 1:  # a run of messages: the spinner shows the latest
                last = str(event.data["texts"][-1])
                continue
            if event.kind == "status":
                self.status = str(event.data.get("to"))
                self.console.print(f"[dim]{escape(event_line(event))}[/dim]")
            elif event.kind in ("error", "question", "file_change"):
                self.console.print(escape(event_line(event)))
            last = summarize(event.kind, event.data)
        if any(event.kind in ("usage", "status") for event in events):
            self._refresh_figures(force=any(e.kind == "status" for e in events))
        self.last = escape(last[:80])


class _Line:
    """The spinner's text, rendered afresh at every refresh (the clock keeps moving)."""

    def __init__(self, progress: RichProgress) -> None:
        self.progress = progress

    def __rich__(self) -> Any:
        from rich.text import Text

        return Text.from_markup(self.progress._text(self.progress.last))


def make_progress(
    job_id: str, json_mode: bool, figures: JobFigures | None = None
) -> PlainProgress | RichProgress:
    """Rich progress with the job's figures (`figures`) on a terminal; plain lines on a
    pipe or a file; nothing but the result with `--json`."""
    if json_mode:
        return PlainProgress(quiet=True)
    if sys.stderr.isatty():
        return RichProgress(job_id, figures)
    return PlainProgress()


def store_figures(store: Any, job_id: str) -> JobFigures:
    """The job's usage so far and when it was created, from `store` (a `JobStore`)."""

    def read() -> tuple[Usage, float] | None:
        try:
            job = store.get(job_id)
        except Exception:  # a figure on a status line is never worth failing a run for
            return None
        return job.result.usage, job.created_at

    return read
