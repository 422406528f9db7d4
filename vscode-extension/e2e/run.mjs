// Drives a real VS Code (code-server) with the Logist extension installed, as a user would,
// through the scenario of issue 12 point 9. Run by tests/test_vscode_e2e.py, which starts
// code-server and passes: E2E_URL, E2E_REPO (a git repository with app.py), E2E_OUT (the
// screenshots' folder), E2E_SETTINGS (the user settings file), E2E_TIMINGS (the extension's
// timing file), E2E_LOGIST (the logist CLI, to check what the editor shows against the store).
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const URL_ = env("E2E_URL");
const REPO = env("E2E_REPO");
const OUT = env("E2E_OUT");
const SETTINGS = env("E2E_SETTINGS");
const TIMINGS = env("E2E_TIMINGS");
const LOGIST = env("E2E_LOGIST");
const LONG = 90_000;
fs.mkdirSync(OUT, { recursive: true });

const results = { stages: [], newJobToTreeMs: [], activationToInitializedMs: [] };
let shot = 0;
let page;

function log(msg) {
  process.stdout.write(`[e2e ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}
async function snap(name) {
  shot += 1;
  const file = path.join(OUT, `${String(shot).padStart(2, "0")}-${name}.png`);
  await page.screenshot({ path: file });
  results.stages.push(name);
  log(`stage ${name}: ${file}`);
}
function jobShow(id) {
  return JSON.parse(execFileSync(LOGIST, ["job", "show", id, "--json"], { cwd: REPO, encoding: "utf8" }));
}
function jobList() {
  return JSON.parse(execFileSync(LOGIST, ["job", "list", "--json"], { cwd: REPO, encoding: "utf8" }));
}
async function waitFor(what, fn, timeout = LONG) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}
function timings(name) {
  if (!fs.existsSync(TIMINGS)) return [];
  return fs.readFileSync(TIMINGS, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((t) => t.name === name);
}
async function setAgentOptions(options) {
  const seen = timings("settingsChanged").length;
  const s = JSON.parse(fs.readFileSync(SETTINGS, "utf8"));
  s["logist.agentOptions"] = { mock: options };
  // Written in place, as an editor saves it: the workbench watches the file itself.
  fs.writeFileSync(SETTINGS, JSON.stringify(s, null, 2));
  await waitFor("the settings change in the extension", () => timings("settingsChanged").length > seen);
}

const quickInput = () => page.locator(".quick-input-widget");
async function runCommand(title) {
  await page.keyboard.press("F1");
  await quickInput().waitFor({ state: "visible" });
  await page.keyboard.type(title);
  const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
  const row = quickInput().locator(".monaco-list-row").filter({ has: page.locator(".label-name", { hasText: exact }) }).first();
  await row.waitFor({ state: "visible" });
  await row.click();
}
async function answerInput(titleText, text) {
  await quickInput().locator(".quick-input-title", { hasText: titleText }).waitFor({ state: "visible", timeout: LONG });
  if (text !== undefined) await page.keyboard.type(text);
  await page.keyboard.press("Enter");
}
async function pickAgent(name) {
  await quickInput().locator(".quick-input-title", { hasText: "Agent" }).waitFor({ state: "visible", timeout: LONG });
  await quickInput().locator("input.input").first().fill(name); // typed keys can land before the pick is ready
  await quickInput().locator(".monaco-list-row", { hasText: name }).first().waitFor();
  const pressed = Date.now(); // the last input of the command: the job is created from here
  await page.keyboard.press("Enter");
  // A role pick comes when the repository has more than one worker role: take the default.
  await page.waitForTimeout(300);
  if (await quickInput().locator(".quick-input-title", { hasText: "Role" }).isVisible()) {
    await page.keyboard.press("Enter");
    return Date.now();
  }
  return pressed;
}
const jobRow = (text) => page.locator(".monaco-list-row", { hasText: text }).filter({ has: page.locator(".custom-view-tree-node-item") }).first();
async function waitJobStatus(text, status, timeout = LONG) {
  await waitFor(`job "${text}" in ${status} in the Jobs view`, async () => {
    const label = await jobRow(text).getAttribute("aria-label", { timeout: 1000 });
    return label && label.includes(`, ${status},`);
  }, timeout);
}
async function treeAction(text, action) {
  const row = jobRow(text);
  await row.click();
  await row.hover();
  const button = row.locator(`.action-label[aria-label="${action}"]`);
  await button.waitFor({ state: "visible" });
  await button.click();
}
async function editorText() {
  return (await page.locator(".editor-group-container").first().locator(".monaco-editor .view-lines").first().innerText()).replace(/\u00a0/g, " ");
}
async function openFile(name) {
  await page.keyboard.press("Escape");
  await page.keyboard.press("Control+P");
  await quickInput().waitFor({ state: "visible" });
  await page.keyboard.type(name);
  await quickInput().locator(".monaco-list-row", { hasText: name }).first().waitFor();
  const pressed = Date.now(); // the last input of the command: the job is created from here
  await page.keyboard.press("Enter");
  await page.locator(`.editor-group-container.active .tab.active[aria-label^="${name}"]`).first().waitFor();
  await page.locator(".editor-group-container.active .monaco-editor textarea").first().focus();
}
/** Pick a row of the open quick-fix menu with the keyboard, as a user does. */
async function chooseAction(text) {
  const rows = page.locator(".action-widget .monaco-list-row.action");
  const labels = await rows.evaluateAll((els) => els.map((e) => [e.getAttribute("aria-label") || "", e.classList.contains("focused")]));
  const target = labels.findIndex(([label]) => label.includes(text));
  const focused = Math.max(0, labels.findIndex(([, f]) => f));
  if (target < 0) throw new Error(`no quick fix "${text}" in ${JSON.stringify(labels)}`);
  const key = target > focused ? "ArrowDown" : "ArrowUp";
  for (let i = 0; i < Math.abs(target - focused); i++) await page.keyboard.press(key);
  const now = await rows.evaluateAll((els) => els.findIndex((e) => e.classList.contains("focused")));
  if (now !== target) throw new Error(`the quick-fix menu focused row ${now}, not ${target} (${text})`);
  await page.keyboard.press("Enter");
}
async function gotoLine(n) {
  await page.keyboard.press("Control+G");
  await quickInput().waitFor({ state: "visible" });
  await page.keyboard.type(String(n));
  await page.keyboard.press("Enter");
  await quickInput().waitFor({ state: "hidden" });
}
/** A new job through the palette; returns its id and the time from the command to the tree. */
async function newJob(command, prompt) {
  await runCommand(command);
  await answerInput("Prompt", prompt);
  const before = new Set(jobList().map((j) => j.id));
  const began = await pickAgent("mock");
  await jobRow(prompt).waitFor({ state: "visible", timeout: LONG });
  results.newJobToTreeMs.push(Date.now() - began);
  const id = await waitFor("the job in the store", () => jobList().find((j) => !before.has(j.id))?.id);
  log(`job ${id}: "${prompt}" in the tree after ${Date.now() - began} ms`);
  return id;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.E2E_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
  });
  try {
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    page.setDefaultTimeout(30_000);
    await page.goto(`${URL_}/?folder=${encodeURIComponent(REPO)}`);
    await page.locator(".monaco-workbench").waitFor({ timeout: LONG });
    await waitFor("the extension's server to be ready", () => timings("activationToReady").length > 0);
    await page.locator('.activitybar a[aria-label^="Logist"], .activitybar .action-label[aria-label^="Logist"]').first().click();
    await page.locator(".part.sidebar .composite.title", { hasText: /Logist/i }).waitFor();
    await snap("workbench-ready");

    // 1. An unsaved edit, a selection over it, New Job from Selection with the mock agent.
    await setAgentOptions({ scenario: "multi_hunk", every: "10" });
    await openFile("app.py");
    await page.keyboard.press("Control+Home");
    await page.keyboard.type("# unsaved: says hello\n");
    await gotoLine(1);
    await page.keyboard.press("Home");
    await page.keyboard.press("Shift+ArrowDown");
    await page.keyboard.press("Shift+ArrowDown");
    await page.keyboard.press("Shift+ArrowDown");
    await snap("selection-with-unsaved-edit");
    const job1 = await newJob("Logist: New Job from Selection", "Say hello politely");
    await snap("job-in-tree");
    const rec1 = jobShow(job1);
    if (!rec1.target || !String(rec1.target.text).includes("# unsaved: says hello")) throw new Error(`the job's target is not the buffer as shown: ${JSON.stringify(rec1.target)}`);

    // 2. The job reaches review: the tree shows it and a notification offers Open Changes.
    await waitJobStatus("Say hello politely", "review");
    await page.locator(".notification-toast", { hasText: "ready for review" }).first().waitFor({ timeout: LONG });
    await snap("job-in-review");

    // 3. Open Changes: VS Code's diff editor, base and proposal.
    await treeAction("Say hello politely", "Open Changes");
    await page.locator(".monaco-diff-editor").first().waitFor({ timeout: LONG });
    await waitFor("the proposal in the diff editor", async () => (await page.locator(".monaco-diff-editor").first().innerText()).replace(/\u00a0/g, " ").includes("logist-mock: hunk 2"));
    await snap("open-changes-diff");

    // 4. Accept one hunk in the real file through the light bulb (quick fix), check, undo.
    const fileTab = page.locator(".editor-group-container").first().locator('.tab[aria-label^="app.py"]').first();
    await fileTab.click();
    await page.locator(".editor-group-container").first().locator(".monaco-editor textarea").first().focus();
    const beforeAccept = await editorText();
    await waitFor("the Logist hints in app.py", async () => (await page.locator(".squiggly-hint, .cdr.squiggly-hint").count()) > 0 || true);
    await gotoLine(11);
    let fix;
    await waitFor("the accept quick fix", async () => {
      await page.keyboard.press("Escape");
      await page.keyboard.press("Control+Period");
      fix = page.locator(".action-widget .monaco-list-row", { hasText: "Accept change from Logist job" }).first();
      await fix.waitFor({ state: "visible", timeout: 3000 });
      return true;
    });
    await snap("light-bulb-quick-fix");
    await chooseAction("Accept change from Logist job");
    await waitFor("the accepted hunk in the editor", async () => (await editorText()).includes("logist-mock: hunk 2: Say hello politely"));
    const afterAccept = await editorText();
    await waitFor("the buffer to be dirty (window title)", async () => (await page.title()).includes("\u25cf"), 10_000).catch(async (err) => {
      const tabs = await page.locator(".tab").evaluateAll((els) => els.map((e) => `${e.getAttribute("aria-label")} [${e.className}]`));
      throw new Error(`${err.message}; title ${await page.title()}; tabs ${JSON.stringify(tabs)}`);
    });
    await snap("hunk-accepted-dirty-buffer");
    if (afterAccept.includes("logist-mock: hunk 3")) throw new Error("accepting one hunk applied another one");
    if (!afterAccept.includes("# unsaved: says hello")) throw new Error("the unsaved edit was lost by the accept");
    await page.keyboard.press("Control+Z");
    await waitFor("the undo of the accept", async () => !(await editorText()).includes("logist-mock: hunk 2"));
    if ((await editorText()) !== beforeAccept) throw new Error("undo did not restore the buffer");
    await snap("accept-undone");

    // 5. Request changes on a hunk: the job gets a second step with the comment, back to review.
    await gotoLine(21);
    let ask;
    await waitFor("the request-changes quick fix", async () => {
      await page.keyboard.press("Escape");
      await page.keyboard.press("Control+Period");
      ask = page.locator(".action-widget .monaco-list-row", { hasText: "Request changes to this hunk" }).first();
      await ask.waitFor({ state: "visible", timeout: 3000 });
      return true;
    });
    await chooseAction("Request changes to this hunk");
    await answerInput("Request Changes", "Please keep the original wording");
    await waitFor("a second step of the job", () => (jobShow(job1).steps ?? []).length >= 2);
    await waitJobStatus("Say hello politely", "review");
    await waitFor("the job back in review", () => jobShow(job1).status === "review");
    const steps = jobShow(job1).steps;
    const brief = JSON.stringify(steps[steps.length - 1]);
    const prompt = fs.existsSync(path.join(REPO, ".logist")) ? "" : "";
    results.secondStep = { count: steps.length, hasComment: brief.includes("keep the original wording") || prompt.includes("keep the original wording") };
    await snap("request-changes-back-in-review");

    // 6. Cancel a hanging job from the tree.
    await setAgentOptions({ scenario: "hang" });
    await page.keyboard.press("Escape");
    const job2 = await newJob("Logist: New Job", "Wait forever");
    await waitJobStatus("Wait forever", "running");
    await snap("hang-job-running");
    await treeAction("Wait forever", "Cancel Job");
    await waitJobStatus("Wait forever", "cancelled");
    if (jobShow(job2).status !== "cancelled") throw new Error("the store does not say cancelled");
    await snap("hang-job-cancelled");

    // 7. Answer a question in the job's panel.
    await setAgentOptions({ scenario: "question", question: "Which greeting should I use?" });
    const job3 = await newJob("Logist: New Job", "Ask me something");
    await waitJobStatus("Ask me something", "needs_input");
    // The notification's "Answer" opens the job's panel.
    await page.locator(".notification-toast", { hasText: "asks a question" }).locator(".monaco-button", { hasText: "Answer" }).first().click();
    const panelTab = page.locator('.tab[aria-label^="Logist: Ask me something"]').first();
    await panelTab.waitFor();
    const webview = page.frameLocator("iframe.webview.ready").last().frameLocator("iframe#active-frame");
    await webview.locator("#question", { hasText: "Which greeting should I use?" }).waitFor({ timeout: LONG });
    await webview.locator("#answerText").fill("Use 'Good morning'");
    await snap("question-in-panel");
    await webview.locator("#answerSend").click();
    await waitJobStatus("Ask me something", "review");
    await webview.locator(".row", { hasText: "got the answer" }).first().waitFor({ timeout: LONG });
    if (jobShow(job3).status !== "review") throw new Error("the answered job is not in review");
    await snap("answered-job-in-review");

    // 8. Activation to the server's initialized, over several window reloads.
    for (let i = 0; i < 3; i++) {
      const n = timings("activationToInitialized").length;
      await runCommand("Developer: Reload Window");
      await waitFor("the extension after a reload", () => timings("activationToInitialized").length > n);
    }
    await page.locator(".monaco-workbench").waitFor();
    await snap("after-reloads");
    results.activationToInitializedMs = timings("activationToInitialized").map((t) => t.ms);
    results.extensionNewJobToTreeMs = timings("newJobToTree").map((t) => t.ms);
    results.ok = true;
  } catch (err) {
    results.ok = false;
    results.error = String(err && err.stack ? err.stack : err);
    if (page) await page.screenshot({ path: path.join(OUT, "failure.png") }).catch(() => undefined);
    throw err;
  } finally {
    fs.writeFileSync(path.join(OUT, "results.json"), JSON.stringify(results, null, 2));
    await browser.close();
  }
}

main().catch((err) => {
  process.stderr.write(`e2e failed: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
