import assert from "node:assert/strict";
import { test } from "node:test";
import { Coalescer } from "../src/coalesce";
import { errorText } from "../src/errors";
import { eventLine, eventLines } from "../src/eventText";
import { nextHistoryPage } from "../src/history";
import { escapeHtml, nonce, panelHtml } from "../src/panelHtml";
import { RestartBudget } from "../src/restarts";
import { resolveServer, which } from "../src/resolve";

test("the server command: setting, then the interpreter's environment, then PATH", () => {
  const exe = new Set(["/venv/bin/logist-server", "/usr/bin/python3", "/opt/bin/logist-server", "/custom/srv"]);
  const isExecutable = (f: string) => exe.has(f);
  const base = { command: [] as string[], pythonPath: "", pythonExtension: undefined as string | undefined, envPath: "/usr/bin:/opt/bin", isExecutable };
  assert.deepEqual(resolveServer({ ...base, command: ["/custom/srv", "--x"] }), { command: "/custom/srv", args: ["--x"], source: "logist.server.command" });
  assert.match(JSON.stringify(resolveServer({ ...base, command: ["/nope"] })), /'\/nope' \(setting logist.server.command\) was not found/);
  assert.deepEqual(resolveServer({ ...base, pythonExtension: "/venv/bin/python" }), { command: "/venv/bin/logist-server", args: [], source: "the Python extension's interpreter" });
  const viaModule = resolveServer({ ...base, pythonPath: "python3" });
  assert.ok("command" in viaModule && viaModule.command === "/usr/bin/python3" && viaModule.args[0] === "-c");
  assert.deepEqual(resolveServer(base), { command: "/opt/bin/logist-server", args: [], source: "PATH" });
  const missing = resolveServer({ ...base, envPath: "/usr/bin" });
  assert.ok("error" in missing && /not found/.test(missing.error));
  assert.equal(which("python3", ":/usr/bin", isExecutable), "/usr/bin/python3");
});

test("restarts are bounded within the window and counted again after it", () => {
  const b = new RestartBudget(2, 1000);
  assert.equal(b.crash(0), true);
  assert.equal(b.crash(10), true);
  assert.equal(b.crash(20), false);
  assert.equal(b.crash(2000), true, "old crashes leave the window");
  b.reset();
  assert.equal(b.count, 0);
});

test("a flood is coalesced into few bounded flushes", () => {
  let timer: (() => void) | undefined;
  const flushes: { n: number; dropped: number }[] = [];
  const c = new Coalescer<number>((items, dropped) => flushes.push({ n: items.length, dropped }), 100, 5000, (fn) => {
    timer = fn;
    return 1;
  }, () => undefined);
  for (let i = 0; i < 200_000; i++) c.push(i);
  assert.equal(flushes.length, 0);
  timer?.();
  assert.deepEqual(flushes, [{ n: 5000, dropped: 195_000 }]);
  c.fire();
  assert.equal(flushes.length, 1, "nothing to flush: no empty update");
  c.drop(7);
  c.push(1);
  timer?.();
  assert.deepEqual(flushes[1], { n: 1, dropped: 7 }, "items skipped at the source are counted as dropped");
});

test("events become one line of text each; a huge text is clipped", () => {
  assert.equal(eventLine({ jobId: "j", seq: 1, kind: "status", status: "review", data: { from: "running", to: "review", reason: "the agent finished" } }).text, "running → review: the agent finished");
  assert.equal(eventLine({ jobId: "j", seq: 2, kind: "question", data: { text: "Which?" } }).cls, "question");
  assert.equal(eventLine({ jobId: "j", seq: 3, kind: "error", data: { message: "boom" } }).text, "Error: boom");
  assert.equal(eventLine({ jobId: "j", seq: 4, kind: "usage", data: { inputTokens: 3, outputTokens: 4, costUsd: 0.5 } }).text, "tokens in 3, out 4 · $0.5000");
  assert.ok(eventLine({ jobId: "j", seq: 5, kind: "message", data: { text: "x".repeat(100_000) } }).text.length < 21_000);
  assert.equal(eventLine({ jobId: "j", seq: 6, kind: "weird_kind", data: {} }).text, "weird_kind");
  assert.equal(eventLine({ jobId: "j", seq: 7, kind: "message", data: null as unknown as Record<string, unknown> }).text, "");
});

