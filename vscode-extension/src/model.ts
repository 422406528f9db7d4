/** The jobs the extension knows: summaries from `logist/listJobs` kept current by `logist/jobEvent`.
 * Pure (no vscode import) so it is unit-tested with node:test. */

export interface JobSummary {
  id: string;
  status: string;
  createdAt: number;
  agent: string;
  file: string | null;
  headline: string;
  /** Cost so far, the first step's start and the last change (servers before 0.2 omit them). */
  costUsd?: number;
  startedAt?: number | null;
  updatedAt?: number;
}

export interface JobEvent {
  jobId: string;
  seq: number;
  kind: string;
  data: Record<string, unknown>;
  status?: string;
  firstSeq?: number;
}

export interface JobState extends JobSummary {
  costUsd: number;
  lastSeq: number;
  startedAt: number | null;
  endedAt: number | null;
  question: string | null;
  reason: string | null;
}

export type Group = "running" | "needs_input" | "review" | "settled";

export const GROUPS: readonly { id: Group; label: string }[] = [
  { id: "running", label: "Running" },
  { id: "needs_input", label: "Needs Input" },
  { id: "review", label: "In Review" },
  { id: "settled", label: "Settled" },
];

const SETTLED = new Set(["accepted", "rejected", "failed", "cancelled", "halted"]);

export function groupOf(status: string): Group {
  if (status === "needs_input") return "needs_input";
  if (status === "review") return "review";
  if (SETTLED.has(status)) return "settled";
  return "running";
}

export function isSettled(status: string): boolean {
  return SETTLED.has(status);
}

/** The context value of a job's tree item: menus match `job:<group>` and `job:<status>`. */
export function contextValue(status: string): string {
  return `job:${groupOf(status)} job:${status}`;
}

export function formatElapsed(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(s % 60).padStart(2, "0")}s`;
  const h = Math.floor(m / 60);
  return `${h}h ${String(m % 60).padStart(2, "0")}m`;
}

export function formatCost(usd: number): string {
  if (usd <= 0) return "";
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/** One line for a tree item's description: agent, elapsed time, cost. */
export function describe(job: JobState, now: number): string {
  const parts = [job.agent];
  const start = job.startedAt ?? job.createdAt;
  const end = job.endedAt ?? (isSettled(job.status) || job.status === "review" ? null : now);
  if (end !== null) parts.push(formatElapsed(end - start));
  const cost = formatCost(job.costUsd);
  if (cost) parts.push(cost);
  return parts.join(" · ");
}

function firstLine(text: string): string {
  const line = text.split(/\r?\n/, 1)[0] ?? "";
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}

export class JobModel {
  private readonly jobs = new Map<string, JobState>();

  /** Replace what is known with a fresh listing, keeping event-derived details of known jobs. */
  load(summaries: readonly JobSummary[]): void {
    const seen = new Set<string>();
    for (const summary of summaries) {
      seen.add(summary.id);
      const old = this.jobs.get(summary.id);
      // A job seen in no event (started by the CLI, or before a reload) keeps what the
      // listing says: its cost so far, its start and, once it ended, when.
      const ended = isSettled(summary.status) || summary.status === "review";
      this.jobs.set(summary.id, {
        ...summary,
        headline: firstLine(summary.headline),
        costUsd: Math.max(old?.costUsd ?? 0, summary.costUsd ?? 0),
        lastSeq: old?.lastSeq ?? 0,
        startedAt: old?.startedAt ?? summary.startedAt ?? null,
        endedAt: ended ? (old?.endedAt ?? summary.updatedAt ?? null) : null,
        question: old?.question ?? null,
        reason: old?.reason ?? null,
      });
    }
    for (const id of [...this.jobs.keys()]) if (!seen.has(id)) this.jobs.delete(id);
  }

  /** Apply one event; returns true when the job is unknown (the caller should list again). */
  apply(event: JobEvent, now: number): boolean {
    const job = this.jobs.get(event.jobId);
    if (!job) return true;
    job.lastSeq = Math.max(job.lastSeq, event.seq);
    const data = event.data ?? {};
    if (event.status) {
      job.status = event.status;
      if (typeof data.reason === "string") job.reason = data.reason;
      if (event.status === "running" && job.startedAt === null) job.startedAt = now;
      if (isSettled(event.status) || event.status === "review") job.endedAt = now;
      else job.endedAt = null;
      if (event.status !== "needs_input") job.question = null;
    }
    if (event.kind === "usage" && typeof data.costUsd === "number") {
      job.costUsd = data.cumulative === false ? job.costUsd + data.costUsd : Math.max(job.costUsd, data.costUsd);
    }
    if (event.kind === "question" && typeof data.text === "string") job.question = data.text;
    return false;
  }

  remove(id: string): void {
    this.jobs.delete(id);
  }

  get(id: string): JobState | undefined {
    return this.jobs.get(id);
  }

  all(): JobState[] {
    return [...this.jobs.values()];
  }

  /** Jobs of one group, newest first. */
  inGroup(group: Group): JobState[] {
    return this.all()
      .filter((job) => groupOf(job.status) === group)
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  count(group: Group): number {
    return this.all().filter((job) => groupOf(job.status) === group).length;
  }

  /** Cost of the jobs created since `since` (seconds since the epoch). */
  costSince(since: number): number {
    return this.all()
      .filter((job) => job.createdAt >= since)
      .reduce((sum, job) => sum + job.costUsd, 0);
  }
}

export type Action = "openChanges" | "acceptAll" | "requestChanges" | "reject" | "cancel" | "rerun" | "delete";

/** The actions a job offers in its state (the panel's buttons; the tree's menus say the same). */
export function actionsFor(status: string): Action[] {
  switch (groupOf(status)) {
    case "review":
      return ["openChanges", "acceptAll", "requestChanges", "reject"];
    case "needs_input":
    case "running":
      return ["cancel"];
    case "settled":
      return ["rerun", "delete"];
  }
}
