"""Showing a job's events as they happen: rich on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from logist_server.cli.render import event_line, summarize
from logist_server.domain.model import JobEvent
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


class RichProgress:
    """A live status line with a spinner; status changes and messages scroll above it."""

    def __init__(self, job_id: str) -> None:
        from rich.console import Console
        from rich.live import Live
        from rich.spinner import Spinner

        self.console = Console(stderr=True)
        self.job_id = job_id
        self.status = "pending"
        self.spinner = Spinner("dots", text=self._text(""))
        self.live = Live(self.spinner, console=self.console, refresh_per_second=12, transient=True)

    def _text(self, last: str) -> str:
        return f"[bold]{self.job_id}[/bold] [cyan]{self.status}[/cyan] {last}"

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
        self.spinner.update(text=self._text(escape(last[:80])))


def make_progress(job_id: str, json_mode: bool) -> PlainProgress | RichProgress:
    if json_mode:
        return PlainProgress(quiet=True)
    if sys.stderr.isatty():
        return RichProgress(job_id)
    return PlainProgress()
