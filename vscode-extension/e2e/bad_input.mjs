// Bad input driven in a real VS Code (code-server) with the Logist extension, as a user meets
// it: each case must give a clear message in the editor (the notification's text is asserted
// as the UI shows it). Run by tests/test_vscode_bad_input.py, which starts code-server and
// passes E2E_URL, E2E_OUT, E2E_TIMINGS, E2E_LOGIST, E2E_REPO (a git repository) and E2E_SETTINGS
// (its workspace settings, watched by the workbench: the server setting changes there; code-server
// does not reload a user settings file changed on disk), E2E_NOGIT (a folder
// outside any git repository), E2E_SERVER (the real server), E2E_CRASHY (a server command that
// records its pid in E2E_PIDS, then runs the real server: the test kills it), E2E_BROKEN (a
// server command that fails at once with an error on stderr, as a broken install does).
import * as fs from "node:fs";
import * as path from "node:path";
import { LONG, editSettings, env, log, logistJson, runE2e, timings as timingsOf, waitFor } from "./lib.mjs";

const URL_ = env("E2E_URL");
const OUT = env("E2E_OUT");
const TIMINGS = env("E2E_TIMINGS");
const LOGIST = env("E2E_LOGIST");
const REPO = env("E2E_REPO");
const SETTINGS = env("E2E_SETTINGS");
const NOGIT = env("E2E_NOGIT");
const SERVER = env("E2E_SERVER");
const CRASHY = env("E2E_CRASHY");
const PIDS = env("E2E_PIDS");
const BROKEN = env("E2E_BROKEN");
const MISSING = "/nonexistent/logist/bin/logist-server";

const results = { stages: [], messages: {} };
let wb;

const jobList = () => logistJson(LOGIST, REPO, ["job", "list"]);
const jobShow = (id) => logistJson(LOGIST, REPO, ["job", "show", id]);
const readyCount = () => timingsOf(TIMINGS, "activationToReady").length;
const pids = () => (fs.existsSync(PIDS) ? fs.readFileSync(PIDS, "utf8").split("\n").filter(Boolean).map(Number) : []);

/** A notification holding `text` is shown: its message and buttons are recorded under `name`. */
async function expectMessage(name, text) {
  const toast = await wb.notification(text);
  const parts = await wb.notificationParts(toast);
  results.messages[name] = parts;
  log(`${name}: ${JSON.stringify(parts)}`);
  return { toast, parts };
}

async function newJobId(prompt) {
  const before = new Set(jobList().map((j) => j.id));
  await wb.newJob("Logist: New Job", prompt, "mock");
  return waitFor("the job in the store", () => jobList().find((j) => !before.has(j.id))?.id);
}

/** The server setting changed: the extension restarts the server; wait for it to be ready. */
async function useServer(command) {
  const ready = readyCount();
  await editSettings(SETTINGS, TIMINGS, { "logist.server.command": command });
  await waitFor("the restarted server to be ready", () => readyCount() > ready);
}

async function jobDeletedMeanwhile() {
  await editSettings(SETTINGS, TIMINGS, { "logist.agentOptions": { mock: { scenario: "multi_hunk", every: "10" } } });
  const id = await newJobId("Doomed job");
  await wb.waitJobStatus("Doomed job", "review");
  const ready = await wb.notification("ready for review");
  logistJson(LOGIST, REPO, ["job", "delete", id]);
  if (jobList().some((j) => j.id === id)) throw new Error("the CLI did not delete the job");
  // The notification still offers Open Changes for the job the CLI just deleted.
  await ready.locator(".monaco-button", { hasText: "Open Changes" }).first().click();
  const { parts } = await expectMessage("deletedJob", `job ${id} no longer exists`);
  if (!parts.message.startsWith(`Logist: job ${id} no longer exists`)) throw new Error(`unclear message: ${parts.message}`);
  await waitFor("the deleted job gone from the Jobs view", async () => !(await wb.jobRow("Doomed job").isVisible()));
  await wb.snap("deleted-job-message");
  await wb.clearNotifications();
}

async function answerTooLate() {
  await editSettings(SETTINGS, TIMINGS, { "logist.agentOptions": { mock: { scenario: "question", question: "Tabs or spaces?" } } });
  const id = await newJobId("Question job");
  await wb.waitJobStatus("Question job", "needs_input");
  await wb.treeAction("Question job", "Answer Job");
  await wb.quickInput().locator(".quick-input-title", { hasText: "Answer job" }).waitFor();
  // Meanwhile the CLI answers it: the job goes on to review while the input box is open.
  logistJson(LOGIST, REPO, ["job", "answer", id, "spaces, from the CLI"]);
  await waitFor("the job past its question in the store", () => jobShow(id).status !== "needs_input");
  await wb.answerInput("Answer job", "tabs, too late");
  const { parts } = await expectMessage("answerNotWaiting", "not waiting for an answer");
  if (!parts.message.includes(id)) throw new Error(`the message does not name the job: ${parts.message}`);
  await wb.waitJobStatus("Question job", "review");
  await wb.snap("answer-not-waiting-message");
  await wb.clearNotifications();
}

