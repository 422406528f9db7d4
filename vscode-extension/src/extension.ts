/** The Logist extension: wires the server, the Jobs view, the job panels and the commands. */
import * as fs from "node:fs";
import * as vscode from "vscode";
import type { LanguageClient } from "vscode-languageclient/node";
import { errorText } from "./errors";
import { JobsView } from "./jobsView";
import { JobModel, isSettled, type JobEvent, type JobSummary } from "./model";
import { newJob } from "./newJob";
import { JobPanels } from "./panel";
import { ReviewProvider, SCHEME, openChanges } from "./review";
import { Server, settingsPayload } from "./server";
import { StatusItem } from "./status";

const ACTIONS: Record<string, string> = {
  openChanges: "logist.openChanges",
  acceptAll: "logist.acceptAll",
  requestChanges: "logist.requestJobChanges",
  reject: "logist.reject",
  cancel: "logist.cancel",
  rerun: "logist.rerun",
  delete: "logist.delete",
  answer: "logist.answer",
};

/** Timings for the end-to-end test (LOGIST_VSCODE_TIMINGS names a file; one JSON line each). */
function timing(name: string, ms: number): void {
  const file = process.env.LOGIST_VSCODE_TIMINGS;
  if (!file) return;
  try {
    fs.appendFileSync(file, `${JSON.stringify({ name, ms, at: Date.now() })}\n`);
  } catch {
    // a test hook: never an error for the user
  }
}

let running: Server | undefined;

/** The output channel, whose writes never throw: while the extension host shuts down its
 * channel is closed before the language client has logged its last failed request. */
function safeChannel(channel: vscode.OutputChannel): vscode.OutputChannel {
  return new Proxy(channel, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        try {
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch {
          return undefined;
        }
      };
    },
  });
}

