import assert from "node:assert/strict";
import { test } from "node:test";
import { agentItems, modelItems, newJobFlow, roleItems, type AgentInfo, type FlowSettings, type FlowUi, type PickItem, type RoleInfo } from "../src/newJobPicks";

const CODEX: AgentInfo = { name: "codex", description: "OpenAI Codex", installed: false, version: null, credentials: null, installHint: "npm install -g @openai/codex" };
const GEMINI: AgentInfo = { name: "gemini", description: "Gemini", installed: true, version: "0.61.0", credentials: "GEMINI_API_KEY", models: ["gemini-2.5-pro", "gemini-2.5-flash"] };
const AGENTS: AgentInfo[] = [
  CODEX,
  { name: "mock", description: "scripted", installed: true, version: "0.1.0", credentials: "unknown" },
  { name: "claude-code", description: "Claude", installed: true, version: "2.1.3", credentials: null, loginHint: "run `claude` and /login" },
  GEMINI,
];
const WORKER: RoleInfo = { name: "worker", kind: "worker", description: "does the job", model: "m-worker" };
const REVIEWER: RoleInfo = { name: "reviewer", kind: "supervisor", description: "reviews" };
const ROLES: RoleInfo[] = [WORKER, REVIEWER, { name: "fixer", kind: "worker", description: "fixes", agent: "codex" }];

test("agent items: the preferred first, installed before missing, each with its availability", () => {
  const items = agentItems(AGENTS, "mock");
  assert.deepEqual(items.map((i) => i.label), ["mock", "claude-code", "gemini", "codex"]);
  const get = (name: string): PickItem<{ name: string; warning: string | null }> => {
    const item = items.find((i) => i.label === name);
    assert.ok(item, name);
    return item;
  };
  const by = { mock: get("mock"), gemini: get("gemini"), codex: get("codex"), claude: get("claude-code") };
  assert.match(by.mock.description ?? "", /0\.1\.0.*default/);
  assert.equal(by.mock.value.warning, null);
  assert.match(by.gemini.detail ?? "", /credentials: GEMINI_API_KEY/);
  assert.equal(by.gemini.value.warning, null);
  // Shown, but explained: not installed (how to install), no credentials (how to log in).
  assert.match(by.codex.description ?? "", /not installed/);
  assert.match(by.codex.detail ?? "", /Install: npm install -g @openai\/codex/);
  assert.match(by.codex.value.warning ?? "", /not installed: npm install/);
  assert.match(by.claude.description ?? "", /no credentials/);
  assert.match(by.claude.value.warning ?? "", /no credentials found \(run `claude` and \/login\)/);
  assert.deepEqual(agentItems([], "mock"), []);
});

