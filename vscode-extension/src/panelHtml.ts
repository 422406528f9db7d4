/** The job panel's HTML: a strict content security policy (a nonce for the one script and
 * style, nothing else), the theme's colours through VS Code's CSS variables, and text only ever
 * set with textContent. Pure. */

export function nonce(random: () => number = Math.random): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  let out = "";
  for (let i = 0; i < 32; i++) out += chars.charAt(Math.floor(random() * chars.length));
  return out;
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Rows kept in the panel (about: whole blocks go); older ones are dropped (the full log is
 * `logist job log`). */
export const MAX_ROWS = 5000;

export function panelHtml(jobId: string, cspSource: string, n: string): string {
  const csp = [
    "default-src 'none'",
    `style-src ${cspSource} 'nonce-${n}'`,
    `script-src 'nonce-${n}'`,
    "img-src 'none'",
    "connect-src 'none'",
  ].join("; ");
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Logist job ${escapeHtml(jobId)}</title>
<style nonce="${n}">
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); background: var(--vscode-editor-background); padding: 0 12px; }
header { position: sticky; top: 0; background: var(--vscode-editor-background); padding: 8px 0; border-bottom: 1px solid var(--vscode-panel-border); }
h1 { font-size: 1.1em; margin: 0 0 4px 0; }
#status { color: var(--vscode-descriptionForeground); }
#actions button, #answer button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 10px; margin: 4px 4px 0 0; cursor: pointer; }
#actions button:hover, #answer button:hover { background: var(--vscode-button-hoverBackground); }
#actions button.secondary { color: var(--vscode-button-secondaryForeground); background: var(--vscode-button-secondaryBackground); }
#answer { margin-top: 8px; }
#answer[hidden] { display: none; }
#question { font-weight: bold; margin-bottom: 4px; white-space: pre-wrap; }
#answer textarea { width: 100%; box-sizing: border-box; min-height: 4em; color: var(--vscode-input-foreground); background: var(--vscode-input-background); border: 1px solid var(--vscode-input-border, transparent); font-family: var(--vscode-font-family); }
#log { font-family: var(--vscode-editor-font-family); font-size: var(--vscode-editor-font-size); margin-top: 8px; }
.row { white-space: pre-wrap; word-break: break-word; padding: 1px 0; line-height: 1.4; }
body, #log { overflow-anchor: none; }
.status { color: var(--vscode-textLink-foreground); font-weight: bold; }
.tool { color: var(--vscode-symbolIcon-functionForeground, var(--vscode-foreground)); }
.file { color: var(--vscode-gitDecoration-modifiedResourceForeground, var(--vscode-foreground)); }
.usage, .info { color: var(--vscode-descriptionForeground); }
.question { color: var(--vscode-notificationsWarningIcon-foreground, var(--vscode-foreground)); font-weight: bold; }
.error { color: var(--vscode-errorForeground); }
#dropped { color: var(--vscode-descriptionForeground); font-style: italic; }
</style>
</head>
<body>
<header>
<h1 id="title"></h1>
<div id="status"></div>
<div id="actions"></div>
<div id="answer" hidden>
<div id="question"></div>
<textarea id="answerText" aria-label="Your answer"></textarea>
<button id="answerSend">Send Answer</button>
</div>
</header>
<div id="dropped"></div>
<div id="log" role="log" aria-live="polite"></div>
<script nonce="${n}">
(function () {
  const vscode = acquireVsCodeApi();
  const MAX_ROWS = ${MAX_ROWS};
  const log = document.getElementById("log");
  const dropped = document.getElementById("dropped");
  let droppedCount = 0;
  const labels = { openChanges: "Open Changes", acceptAll: "Accept All", requestChanges: "Request Changes…", reject: "Reject", cancel: "Cancel", rerun: "Rerun", delete: "Delete" };
  // Rows are drawn as blocks: consecutive rows of one class (a run of messages) share one
  // element, at most BLOCK rows each. A flood is a few text nodes per frame, not thousands of
  // elements (about ten times cheaper to lay out). Drawn once per animation frame, only the
  // newest MAX_ROWS of what arrived since; the oldest blocks go when more than MAX_ROWS show.
  const BLOCK = 500;
  const counts = []; // rows per block, in the order of log's children
  let total = 0;
  let pending = [];
  let frame = 0;
  // Follow the end unless the user scrolled away from it (our own scrolls do not count).
  let follow = true;
  let ours = false;
  window.addEventListener("scroll", function () {
    if (ours) { ours = false; return; }
    follow = window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 40;
  });
  function queueRows(rows) {
    for (const row of rows) pending.push(row);
    if (pending.length > 2 * MAX_ROWS) { droppedCount += pending.length - MAX_ROWS; pending = pending.slice(pending.length - MAX_ROWS); }
    if (!frame) frame = requestAnimationFrame(draw);
  }
  function draw() {
    frame = 0;
    let rows = pending;
    pending = [];
    if (rows.length > MAX_ROWS) { droppedCount += rows.length - MAX_ROWS; rows = rows.slice(rows.length - MAX_ROWS); }
    if (rows.length === 0) return;
    const frag = document.createDocumentFragment();
    for (let i = 0; i < rows.length; ) {
      let j = i + 1;
      while (j < rows.length && j - i < BLOCK && rows[j].cls === rows[i].cls) j++;
      const div = document.createElement("div");
      div.className = "row " + rows[i].cls;
      div.dataset.seq = String(rows[j - 1].seq);
      div.textContent = rows.slice(i, j).map(function (r) { return r.text; }).join("\\n");
      frag.appendChild(div);
      counts.push(j - i);
      total += j - i;
      i = j;
    }
    log.appendChild(frag);
    while (counts.length > 1 && total - counts[0] >= MAX_ROWS) {
      const n = counts.shift();
      total -= n;
      droppedCount += n;
      log.removeChild(log.firstChild);
    }
    dropped.textContent = droppedCount ? droppedCount + " earlier lines not shown (logist job log " + document.getElementById("title").dataset.id + ")" : "";
    if (follow) { ours = true; window.scrollTo(0, document.documentElement.scrollHeight); }
  }
  function setState(s) {
    const title = document.getElementById("title");
    title.textContent = s.headline || s.id;
    title.dataset.id = s.id;
    document.getElementById("status").textContent = s.status + (s.detail ? " · " + s.detail : "") + (s.reason ? " — " + s.reason : "");
    const actions = document.getElementById("actions");
    actions.textContent = "";
    s.actions.forEach(function (a, i) {
      const b = document.createElement("button");
      b.textContent = labels[a] || a;
      b.dataset.action = a;
      if (i > 0) b.className = "secondary";
      b.addEventListener("click", function () { vscode.postMessage({ type: "action", action: a }); });
      actions.appendChild(b);
    });
    const answer = document.getElementById("answer");
    answer.hidden = s.status !== "needs_input";
    document.getElementById("question").textContent = s.question || "The agent is waiting for an answer.";
  }
  document.getElementById("answerSend").addEventListener("click", function () {
    const box = document.getElementById("answerText");
    const text = box.value;
    if (!text.trim()) { box.focus(); return; }
    vscode.postMessage({ type: "answer", text: text });
    box.value = "";
  });
  window.addEventListener("message", function (e) {
    const m = e.data;
    if (!m || typeof m !== "object") return;
    if (m.type === "rows") { if (m.dropped) droppedCount += m.dropped; queueRows(m.rows); }
    else if (m.type === "reset") { log.textContent = ""; droppedCount = 0; counts.length = 0; total = 0; pending = []; }
    else if (m.type === "state") setState(m.state);
  });
  vscode.postMessage({ type: "ready" });
})();
</script>
</body>
</html>`;
}
