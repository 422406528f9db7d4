// Helpers shared by the end-to-end scripts (run.mjs: the main scenario; bad_input.mjs: the bad
// inputs). Every step waits for the state a user would see before acting on it: the quick
// input focused before its text is set, a command palette entry retried until the command is
// registered, the status bar's cursor position after "Go to Line", the quick-fix row focused
// before Enter. No fixed sleep decides correctness; `waitFor` polls a condition and its
// timeout only guards a hang.
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { chromium } from "playwright-core";

export const LONG = 90_000;

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

export function log(msg) {
  process.stdout.write(`[e2e ${new Date().toISOString().slice(11, 23)}] ${msg}\n`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Poll `fn` until it returns a truthy value (its errors are retried); `timeout` guards hangs. */
export async function waitFor(what, fn, timeout = LONG) {
  const end = Date.now() + timeout;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(200);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
}

/** The extension's timing lines (LOGIST_VSCODE_TIMINGS) named `name`. */
export function timings(file, name) {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((t) => t.name === name);
}

/** The logist CLI, run in `cwd`, its JSON output parsed. */
export function logistJson(logist, cwd, args) {
  return JSON.parse(execFileSync(logist, [...args, "--json"], { cwd, encoding: "utf8" }));
}

/** A settings file changed as an editor saves it (in place: the workbench watches the file),
 * then waited for in the extension (its `settingsChanged` timing). */
export async function editSettings(file, timingFile, patch) {
  const seen = timings(timingFile, "settingsChanged").length;
  const s = JSON.parse(fs.readFileSync(file, "utf8"));
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) delete s[k];
    else s[k] = v;
  }
  fs.writeFileSync(file, JSON.stringify(s, null, 2));
  await waitFor(`the settings change (${Object.keys(patch).join(", ")}) in the extension`, () => timings(timingFile, "settingsChanged").length > seen);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.E2E_CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage"],
  });
}

/** Runs an end-to-end script: chromium, one page of code-server opened on `repo` (the
 * workbench ready, its screenshot taken), then `body(wb)`. `results` (with `ok`, and `error`
 * on a failure, when a screenshot `failure.png` is taken too) is written to `out`/results.json
 * whatever happens; a failure exits 1 with `name` and the stack. */
