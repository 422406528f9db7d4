"""A small editor model over pytest-lsp's client: buffers, applyEdit, event collection."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

from lsprotocol import types
from pygls.uris import from_fs_path
from pytest_lsp import LanguageClient, client_capabilities
from pytest_lsp.client import register_lsp_features

from logist_server.lsp.jsonrpc import raw_json_converter

SERVER = str(Path(sys.executable).parent / "logist-server")
E = TypeVar("E", bound="Editor")


def apply_text_edits(text: str, edits: list[types.TextEdit]) -> str:
    """Apply LSP edits (UTF-16 positions; tests use ASCII) to `text`, last first."""
    lines = text.splitlines(keepends=True)

    def offset(pos: types.Position) -> int:
        return sum(len(x) for x in lines[: pos.line]) + pos.character

    for edit in sorted(
        edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True
    ):
        start, end = offset(edit.range.start), offset(edit.range.end)
        text = text[:start] + edit.new_text + text[end:]
        lines = text.splitlines(keepends=True)
    return text


def client_converter() -> Any:
    """The server's raw-JSON converter, plus a fix for lsprotocol 2025.0.0 on the client side:
    a CodeAction carrying a `command` object was read as a bare Command."""
    converter = raw_json_converter()

    def command_or_action(obj: Any, _type: Any) -> Any:
        if isinstance(obj.get("command"), str):
            return converter.structure(obj, types.Command)
        return converter.structure(obj, types.CodeAction)

    converter.register_structure_hook(Union[types.Command, types.CodeAction], command_or_action)  # noqa: UP007
    return converter


class Editor:
    """Open buffers on top of a LanguageClient, behaving like an editor would."""

    def __init__(self, client: LanguageClient) -> None:
        self.client = client
        self.buffers: dict[str, str] = {}
        self.versions: dict[str, int] = {}
        self.events: list[dict[str, Any]] = []
        self.event_arrived = asyncio.Event()
        client.feature("logist/jobEvent")(lambda params: self._on_event(params))
        client.feature(types.WORKSPACE_APPLY_EDIT)(lambda params: self._on_apply_edit(params))
        client.feature(types.WORKSPACE_CODE_LENS_REFRESH)(lambda params: None)

    def _on_event(self, params: Any) -> None:
        self.events.append(params if isinstance(params, dict) else dict(params.__dict__))
        self.event_arrived.set()

    def _on_apply_edit(
        self, params: types.ApplyWorkspaceEditParams
    ) -> types.ApplyWorkspaceEditResult:
        for change in params.edit.document_changes or []:
            assert isinstance(change, types.TextDocumentEdit)
            uri = change.text_document.uri
            edits = [e for e in change.edits if isinstance(e, types.TextEdit)]
            self.change(uri, self.apply_edits(self.buffers[uri], edits))
        return types.ApplyWorkspaceEditResult(applied=True)

    def apply_edits(self, text: str, edits: list[types.TextEdit]) -> str:
        """`text` with the server's `edits` applied (positions as this editor reads them)."""
        return apply_text_edits(text, edits)

    def open(self, path: Path, text: str | None = None) -> str:
        uri = from_fs_path(str(path)) or ""
        content = path.read_text() if text is None else text
        self.buffers[uri] = content
        self.versions[uri] = 1
        self.client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                types.TextDocumentItem(uri=uri, language_id="plaintext", version=1, text=content)
            )
        )
        return uri

    def change(self, uri: str, text: str) -> None:
        self.buffers[uri] = text
        self.versions[uri] += 1
        self.client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=self.versions[uri]
                ),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
            )
        )

    async def request(self, method: str, params: Any) -> Any:
        return await self.client.protocol.send_request_async(method, params)

    async def wait_status(
        self, job_id: str, statuses: set[str], timeout: float = 30
    ) -> dict[str, Any]:
        """Wait for a `logist/jobEvent` moving the job into one of `statuses`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for event in self.events:
                if event.get("jobId") == job_id and event.get("status") in statuses:
                    return event
            remaining = deadline - loop.time()
            if remaining <= 0:
                seen = [
                    (e.get("seq"), e.get("kind"), e.get("status"))
                    for e in self.events
                    if e.get("jobId") == job_id
                ]
                raise AssertionError(f"job {job_id} never reached {statuses}; events: {seen}")
            self.event_arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event_arrived.wait(), remaining)


@contextlib.asynccontextmanager
async def lsp_session(
    roots: Sequence[Path], editor_type: type[E], env: dict[str, str] | None = None
) -> AsyncIterator[E]:
    """The real `logist-server` over stdio, initialised with `roots` as workspace folders,
    seen through a new `editor_type`; shut down at the end."""
    client = LanguageClient(converter_factory=client_converter)
    register_lsp_features(client)
    editor = editor_type(client)
    await client.start_io(SERVER, env=env)
    uris = [from_fs_path(str(root)) or "" for root in roots]
    await client.initialize_session(
        types.InitializeParams(
            capabilities=client_capabilities("visual-studio-code"),
            root_uri=uris[0],
            workspace_folders=[
                types.WorkspaceFolder(uri=uri, name=root.name)
                for uri, root in zip(uris, roots, strict=True)
            ],
        )
    )
    try:
        yield editor
    finally:
        await client.shutdown_session()
