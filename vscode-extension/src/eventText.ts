/** One line of text per job event, for the job panel. Pure. */
import type { JobEvent } from "./model";

export interface EventLine {
  seq: number;
  kind: string;
  /** A CSS class: status, message, tool, file, usage, question, error, info. */
  cls: string;
  text: string;
}

const MAX_TEXT = 20_000;

function str(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined || value === null) return "";
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

function clip(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}… (${text.length - MAX_TEXT} more characters)` : text;
}

export function eventLine(event: JobEvent): EventLine {
  const d = event.data ?? {};
  const line = (cls: string, text: string): EventLine => ({ seq: event.seq, kind: event.kind, cls, text: clip(text) });
  if (event.status) {
    const reason = str(d.reason);
    return line("status", `${str(d.from) || "?"} → ${event.status}${reason ? `: ${reason}` : ""}`);
  }
  switch (event.kind) {
    case "message":
      return line("message", str(d.text));
    case "tool_call":
      return line("tool", `${str(d.tool)} ${str(d.input)}`);
    case "tool_result":
      return line("tool", `${str(d.tool)} ${d.ok === false ? "failed" : "ok"}: ${str(d.output)}`);
    case "file_change":
      return line("file", `${str(d.action)} ${str(d.path)}`);
    case "usage": {
      const cost = typeof d.costUsd === "number" ? ` · $${d.costUsd.toFixed(4)}` : "";
      return line("usage", `tokens in ${str(d.inputTokens) || 0}, out ${str(d.outputTokens) || 0}${cost}`);
    }
    case "question":
      return line("question", `Question: ${str(d.text)}`);
    case "error":
      return line("error", `Error: ${str(d.message)}${d.detail ? ` (${str(d.detail)})` : ""}`);
    case "done":
      return line("info", `Done${d.success === false ? " (unsuccessful)" : ""}: ${str(d.summary)}`);
    case "harvest":
      return line("file", `step ${str(d.step)}: ${str(d.files)} files, +${str(d.insertions)} −${str(d.deletions)}`);
    case "step":
      return line("info", `step ${str(d.step)} (${str(d.role)}, ${str(d.agent)})`);
    case "verdict":
      return line("info", `verdict: ${str(d.verdict)} ${str(d.comments)}`);
    case "rate_limited":
    case "auth_failed":
    case "network_error":
    case "context_overflow":
      return line("error", `${event.kind.replace(/_/g, " ")}: ${str(d.reason)} ${str(d.excerpt)}`);
    default: {
      const rest = Object.keys(d).length ? ` ${str(d)}` : "";
      return line("info", `${event.kind}${rest}`);
    }
  }
}

/** The panel's rows of an event: a coalesced run of messages (`firstSeq`..`seq`, one text per
 * line) is one row per message, each with its own seq, so the end of a flood is shown as its
 * last lines (not clipped away) and rows already shown can be skipped one by one. */
export function eventLines(event: JobEvent): EventLine[] {
  const d = event.data ?? {};
  if (event.kind === "message" && !event.status && typeof event.firstSeq === "number" && typeof d.text === "string") {
    const texts = d.text.split("\n");
    if (texts.length === event.seq - event.firstSeq + 1) {
      const first = event.firstSeq;
      return texts.map((text, i) => ({ seq: first + i, kind: "message", cls: "message", text: clip(text) }));
    }
  }
  return [eventLine(event)];
}
