/** Review: the job's base and proposal as read-only `logist:` documents, shown in VS Code's diff
 * editor. The files come from the job's git commits (the base is what the editor showed,
 * unsaved buffers included; the proposal is the result commit). */
import { execFile } from "node:child_process";
import * as vscode from "vscode";
import type { Server } from "./server";

export const SCHEME = "logist";

export interface JobRecord {
  id: string;
  repo: string;
  status: string;
  prompt: string;
  baseCommit: string | null;
  result?: { resultCommit?: string | null } | null;
}

export interface DiffFile {
  uri: string;
  path: string;
  kind: string;
  hunks: { id: string; accepted: boolean; conflict: boolean }[];
}

/** `logist:/<path>?job=<id>&side=base|proposal`. */
export function sideUri(jobId: string, path: string, side: "base" | "proposal"): vscode.Uri {
  return vscode.Uri.from({ scheme: SCHEME, path: `/${path}`, query: new URLSearchParams({ job: jobId, side }).toString() });
}

function gitShow(repo: string, commit: string, path: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile("git", ["-C", repo, "show", `${commit}:${path}`], { maxBuffer: 64 * 1024 * 1024 }, (err, stdout) =>
      resolve(err ? undefined : stdout),
    );
  });
}

export class ReviewProvider implements vscode.TextDocumentContentProvider {
  private readonly changed = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changed.event;

  constructor(private readonly server: Server) {}

  /** The job has a new result (a step ran again): open base/proposal documents reload. */
  jobChanged(jobId: string): void {
    for (const doc of vscode.workspace.textDocuments) {
      if (doc.uri.scheme === SCHEME && new URLSearchParams(doc.uri.query).get("job") === jobId) this.changed.fire(doc.uri);
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const query = new URLSearchParams(uri.query);
    const jobId = query.get("job") ?? "";
    const side = query.get("side");
    const job = await this.server.request<JobRecord>("logist/getJob", { jobId }, true);
    if (!job) return `Logist job ${jobId} no longer exists.`;
    const commit = side === "base" ? job.baseCommit : job.result?.resultCommit;
    if (!commit) return "";
    // A file created (or deleted) by the job is absent on one side: an empty document.
    return (await gitShow(job.repo, commit, uri.path.replace(/^\//, ""))) ?? "";
  }
}

/** Open the job's changes: one diff editor, or the multi-file changes editor. */
export async function openChanges(server: Server, jobId: string): Promise<void> {
  const diff = await server.request<{ files: DiffFile[] }>("logist/getJobDiff", { jobId });
  if (!diff) return;
  const files = diff.files.filter((f) => f.kind !== "binary");
  if (files.length === 0) {
    void vscode.window.showInformationMessage(`Logist job ${jobId} changed no text file.`);
    return;
  }
  const title = (path: string): string => `${path} (Logist ${jobId}: base ↔ proposal)`;
  if (files.length === 1) {
    const f = files[0] as DiffFile;
    await vscode.commands.executeCommand("vscode.diff", sideUri(jobId, f.path, "base"), sideUri(jobId, f.path, "proposal"), title(f.path), {
      preview: false,
    });
    return;
  }
  const resources = files.map((f) => [vscode.Uri.parse(f.uri), sideUri(jobId, f.path, "base"), sideUri(jobId, f.path, "proposal")]);
  try {
    await vscode.commands.executeCommand("vscode.changes", `Logist job ${jobId}: ${files.length} files`, resources);
  } catch {
    for (const f of files) {
      await vscode.commands.executeCommand("vscode.diff", sideUri(jobId, f.path, "base"), sideUri(jobId, f.path, "proposal"), title(f.path), {
        preview: false,
      });
    }
  }
}
