/** The job panel: a webview per job streaming its events, with the actions of its state and,
 * when the job waits for input, the question and an answer box. */
import * as vscode from "vscode";
import { Coalescer } from "./coalesce";
import { eventLines, type EventLine } from "./eventText";
import { nextHistoryPage } from "./history";
import { actionsFor, describe, type JobEvent, type JobModel } from "./model";
import { MAX_ROWS, nonce, panelHtml } from "./panelHtml";
import type { Server } from "./server";

/** Runs a job action by name (the extension's commands). */
export type RunAction = (action: string, jobId: string) => Promise<void>;

interface EventsPage {
  events: JobEvent[];
  next?: number | null;
  lastSeq?: number;
}

export class JobPanels implements vscode.Disposable {
  private readonly panels = new Map<string, JobPanel>();

  constructor(
    private readonly server: Server,
    private readonly model: JobModel,
    private readonly run: RunAction,
  ) {}

  open(jobId: string): void {
    const existing = this.panels.get(jobId);
    if (existing) {
      existing.panel.reveal();
      return;
    }
    const panel = new JobPanel(jobId, this.server, this.model, this.run, () => this.panels.delete(jobId));
    this.panels.set(jobId, panel);
  }

  event(event: JobEvent): void {
    this.panels.get(event.jobId)?.event(event);
  }

  /** The job's summary changed (status, cost): update the header of its panel. */
  changed(jobId: string): void {
    this.panels.get(jobId)?.postState();
  }

  dispose(): void {
    for (const p of [...this.panels.values()]) p.panel.dispose();
  }
}

class JobPanel {
  readonly panel: vscode.WebviewPanel;
  private lastSeq = 0;
  private loaded = false;
  private early: JobEvent[] = [];
  private readonly rows: Coalescer<EventLine>;
  private ready = false;

  constructor(
    private readonly jobId: string,
    private readonly server: Server,
    private readonly model: JobModel,
    private readonly run: RunAction,
    onClose: () => void,
  ) {
    const job = model.get(jobId);
    this.panel = vscode.window.createWebviewPanel("logist.job", `Logist: ${job?.headline ?? jobId}`, vscode.ViewColumn.Beside, {
      enableScripts: true,
      retainContextWhenHidden: true,
      localResourceRoots: [],
    });
    // Updates go to the webview at most every 100 ms, at most MAX_ROWS rows each.
    this.rows = new Coalescer<EventLine>((rows, dropped) => void this.panel.webview.postMessage({ type: "rows", rows, dropped }), 100, MAX_ROWS);
    this.panel.webview.html = panelHtml(jobId, this.panel.webview.cspSource, nonce());
    this.panel.webview.onDidReceiveMessage((m: unknown) => this.received(m));
    this.panel.onDidDispose(() => {
      this.rows.dispose();
      onClose();
    });
  }

  private received(message: unknown): void {
    if (typeof message !== "object" || message === null) return;
    const m = message as { type?: string; action?: string; text?: string };
    if (m.type === "ready") {
      this.ready = true;
      this.postState();
      void this.loadHistory();
    } else if (m.type === "action" && typeof m.action === "string") {
      void this.run(m.action, this.jobId);
    } else if (m.type === "answer" && typeof m.text === "string") {
      void this.answer(m.text);
    }
  }

  private async answer(text: string): Promise<void> {
    const result = await this.server.request<{ status?: string }>("logist/answerJob", { jobId: this.jobId, text });
    if (result) void vscode.window.setStatusBarMessage(`Logist: answer sent to job ${this.jobId}`, 4000);
  }

  /** The history first (a panel opened late: its head and its newest MAX_ROWS events, the
   * middle of a long one skipped and said so), then the live events after it. */
  private async loadHistory(): Promise<void> {
    let after: number | null = 0;
    let skipped = false;
    for (let page = 0; page < 1000 && after !== null; page++) {
      const from: number = after;
      const result: EventsPage | undefined = await this.server.request<EventsPage>("logist/getJobEvents", { jobId: this.jobId, afterSeq: from }, page > 0);
      if (!result) break;
      for (const e of result.events ?? []) this.show(e);
      const step = nextHistoryPage(from, result.next, result.lastSeq, MAX_ROWS, skipped);
      if (step.skipped > 0 && step.after !== null) {
        skipped = true;
        this.rows.drop(step.skipped); // said in the panel: "N earlier lines not shown"
        this.lastSeq = Math.max(this.lastSeq, step.after);
      }
      after = step.after;
    }
    this.loaded = true;
    for (const e of this.early) this.show(e);
    this.early = [];
  }

  event(event: JobEvent): void {
    if (!this.loaded) {
      this.early.push(event);
      return;
    }
    this.show(event);
    if (event.status || event.kind === "question" || event.kind === "usage") this.postState();
  }

  private show(event: JobEvent): void {
    if (event.seq <= this.lastSeq) return;
    for (const row of eventLines(event)) if (row.seq > this.lastSeq) this.rows.push(row);
    this.lastSeq = event.seq;
  }

  postState(): void {
    if (!this.ready) return;
    const job = this.model.get(this.jobId);
    if (!job) {
      void this.panel.webview.postMessage({
        type: "state",
        state: { id: this.jobId, headline: this.jobId, status: "deleted", detail: "", reason: "the job no longer exists", actions: [], question: null },
      });
      return;
    }
    this.panel.title = `Logist: ${job.headline || job.id}`;
    void this.panel.webview.postMessage({
      type: "state",
      state: {
        id: job.id,
        headline: job.headline,
        status: job.status,
        detail: describe(job, Date.now() / 1000),
        reason: job.reason,
        actions: actionsFor(job.status),
        question: job.question,
      },
    });
  }
}
