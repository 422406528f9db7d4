// Drives a real VS Code (code-server) with the Logist extension installed, as a user would,
// through the scenario of issue 12 point 9. Run by tests/test_vscode_e2e.py, which starts
// code-server and passes: E2E_URL, E2E_REPO (a git repository with app.py), E2E_OUT (the
// screenshots' folder), E2E_SETTINGS (the user settings file), E2E_TIMINGS (the extension's
// timing file), E2E_LOGIST (the logist CLI, to check what the editor shows against the store).
import { LONG, editSettings, env, log, logistJson, runE2e, timings as timingsOf, waitFor } from "./lib.mjs";

const URL_ = env("E2E_URL");
const REPO = env("E2E_REPO");
const OUT = env("E2E_OUT");
const SETTINGS = env("E2E_SETTINGS");
const TIMINGS = env("E2E_TIMINGS");
const LOGIST = env("E2E_LOGIST");

const results = { stages: [], newJobToTreeMs: [], activationToInitializedMs: [] };
let page;
let wb;

const jobShow = (id) => logistJson(LOGIST, REPO, ["job", "show", id]);
const jobList = () => logistJson(LOGIST, REPO, ["job", "list"]);
const timings = (name) => timingsOf(TIMINGS, name);
const setAgentOptions = (options) => editSettings(SETTINGS, TIMINGS, { "logist.agentOptions": { mock: options } });

/** A new job through the palette; returns its id and records the time from the last input to the tree. */
async function newJob(command, prompt) {
  const before = new Set(jobList().map((j) => j.id));
  const began = await wb.newJob(command, prompt, "mock");
  results.newJobToTreeMs.push(Date.now() - began);
  const id = await waitFor("the job in the store", () => jobList().find((j) => !before.has(j.id))?.id);
  log(`job ${id}: "${prompt}" in the tree after ${Date.now() - began} ms`);
  return id;
}