export function activate(context: vscode.ExtensionContext): void {
  const activated = Date.now();
  const output = safeChannel(vscode.window.createOutputChannel("Logist"));
  const model = new JobModel();
  const view = new JobsView(model);
  const status = new StatusItem(model);
  let listing: Promise<void> | undefined;

  let review: ReviewProvider | undefined;
  const server: Server = new Server(output, (client) => configure(client), timing);
  const panels = new JobPanels(server, model, async (action, jobId) => {
    const command = ACTIONS[action];
    if (command) await vscode.commands.executeCommand(command, jobId);
  });

  async function listJobs(): Promise<void> {
    if (!listing) {
      listing = (async () => {
        const jobs = await server.request<JobSummary[]>("logist/listJobs", {}, true);
        if (jobs) {
          model.load(jobs);
          view.refresh();
          status.update();
        }
      })().finally(() => (listing = undefined));
    }
    return listing;
  }

  function onEvent(event: JobEvent): void {
    const before = model.get(event.jobId)?.status;
    if (model.apply(event, Date.now() / 1000)) {
      void listJobs().then(() => {
        if (model.apply(event, Date.now() / 1000) === false) view.refresh();
      });
    } else if (event.status || event.kind === "usage" || event.kind === "question") {
      // Only events that change what the tree shows refresh it: a refresh disposes the rows'
      // commands, and a click during a flood of messages would find its command gone.
      view.refresh();
      status.update();
      panels.changed(event.jobId);
    }
    panels.event(event);
    if (event.status && event.status !== before) notify(event);
    if (event.status === "review") review?.jobChanged(event.jobId);
  }

  function notify(event: JobEvent): void {
    if (!vscode.workspace.getConfiguration("logist").get<boolean>("notifications", true)) return;
    const job = model.get(event.jobId);
    const name = job ? `"${job.headline}"` : event.jobId;
    if (event.status === "review") {
      void vscode.window.showInformationMessage(`Logist: job ${name} is ready for review.`, "Open Changes", "Accept All").then((c) => {
        if (c === "Open Changes") void vscode.commands.executeCommand("logist.openChanges", event.jobId);
        if (c === "Accept All") void vscode.commands.executeCommand("logist.acceptAll", event.jobId);
      });
    } else if (event.status === "failed") {
      const reason = typeof event.data?.reason === "string" ? `: ${event.data.reason}` : "";
      void vscode.window.showErrorMessage(`Logist: job ${name} failed${reason}`, "Show Log").then((c) => {
        if (c) panels.open(event.jobId);
      });
    } else if (event.status === "needs_input") {
      void vscode.window.showInformationMessage(`Logist: job ${name} asks a question.`, "Answer").then((c) => {
        if (c) panels.open(event.jobId);
      });
    }
  }

  function configure(client: LanguageClient): void {
    // The server's own job messages duplicate the notifications above (which carry actions):
    // they go to the log; its warnings (a stuck or halted job) are shown.
    client.onNotification("window/showMessage", (m: { type: number; message: string }) => {
      output.appendLine(`[server] ${m.message}`);
      if (m.type === 2) void vscode.window.showWarningMessage(m.message);
    });
    client.onNotification("logist/jobEvent", (event: JobEvent) => {
      try {
        onEvent(event);
      } catch (err) {
        output.appendLine(`[logist] jobEvent: ${errorText(err)}`);
      }
    });
  }

  server.onReady(() => {
    timing("activationToReady", Date.now() - activated);
    void listJobs();
  });
  // A job deleted meanwhile (by the CLI, another editor): the tree drops it.
  server.onMissingJob(() => void listJobs());

  /** A job id from a command's argument: an id, a tree node, or asked for. */
  async function jobIdOf(arg: unknown, title: string, filter: (status: string) => boolean): Promise<string | undefined> {
    if (typeof arg === "string") return arg;
    if (typeof arg === "object" && arg !== null) {
      const a = arg as { job?: { id?: unknown }; jobId?: unknown };
      if (typeof a.job?.id === "string") return a.job.id;
      if (typeof a.jobId === "string") return a.jobId;
    }
    const jobs = model.all().filter((j) => filter(j.status));
    if (jobs.length === 0) {
      void vscode.window.showInformationMessage(`Logist: no job to ${title.toLowerCase()}.`);
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      jobs.map((j) => ({ label: j.headline, description: `${j.id} · ${j.status}`, id: j.id })),
      { title: `Logist: ${title}` },
    );
    return pick?.id;
  }

  async function simple(method: string, arg: unknown, title: string, filter: (s: string) => boolean, done: string): Promise<void> {
    const jobId = await jobIdOf(arg, title, filter);
    if (!jobId) return;
    const result = await server.request<{ status?: string }>(method, { jobId });
    if (result) void vscode.window.setStatusBarMessage(`Logist: job ${jobId} ${done}`, 4000);
    await listJobs();
  }

  async function requestChanges(jobId: string, hunkId: string | undefined, where: string): Promise<void> {
    const text = await vscode.window.showInputBox({
      title: `Logist: Request Changes (job ${jobId})`,
      prompt: hunkId ? `Your comment on the change at ${where}` : "What should the agent change?",
      placeHolder: "e.g. use a constant instead of the literal",
      ignoreFocusOut: true,
      validateInput: (t) => (t.trim() ? undefined : "Write a comment"),
    });
    if (text === undefined) return;
    const comment: Record<string, string> = { text };
    if (hunkId) comment.hunkId = hunkId;
    const result = await server.request("logist/requestChanges", { jobId, comments: [comment] });
    if (result) void vscode.window.setStatusBarMessage(`Logist: changes requested on job ${jobId}`, 4000);
  }

  const any = (): boolean => true;
  const inReview = (s: string): boolean => s === "review";
  const live = (s: string): boolean => !isSettled(s) && s !== "review";
  const reg = (id: string, fn: (...args: unknown[]) => unknown): vscode.Disposable =>
    vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        await fn(...args);
      } catch (err) {
        output.appendLine(`[logist] ${id}: ${errorText(err)}`);
        void vscode.window.showErrorMessage(`Logist: ${errorText(err)}`);
      }
    });

  running = server;
  context.subscriptions.push(
    view,
    status,
    panels,
    vscode.workspace.registerTextDocumentContentProvider(SCHEME, (review = new ReviewProvider(server))),
    reg("logist.newJob", async () => {
      const began = Date.now();
      const r = await newJob(server, false);
      if (r) await revealJob(r.jobId, began);
    }),
    reg("logist.newJobFromSelection", async () => {
      const began = Date.now();
      const r = await newJob(server, true);
      if (r) await revealJob(r.jobId, began);
    }),
    reg("logist.refreshJobs", () => listJobs()),
    reg("logist.restartServer", async () => {
      await server.restart();
      await listJobs();
    }),
    reg("logist.showLog", () => output.show()),
    reg("logist.openPanel", async (arg) => {
      const id = await jobIdOf(arg ?? view.selectedJob(), "Open Job Panel", any);
      if (id) panels.open(id);
    }),
    reg("logist.openChanges", async (arg) => {
      const id = await jobIdOf(arg, "Open Changes", inReview);
      if (id) await openChanges(server, id);
    }),
    reg("logist.acceptAll", async (arg) => {
      const jobId = await jobIdOf(arg, "Accept All", inReview);
      if (!jobId) return;
      const r = await server.request<{ applied: string[]; conflicts: { path: string; reason: string }[] }>("logist/acceptJob", { jobId });
      if (r && r.conflicts.length) {
        void vscode.window.showWarningMessage(
          `Logist: ${r.applied.length} change(s) accepted; ${r.conflicts.length} not applied: ${r.conflicts.map((c) => `${c.path}: ${c.reason}`).join("; ")}`,
        );
      }
      await listJobs();
    }),
    reg("logist.reject", async (arg) => {
      const jobId = await jobIdOf(arg, "Reject", inReview);
      if (!jobId) return;
      const sure = await vscode.window.showWarningMessage(`Reject Logist job ${jobId}? Its changes are discarded.`, { modal: true }, "Reject");
      if (sure === "Reject") await simple("logist/rejectJob", jobId, "Reject", inReview, "rejected");
    }),
    reg("logist.cancel", (arg) => simple("logist/cancelJob", arg, "Cancel", live, "cancelled")),
    reg("logist.rerun", (arg) => simple("logist/rerunJob", arg, "Rerun", isSettled, "rerun started")),
    reg("logist.delete", async (arg) => {
      const jobId = await jobIdOf(arg, "Delete", isSettled);
      if (!jobId) return;
      if (await server.request("logist/deleteJob", { jobId })) model.remove(jobId);
      view.refresh();
      await listJobs();
    }),
    reg("logist.answer", async (arg) => {
      const jobId = await jobIdOf(arg, "Answer", (s) => s === "needs_input");
      if (!jobId) return;
      const job = model.get(jobId);
      const text = await vscode.window.showInputBox({
        title: `Logist: Answer job ${jobId}`,
        prompt: job?.question ?? "The agent is waiting for an answer",
        ignoreFocusOut: true,
        validateInput: (t) => (t.trim() ? undefined : "Write an answer"),
      });
      if (text !== undefined) await server.request("logist/answerJob", { jobId, text });
    }),
    reg("logist.requestJobChanges", async (arg) => {
      const jobId = await jobIdOf(arg, "Request Changes", inReview);
      if (jobId) await requestChanges(jobId, undefined, "");
    }),
    // The server's "Request changes to this hunk..." code action: the client asks for the comment.
    reg("logist.requestHunkChanges", async (arg) => {
      const a = (arg ?? {}) as { jobId?: unknown; hunkId?: unknown; path?: unknown; startLine?: unknown; endLine?: unknown };
      if (typeof a.jobId !== "string" || typeof a.hunkId !== "string") return;
      const lines = typeof a.startLine === "number" ? `:${a.startLine}${typeof a.endLine === "number" && a.endLine !== a.startLine ? `-${a.endLine}` : ""}` : "";
      await requestChanges(a.jobId, a.hunkId, `${typeof a.path === "string" ? a.path : "the hunk"}${lines}`);
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration("logist")) timing("settingsChanged", 0);
      if (e.affectsConfiguration("logist.server")) {
        output.appendLine("[logist] server settings changed: restarting the server");
        void server.restart().then(() => listJobs());
      } else if (e.affectsConfiguration("logist")) {
        void server.client?.sendNotification("workspace/didChangeConfiguration", { settings: settingsPayload() });
      }
    }),
  );

  async function revealJob(jobId: string, began: number): Promise<void> {
    for (let i = 0; i < 100 && !model.get(jobId); i++) {
      await listJobs();
      if (!model.get(jobId)) await new Promise((r) => setTimeout(r, 100));
    }
    timing("newJobToTree", Date.now() - began);
  }

  // deactivate() stops the server first: the client logs to this channel while it stops.
  context.subscriptions.unshift(output);
  void server.start();
}

/** Stop the server before the output channel goes; jobs outlive it. */
export async function deactivate(): Promise<void> {
  const server = running;
  running = undefined;
  await server?.stop();
}