async function crashingServer() {
  await useServer([CRASHY]);
  const max = 4;
  for (let i = 1; i <= max + 1; i++) {
    const known = pids();
    const ready = readyCount();
    const pid = known[known.length - 1];
    if (!pid) throw new Error("the crashing server recorded no pid");
    process.kill(pid, "SIGKILL");
    if (i <= max) {
      await expectMessage(`crashRestart${i}`, `restarting it (restart ${i} of ${max})`);
      await waitFor(`restart ${i}: a new server process`, () => pids().length > known.length);
      await waitFor(`restart ${i}: the server ready`, () => readyCount() > ready);
      if (i === 1) await wb.snap("server-crashed-restarting");
    }
  }
  const { parts } = await expectMessage("crashGaveUp", "it is not restarted");
  if (!parts.buttons.includes("Restart Server")) throw new Error(`no Restart Server action: ${JSON.stringify(parts)}`);
  await wb.snap("server-crashed-not-restarted");
  await wb.clearNotifications();
  // A command run while the server is left stopped says so, and offers the restart.
  const before = pids().length;
  const stopped = wb.page.locator(".notification-toast", { hasText: "the server is stopped" }).first();
  await wb.startJob("Logist: New Job", "While the server is stopped", "mock", () => stopped.isVisible());
  const said = await expectMessage("serverStopped", "the server is stopped");
  if (!said.parts.buttons.includes("Restart Server")) throw new Error(`no Restart Server action: ${JSON.stringify(said.parts)}`);
  await wb.snap("server-stopped-command");
  await wb.closeQuickInput();
  if (pids().length !== before) throw new Error("a command restarted the server after it gave up");
  // The notification's action starts it again; the Jobs view is filled again.
  const ready = readyCount();
  await said.toast.locator(".monaco-button", { hasText: "Restart Server" }).first().click();
  await waitFor("the server started by Restart Server", () => pids().length > before && readyCount() > ready);
  await wb.jobRow("Question job").waitFor();
  await wb.clearNotifications();
  await useServer([SERVER]);
}

async function missingServer() {
  await editSettings(SETTINGS, TIMINGS, { "logist.server.command": [MISSING] });
  const { toast, parts } = await expectMessage("serverNotFound", "was not found");
  if (!parts.message.includes(MISSING) || !parts.message.includes("logist.server.command")) throw new Error(`unclear message: ${parts.message}`);
  for (const b of ["How to Install", "Open Settings"]) if (!parts.buttons.includes(b)) throw new Error(`no "${b}" action: ${JSON.stringify(parts)}`);
  await wb.snap("server-not-found");
  await toast.locator(".monaco-button", { hasText: "Open Settings" }).first().click();
  await wb.page.locator(".settings-editor").first().waitFor();
  // The setting the message names is on the page it opens (a remote window's Remote tab).
  await wb.page.locator(".settings-editor .setting-item-title", { hasText: /Server: Command/ }).first().waitFor();
  await wb.snap("server-not-found-settings");
  await wb.clearNotifications();
  await useServer([SERVER]);
}

async function brokenServer() {
  await wb.clearNotifications();
  await editSettings(SETTINGS, TIMINGS, { "logist.server.command": [BROKEN] });
  const { parts } = await expectMessage("serverBroken", "stopped while starting");
  if (!parts.message.includes(BROKEN) || !parts.buttons.includes("Show Log")) throw new Error(`unclear message: ${JSON.stringify(parts)}`);
  // The client library's own "couldn't create connection to server" is not shown on top of it.
  const toasts = await wb.page.locator(".notification-toast .notification-list-item-message").allInnerTexts();
  const others = toasts.filter((t) => !t.includes("stopped while starting"));
  if (others.length) throw new Error(`more notifications than the one message: ${JSON.stringify(toasts)}`);
  await wb.snap("server-broken-at-start");
  await wb.clearNotifications();
  await useServer([SERVER]);
}

async function notARepository() {
  await wb.open(URL_, NOGIT, TIMINGS);
  // Said at once, before the flow asks for a prompt or an agent.
  await wb.runCommand("Logist: New Job");
  const toast = wb.page.locator(".notification-toast", { hasText: /git repository/ }).first();
  await toast.waitFor({ timeout: LONG });
  const message = await wb.notificationParts(toast);
  results.messages.notARepository = message;
  log(`notARepository: ${JSON.stringify(message)}`);
  if (await wb.quickInput().isVisible()) throw new Error("the New Job flow asked for input outside a git repository");
  if (fs.existsSync(path.join(NOGIT, ".logist"))) throw new Error("a job store was made outside a git repository");
  await wb.snap("not-a-repository-message");
}

runE2e({ name: "bad input e2e", url: URL_, repo: REPO, out: OUT, timings: TIMINGS, results }, async (driven) => {
  wb = driven;
  await jobDeletedMeanwhile();
  await answerTooLate();
  await crashingServer();
  await missingServer();
  await brokenServer();
  await notARepository();
});
