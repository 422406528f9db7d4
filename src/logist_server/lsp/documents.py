"""Open documents numbered by LSP's line breaks.

pygls keeps each open document's text and applies an incremental change (a range in lines
and UTF-16 columns, as VS Code and Neovim send them) by splitting the text with
`str.splitlines`, which also breaks at form feed, U+2028, NEL and other characters LSP does
not count: a change after one of them landed on another line than the editor's, and a
hunk accepted later went to the wrong place of the user's buffer. Here a document's lines
are split where LSP breaks them (`\\n`, `\\r\\n`, `\\r`), as `hunks.split_lines` numbers them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pygls.workspace import TextDocument, Workspace

from logist_server.engine.hunks import split_lines


class LspTextDocument(TextDocument):
    """A text document whose lines are those an LSP client counts."""

    @property
    def lines(self) -> Sequence[str]:
        return tuple(split_lines(self.source))


class LspWorkspace(Workspace):
    """A workspace whose text documents are `LspTextDocument`s."""

    def _create_text_document(
        self,
        doc_uri: str,
        source: str | None = None,
        version: int | None = None,
        language_id: str | None = None,
    ) -> TextDocument:
        return LspTextDocument(
            doc_uri,
            source=source,
            version=version,
            language_id=language_id,
            sync_kind=self._sync_kind,
            position_codec=self.position_codec,
        )


def lsp_workspace(workspace: Workspace) -> LspWorkspace:
    """`workspace` (just made by `initialize`, no document open yet) as an LspWorkspace."""
    return LspWorkspace(
        workspace.root_uri,
        workspace._sync_kind,
        list(workspace.folders.values()),
        workspace.position_encoding,
    )
