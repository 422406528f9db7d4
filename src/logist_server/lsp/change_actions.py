"""The code action "Request changes to this hunk...": a command the client completes.

The server cannot ask the user for the comment, so the action's command,
`logist.requestHunkChanges`, is not one of the server's commands: the client registers it
(VS Code: the extension; Neovim: `vim.lsp.commands`), asks for the text, then sends
`logist/requestChanges {jobId, comments: [{hunkId, text}]}`. Its one argument says which
hunk and where it is: `{jobId, hunkId, path, startLine, endLine}` (1-based, inclusive, the
lines in the job's result; a pure deletion gives the line that follows the gap)."""

from __future__ import annotations

from lsprotocol import types

from logist_server.engine.hunks import Hunk

REQUEST_HUNK_CHANGES = "logist.requestHunkChanges"


def request_changes_action(job_id: str, path: str, hunk: Hunk) -> types.CodeAction:
    start = hunk.new_start + 1
    end = hunk.new_start + len(hunk.new_lines) if hunk.new_lines else start
    title = f"Request changes to this hunk... (Logist job {job_id})"
    argument = {"jobId": job_id, "hunkId": hunk.id, "path": path, "startLine": start,
                "endLine": end}  # fmt: skip
    return types.CodeAction(
        title=title,
        kind=types.CodeActionKind.QuickFix,
        command=types.Command(title=title, command=REQUEST_HUNK_CHANGES, arguments=[argument]),
    )