export function runE2e({ name, url, repo, out, timings, results }, body) {
  const run = async () => {
    const browser = await launch();
    let page;
    try {
      page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      page.setDefaultTimeout(30_000);
      const wb = new Workbench(page, out, results);
      await wb.open(url, repo, timings);
      await wb.snap("workbench-ready");
      await body(wb);
      results.ok = true;
    } catch (err) {
      results.ok = false;
      results.error = String(err && err.stack ? err.stack : err);
      if (page) await page.screenshot({ path: path.join(out, "failure.png") }).catch(() => undefined);
      throw err;
    } finally {
      fs.writeFileSync(path.join(out, "results.json"), JSON.stringify(results, null, 2));
      await browser.close();
    }
  };
  run().catch((err) => {
    process.stderr.write(`${name} failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
  });
}

/** A driven workbench: one page of code-server and the actions a user takes in it. */
export class Workbench {
  constructor(page, out, results) {
    this.page = page;
    this.out = out;
    this.results = results;
    this.shot = 0;
    fs.mkdirSync(out, { recursive: true });
  }

  /** Open `folder` in the workbench and wait for the extension's server (`readyCount` more
   * `activationToReady` timings than before) and the Logist view. */
  async open(url, folder, timingFile) {
    const before = timings(timingFile, "activationToReady").length;
    await this.page.goto(`${url}/?folder=${encodeURIComponent(folder)}`);
    await this.page.locator(".monaco-workbench").waitFor({ timeout: LONG });
    await waitFor("the extension's server to be ready", () => timings(timingFile, "activationToReady").length > before);
    await this.showLogistView();
  }

  async showLogistView() {
    const title = this.page.locator(".part.sidebar .composite.title", { hasText: /Logist/i });
    if (await title.isVisible()) return;
    await this.page.locator('.activitybar a[aria-label^="Logist"], .activitybar .action-label[aria-label^="Logist"]').first().click();
    await title.waitFor();
  }

  async snap(name) {
    this.shot += 1;
    const file = path.join(this.out, `${String(this.shot).padStart(2, "0")}-${name}.png`);
    await this.page.screenshot({ path: file });
    this.results.stages.push(name);
    log(`stage ${name}: ${file}`);
  }

  quickInput() {
    return this.page.locator(".quick-input-widget");
  }

  quickInputBox() {
    return this.quickInput().locator("input.input").first();
  }

  /** The quick input open and its text box focused (`key` opens it), so typed text lands in it. */
  async openQuickInput(key) {
    const box = this.quickInputBox();
    await waitFor(`the quick input (${key}) to take the keyboard`, async () => {
      if (!(await this.quickInput().isVisible())) await this.page.keyboard.press(key);
      await this.quickInput().waitFor({ state: "visible", timeout: 3000 });
      return box.evaluate((e) => document.activeElement === e);
    });
  }

  async closeQuickInput() {
    if (await this.quickInput().isVisible()) {
      await this.page.keyboard.press("Escape");
      await this.quickInput().waitFor({ state: "hidden" });
    }
  }

  /** Run a command palette entry by its exact title. A command contributed by an extension that
   * is still starting is not listed yet: the palette is filled again until it is. */
  async runCommand(title, timeout = LONG) {
    const exact = new RegExp(`^${title.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`);
    const row = this.quickInput()
      .locator(".monaco-list-row")
      .filter({ has: this.page.locator(".label-name", { hasText: exact }) })
      .first();
    await waitFor(`the command "${title}" in the palette`, async () => {
      await this.openQuickInput("F1");
      await this.quickInputBox().fill("");
      await this.quickInputBox().fill(`>${title}`);
      try {
        await row.waitFor({ state: "visible", timeout: 5000 });
        return true;
      } catch (err) {
        await this.closeQuickInput();
        throw err;
      }
    }, timeout);
    await row.click();
  }

  /** Answer an input box whose title holds `titleText`: the text set in its box, then Enter. */
  async answerInput(titleText, text) {
    await this.quickInput().locator(".quick-input-title", { hasText: titleText }).waitFor({ state: "visible", timeout: LONG });
    const box = this.quickInputBox();
    await box.focus();
    if (text !== undefined) {
      await box.fill(text);
      await waitFor("the typed text in the input box", async () => (await box.inputValue()) === text, 10_000);
    }
    await this.page.keyboard.press("Enter");
  }

  /** Pick the row labelled `label` in a quick pick titled `titleText`: filtered to it, focused,
   * then Enter. Returns when Enter was pressed. */
  async pick(titleText, label) {
    await this.quickInput().locator(".quick-input-title", { hasText: titleText }).waitFor({ state: "visible", timeout: LONG });
    const box = this.quickInputBox();
    await box.focus();
    await box.fill(label);
    await this.quickInput().locator(".monaco-list-row.focused", { hasText: label }).first().waitFor({ timeout: LONG });
    const pressed = Date.now();
    await this.page.keyboard.press("Enter");
    return pressed;
  }

  /** A row of the Jobs view whose label holds `text`. */
  jobRow(text) {
    return this.page.locator(".monaco-list-row", { hasText: text }).filter({ has: this.page.locator(".custom-view-tree-node-item") }).first();
  }

  async waitJobStatus(text, status, timeout = LONG) {
    await waitFor(`job "${text}" in ${status} in the Jobs view`, async () => {
      const label = await this.jobRow(text).getAttribute("aria-label", { timeout: 1000 });
      return label && label.includes(`, ${status},`);
    }, timeout);
  }

  /** Click an inline action of a job's row (shown while the row is hovered; a click on the
   * row itself would open the job's panel). */
  async treeAction(text, action) {
    const row = this.jobRow(text);
    await row.hover();
    const button = row.locator(`.action-label[aria-label="${action}"]`);
    await button.waitFor({ state: "visible" });
    await button.click();
  }

  /** A new job through the palette: the prompt, the agent, and the default of any further pick
   * (a role or model) until the job shows in the Jobs view. Returns the time of the last input. */
  async newJob(command, prompt, agent) {
    return this.startJob(command, prompt, agent, () => this.jobRow(prompt).isVisible());
  }

  /** The New Job flow until `done()` holds: the agent picked when its pick shows, any further
   * pick (role, model) given its default. Returns the time of the last input. */
  async startJob(command, prompt, agent, done) {
    await this.runCommand(command);
    await this.answerInput("Prompt", prompt);
    let last = Date.now();
    const agentPick = this.quickInput().locator(".quick-input-title", { hasText: /Logist: New Job.*Agent/ });
    const further = this.quickInput().locator(".quick-input-title", { hasText: /Logist: New Job.*(Role|Model)/ });
    let picked = false;
    await waitFor(`the end of the New Job flow for "${prompt}"`, async () => {
      if (await done()) return true;
      if (!picked && (await agentPick.isVisible())) {
        last = await this.pick("Agent", agent);
        picked = true;
      } else if (await further.isVisible()) {
        const title = await further.innerText();
        await this.page.keyboard.press("Enter"); // the default
        last = Date.now();
        await further.filter({ hasText: title }).waitFor({ state: "hidden", timeout: 10_000 });
      }
      return false;
    });
    return last;
  }

  /** A notification toast holding `text` (string or RegExp), waited for. */
  async notification(text, timeout = LONG) {
    const toast = this.page.locator(".notification-toast", { hasText: text }).first();
    await toast.waitFor({ state: "visible", timeout });
    return toast;
  }

  /** The message of a visible toast and its buttons' labels. */
  async notificationParts(toast) {
    const message = (await toast.locator(".notification-list-item-message").first().innerText()).trim();
    const buttons = await toast.locator(".notification-list-item-buttons-container .monaco-button").allInnerTexts();
    return { message, buttons: buttons.map((b) => b.trim()) };
  }

  async clearNotifications() {
    await this.runCommand("Notifications: Clear All Notifications");
    await waitFor("no notification toast", async () => (await this.page.locator(".notification-toast").count()) === 0, 10_000);
  }

  /** The text the first editor group shows. */
  async editorText() {
    return (await this.page.locator(".editor-group-container").first().locator(".monaco-editor .view-lines").first().innerText()).replace(/\u00a0/g, " ");
  }

  async focusEditor() {
    const area = this.page.locator(".editor-group-container.active .monaco-editor textarea").first();
    await area.focus();
    await waitFor("the editor to have the keyboard", () => area.evaluate((e) => document.activeElement === e), 10_000);
  }

  /** Wait for the status bar to put the cursor at `line`:`col` (`extra`: a regex tail). */
  async cursorAt(line, col, extra = "") {
    await this.page.locator(".statusbar-item", { hasText: new RegExp(`Ln ${line}, Col ${col}(?!\\d)${extra}`) }).first().waitFor({ timeout: LONG });
  }

  /** Quick Open a file; returns when its editor shows `expect` and has the keyboard. */
  async openFile(name, expect) {
    await this.closeQuickInput();
    await this.openQuickInput("Control+P");
    await this.quickInputBox().fill(name);
    await this.quickInput().locator(".monaco-list-row.focused", { hasText: name }).first().waitFor();
    await this.page.keyboard.press("Enter");
    await this.page.locator(`.editor-group-container.active .tab.active[aria-label^="${name}"]`).first().waitFor();
    await waitFor(`the text of ${name} in the editor`, async () => (await this.editorText()).includes(expect));
    await this.focusEditor();
  }

  /** The cursor on line `n` of the focused editor (the status bar says so), the editor focused. */
  async gotoLine(n) {
    await this.openQuickInput("Control+G");
    await this.quickInputBox().fill(`:${n}`);
    await this.quickInput().locator(".monaco-list-row", { hasText: new RegExp(`\\b${n}\\b`) }).first().waitFor({ timeout: 10_000 });
    await this.page.keyboard.press("Enter");
    await this.quickInput().waitFor({ state: "hidden" });
    await this.page.locator(".statusbar-item", { hasText: `Ln ${n}, Col` }).first().waitFor({ timeout: LONG });
    await this.focusEditor();
  }

  /** Open the quick-fix menu on the cursor's line until it offers `text` (the server's code
   * actions come after its hints), then pick that row with the keyboard as a user does. */
  async quickFix(text) {
    const rows = this.page.locator(".action-widget .monaco-list-row.action");
    const wanted = rows.filter({ hasText: text }).first();
    await waitFor(`the quick fix "${text}"`, async () => {
      if (await this.page.locator(".action-widget").isVisible()) {
        await this.page.keyboard.press("Escape");
        await this.page.locator(".action-widget").waitFor({ state: "hidden", timeout: 5000 });
      }
      await this.focusEditor();
      await this.page.keyboard.press("Control+Period");
      await wanted.waitFor({ state: "visible", timeout: 3000 });
      return true;
    });
    return async () => {
      const labels = await rows.evaluateAll((els) => els.map((e) => e.getAttribute("aria-label") || ""));
      const target = labels.findIndex((label) => label.includes(text));
      if (target < 0) throw new Error(`no quick fix "${text}" in ${JSON.stringify(labels)}`);
      const focused = () => rows.evaluateAll((els) => els.findIndex((e) => e.classList.contains("focused")));
      for (let now = await focused(); now !== target; ) {
        await this.page.keyboard.press(now < target ? "ArrowDown" : "ArrowUp");
        const was = now;
        now = await waitFor("the quick-fix focus to move", async () => {
          const i = await focused();
          return i !== was ? { i } : undefined;
        }, 10_000).then((r) => r.i);
      }
      await this.page.keyboard.press("Enter");
      await this.page.locator(".action-widget").waitFor({ state: "hidden" });
    };
  }
}