test("model items: the configured default, 'default' to skip, the agent's known models, Other...", () => {
  assert.deepEqual(
    modelItems(GEMINI, "gemini-2.5-flash", null).map((i) => [i.label, i.value]),
    [
      ["gemini-2.5-flash", { kind: "model", model: "gemini-2.5-flash" }],
      ["default", { kind: "default" }],
      ["gemini-2.5-pro", { kind: "model", model: "gemini-2.5-pro" }],
      ["Other...", { kind: "other" }],
    ],
    "the configured model is listed once",
  );
  const none = modelItems(undefined, "", "m-worker");
  assert.deepEqual(none.map((i) => i.label), ["default", "Other..."]);
  assert.match(none[0]?.description ?? "", /role's model \(m-worker\)/);
});

test("role items: worker roles only, the preferred first; no pick for one role", () => {
  const items = roleItems(ROLES, "worker");
  assert.deepEqual(items?.map((i) => i.label), ["worker", "fixer"]);
  assert.match(items?.[1]?.description ?? "", /agent codex/);
  assert.equal(roleItems([WORKER, REVIEWER], "worker"), null);
  assert.equal(roleItems({ roles: ROLES }, "fixer")?.[0]?.label, "fixer");
  assert.equal(roleItems(undefined, "worker"), null);
});

/** A scripted UI: each step answers from the script (undefined: Escape), recording the titles. */
function scripted(answers: Record<string, string | undefined>, confirm = true): { ui: FlowUi; titles: string[] } {
  const titles: string[] = [];
  const step = (title: string): string | undefined => {
    titles.push(title);
    const key = Object.keys(answers).sort((a, b) => b.length - a.length).find((k) => title.includes(k));
    assert.ok(key !== undefined, `unexpected step ${title}`);
    return answers[key];
  };
  const ui: FlowUi = {
    input: (o) => {
      const a = step(o.title + (titles.some((t) => t.includes("Model")) ? " typed" : ""));
      if (a !== undefined) assert.equal(o.validate(a), undefined, `a valid answer: ${a}`);
      return Promise.resolve(a);
    },
    pick: <T>(items: PickItem<T>[], o: { title: string }) => {
      const a = step(o.title);
      return Promise.resolve(a === undefined ? undefined : items.find((i) => i.label === a));
    },
    confirm: (message) => {
      titles.push(`confirm: ${message}`);
      return Promise.resolve(confirm);
    },
  };
  return { ui, titles };
}
const server = { listAgents: () => Promise.resolve(AGENTS), listRoles: () => Promise.resolve(ROLES) };
const settings: FlowSettings = { agent: "", model: "", role: "", askForAgent: true, askForModel: true };

test("the flow: prompt, agent, model, role", async () => {
  const { ui, titles } = scripted({ Prompt: "Fix it", Agent: "gemini", Model: "gemini-2.5-pro", Role: "fixer" });
  assert.deepEqual(await newJobFlow(ui, server, settings, "About app.py"), { prompt: "Fix it", agent: "gemini", model: "gemini-2.5-pro", role: "fixer" });
  assert.deepEqual(titles.map((t) => t.replace(/^Logist: New Job \(\d\/4\): /, "")), ["Prompt", "Agent", "Model", "Role"]);
  const other = scripted({ Prompt: "Fix it", Agent: "mock", "Model typed": " my-model ", Model: "Other...", Role: "worker" });
  assert.deepEqual(await newJobFlow(other.ui, server, settings, ""), { prompt: "Fix it", agent: "mock", model: "my-model", role: "worker" });
  const skip = scripted({ Prompt: "Fix it", Agent: "mock", Model: "default", Role: "worker" });
  assert.deepEqual(await newJobFlow(skip.ui, server, settings, ""), { prompt: "Fix it", agent: "mock", role: "worker" }, "'default' sends no model");
});

test("Escape at any step cancels: no answers, so no job", async () => {
  const full = { Prompt: "Fix it", Agent: "gemini", Model: "Other...", "Model typed": "x", Role: "worker" } as Record<string, string | undefined>;
  for (const step of Object.keys(full)) {
    const { ui, titles } = scripted({ ...full, [step]: undefined });
    assert.equal(await newJobFlow(ui, server, settings, ""), undefined, `Escape at ${step}`);
    assert.ok(titles.at(-1)?.includes(step), `the flow stopped at ${step}: ${titles.join(", ")}`);
  }
});

test("an unavailable agent is explained before the job and declining cancels", async () => {
  const declined = scripted({ Prompt: "Fix it", Agent: "codex" }, false);
  assert.equal(await newJobFlow(declined.ui, server, settings, ""), undefined);
  assert.match(declined.titles.at(-1) ?? "", /confirm: Logist: the agent 'codex' is not installed: npm install -g @openai\/codex/);
  const anyway = scripted({ Prompt: "Fix it", Agent: "codex", Model: "default", Role: "worker" }, true);
  assert.equal((await newJobFlow(anyway.ui, server, settings, ""))?.agent, "codex");
});

test("settings turn the agent and model picks off; one role means no role pick", async () => {
  const { ui, titles } = scripted({ Prompt: "Fix it" });
  const oneRole = { listAgents: () => Promise.resolve(AGENTS), listRoles: () => Promise.resolve([WORKER]) };
  const answers = await newJobFlow(ui, oneRole, { ...settings, askForAgent: false, askForModel: false, agent: "mock", model: "m1" }, "");
  assert.deepEqual(answers, { prompt: "Fix it", agent: "mock", model: "m1" });
  assert.equal(titles.length, 1);
  const noAgents = scripted({ Prompt: "Fix it", Model: "default" });
  const empty = { listAgents: () => Promise.resolve(undefined), listRoles: () => Promise.resolve(undefined) };
  assert.deepEqual(await newJobFlow(noAgents.ui, empty, settings, ""), { prompt: "Fix it" });
});