test("the panel's page allows only its own nonce'd script and style", () => {
  const n = nonce();
  assert.match(n, /^[A-Za-z0-9]{32}$/);
  assert.notEqual(n, nonce());
  const html = panelHtml('<img src=x onerror="alert(1)">', "vscode-resource:", n);
  assert.match(html, new RegExp(`default-src 'none'; style-src vscode-resource: 'nonce-${n}'; script-src 'nonce-${n}'`));
  assert.ok(!html.includes("<img src=x"), "the job id is escaped");
  assert.equal((html.match(/<script/g) ?? []).length, 1);
  assert.ok(!/innerHTML/.test(html), "text is only set with textContent");
  assert.equal(escapeHtml(`<&>"'`), "&#60;&#38;&#62;&#34;&#39;");
});

test("errors become one line", () => {
  assert.equal(errorText(new Error("unknown job id: x\n  at foo")), "unknown job id: x");
  assert.equal(errorText({ message: "m", code: -32602 }), "m");
  assert.equal(errorText("s"), "s");
});

test("a coalesced run of messages is one row per message, its last line kept", () => {
  const texts = Array.from({ length: 2000 }, (_, i) => `flood line ${198_000 + i}`);
  const run = { jobId: "j", seq: 200_001, firstSeq: 198_002, kind: "message", data: { text: texts.join("\n"), count: 2000 } };
  const rows = eventLines(run);
  assert.equal(rows.length, 2000);
  assert.deepEqual(rows.at(-1), { seq: 200_001, kind: "message", cls: "message", text: "flood line 199999" });
  assert.equal(rows[0]?.seq, 198_002);
  // As one row the run's end would be clipped away: the reason for the split.
  assert.ok(!eventLine(run).text.includes("flood line 199999"));
  // A run whose texts hold newlines themselves cannot be split by message: one row, clipped.
  const odd = eventLines({ ...run, data: { text: "a\nb\nc", count: 2 }, seq: 3, firstSeq: 2 });
  assert.equal(odd.length, 1);
  assert.equal(odd[0]?.seq, 3);
  assert.deepEqual(eventLines({ jobId: "j", seq: 9, kind: "message", data: { text: "one\ntwo" } }).map((r) => r.text), ["one\ntwo"]);
});

test("the panel's script compiles (its text survives the template literal)", () => {
  const html = panelHtml("j", "vscode-resource:", nonce());
  const script = /<script nonce="[^"]+">([\s\S]*)<\/script>/.exec(html)?.[1] ?? "";
  assert.ok(script.includes("queueRows"));
  assert.doesNotThrow(() => new Function(script));
});

test("a panel opened late reads a long history's head and its newest rows, the middle skipped", () => {
  // 200,010 events, pages of 2,000: after the first page, jump to the newest 5,000.
  assert.deepEqual(nextHistoryPage(0, 2000, 200_010, 5000, false), { after: 195_010, skipped: 193_010 });
  assert.deepEqual(nextHistoryPage(195_010, 197_010, 200_010, 5000, true), { after: 197_010, skipped: 0 });
  assert.deepEqual(nextHistoryPage(199_010, null, 200_010, 5000, true), { after: null, skipped: 0 });
  // A short history is read whole; a page that does not advance ends the reading.
  assert.deepEqual(nextHistoryPage(0, 2000, 6000, 5000, false), { after: 2000, skipped: 0 });
  assert.deepEqual(nextHistoryPage(10, 10, 6000, 5000, false), { after: null, skipped: 0 });
  assert.deepEqual(nextHistoryPage(0, 2000, undefined, 5000, false), { after: 2000, skipped: 0 });
});