runE2e({ name: "e2e", url: URL_, repo: REPO, out: OUT, timings: TIMINGS, results }, async (driven) => {
  wb = driven;
  page = driven.page;

  // 1. An unsaved edit, a selection over it, New Job from Selection with the mock agent.
  await setAgentOptions({ scenario: "multi_hunk", every: "10" });
  await wb.openFile("app.py", "def step_1():");
  await page.keyboard.press("Control+Home");
  await wb.cursorAt(1, 1);
  // The new line first, then its text: an Enter typed after a word could accept a suggestion.
  await page.keyboard.press("Enter");
  await wb.cursorAt(2, 1);
  await page.keyboard.press("ArrowUp");
  await wb.cursorAt(1, 1);
  await page.keyboard.type("# unsaved: says hello");
  await waitFor("the unsaved edit in the editor", async () => (await wb.editorText()).includes("# unsaved: says hello"));
  await wb.gotoLine(1);
  await page.keyboard.press("Home");
  await wb.cursorAt(1, 1);
  for (let i = 1; i <= 3; i++) {
    await page.keyboard.press("Shift+ArrowDown");
    await wb.cursorAt(i + 1, 1, " \\(\\d+ selected\\)");
  }
  await wb.snap("selection-with-unsaved-edit");
  const job1 = await newJob("Logist: New Job from Selection", "Say hello politely");
  await wb.snap("job-in-tree");
  const rec1 = jobShow(job1);
  if (!rec1.target || !String(rec1.target.text).includes("# unsaved: says hello")) throw new Error(`the job's target is not the buffer as shown: ${JSON.stringify(rec1.target)}`);

  // 2. The job reaches review: the tree shows it and a notification offers Open Changes.
  await wb.waitJobStatus("Say hello politely", "review");
  await wb.notification("ready for review");
  await wb.snap("job-in-review");

  // 3. Open Changes: VS Code's diff editor, base and proposal.
  await wb.treeAction("Say hello politely", "Open Changes");
  await page.locator(".monaco-diff-editor").first().waitFor({ timeout: LONG });
  await waitFor("the proposal in the diff editor", async () => (await page.locator(".monaco-diff-editor").first().innerText()).replace(/\u00a0/g, " ").includes("logist-mock: hunk 2"));
  await wb.snap("open-changes-diff");

  // 4. Accept one hunk in the real file through the light bulb (quick fix), check, undo.
  await page.locator(".editor-group-container").first().locator('.tab[aria-label^="app.py"]').first().click();
  await page.locator(".editor-group-container").first().locator('.tab.active[aria-label^="app.py"]').first().waitFor();
  await wb.focusEditor();
  const beforeAccept = await wb.editorText();
  await wb.gotoLine(11);
  const accept = await wb.quickFix("Accept change from Logist job");
  await wb.snap("light-bulb-quick-fix");
  await accept();
  await waitFor("the accepted hunk in the editor", async () => (await wb.editorText()).includes("logist-mock: hunk 2: Say hello politely"));
  const afterAccept = await wb.editorText();
  await waitFor("the buffer to be dirty (window title)", async () => (await page.title()).includes("\u25cf"), 10_000).catch(async (err) => {
    const tabs = await page.locator(".tab").evaluateAll((els) => els.map((e) => `${e.getAttribute("aria-label")} [${e.className}]`));
    throw new Error(`${err.message}; title ${await page.title()}; tabs ${JSON.stringify(tabs)}`);
  });
  await wb.snap("hunk-accepted-dirty-buffer");
  if (afterAccept.includes("logist-mock: hunk 3")) throw new Error("accepting one hunk applied another one");
  if (!afterAccept.includes("# unsaved: says hello")) throw new Error("the unsaved edit was lost by the accept");
  await wb.focusEditor();
  await page.keyboard.press("Control+Z");
  await waitFor("the undo of the accept", async () => !(await wb.editorText()).includes("logist-mock: hunk 2"));
  if ((await wb.editorText()) !== beforeAccept) throw new Error("undo did not restore the buffer");
  await wb.snap("accept-undone");

  // 5. Request changes on a hunk: the job gets a second step with the comment, back to review.
  await wb.gotoLine(21);
  const ask = await wb.quickFix("Request changes to this hunk");
  await ask();
  await wb.answerInput("Request Changes", "Please keep the original wording");
  await waitFor("a second step of the job", () => (jobShow(job1).steps ?? []).length >= 2);
  await wb.waitJobStatus("Say hello politely", "review");
  await waitFor("the job back in review", () => jobShow(job1).status === "review");
  const steps = jobShow(job1).steps;
  const brief = JSON.stringify(steps[steps.length - 1]);
  results.secondStep = { count: steps.length, hasComment: brief.includes("keep the original wording") };
  await wb.snap("request-changes-back-in-review");

  // 6. Cancel a hanging job from the tree.
  await setAgentOptions({ scenario: "hang" });
  await wb.closeQuickInput();
  const job2 = await newJob("Logist: New Job", "Wait forever");
  await wb.waitJobStatus("Wait forever", "running");
  await wb.snap("hang-job-running");
  await wb.treeAction("Wait forever", "Cancel Job");
  await wb.waitJobStatus("Wait forever", "cancelled");
  if (jobShow(job2).status !== "cancelled") throw new Error("the store does not say cancelled");
  await wb.snap("hang-job-cancelled");

  // 7. Answer a question in the job's panel.
  await setAgentOptions({ scenario: "question", question: "Which greeting should I use?" });
  const job3 = await newJob("Logist: New Job", "Ask me something");
  await wb.waitJobStatus("Ask me something", "needs_input");
  // The notification's "Answer" opens the job's panel.
  const asks = await wb.notification("asks a question");
  await asks.locator(".monaco-button", { hasText: "Answer" }).first().click();
  await page.locator('.tab[aria-label^="Logist: Ask me something"]').first().waitFor();
  const webview = page.frameLocator("iframe.webview.ready").last().frameLocator("iframe#active-frame");
  await webview.locator("#question", { hasText: "Which greeting should I use?" }).waitFor({ timeout: LONG });
  await webview.locator("#answerText").fill("Use 'Good morning'");
  await wb.snap("question-in-panel");
  await webview.locator("#answerSend").click();
  await wb.waitJobStatus("Ask me something", "review");
  await webview.locator(".row", { hasText: "got the answer" }).first().waitFor({ timeout: LONG });
  if (jobShow(job3).status !== "review") throw new Error("the answered job is not in review");
  await wb.snap("answered-job-in-review");

  // 8. Activation to the server's initialized, over several window reloads.
  for (let i = 0; i < 3; i++) {
    const n = timings("activationToInitialized").length;
    await wb.runCommand("Developer: Reload Window");
    await waitFor("the extension after a reload", () => timings("activationToInitialized").length > n);
    await page.locator(".monaco-workbench").waitFor();
  }
  await wb.showLogistView();
  await wb.jobRow("Ask me something").waitFor({ timeout: LONG });
  await wb.snap("after-reloads");
  results.activationToInitializedMs = timings("activationToInitialized").map((t) => t.ms);
  results.extensionNewJobToTreeMs = timings("newJobToTree").map((t) => t.ms);
});
