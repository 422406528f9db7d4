/** The "New Job" flow without VS Code: the quick-pick items built from the server's answers
 * (`logist/listAgents`, `logist/listRoles`) and the sequence prompt → agent → model → role →
 * `logist/createJob`, where cancelling any step (Escape) starts nothing. Pure: the UI and the
 * server are passed in, so the flow is unit-tested. */

export interface AgentInfo {
  name: string;
  description?: string;
  program?: string | null;
  installed?: boolean;
  version?: string | null;
  /** Where its credentials come from; null: none configured; "unknown": cannot tell. */
  credentials?: string | null;
  installHint?: string;
  loginHint?: string;
  /** The agent's known models, when the server lists them. */
  models?: string[];
}

export interface RoleInfo {
  name: string;
  kind?: string;
  description?: string;
  agent?: string | null;
  model?: string | null;
}

export interface PickItem<T> {
  label: string;
  description?: string;
  detail?: string;
  value: T;
}

/** An agent row: `warning` is what the user is told before starting a job with it. */
export interface AgentChoice {
  name: string;
  warning: string | null;
}

function credentialsText(agent: AgentInfo): { text: string; missing: boolean } {
  if (agent.credentials === null) return { text: `no credentials found${agent.loginHint ? ` (${agent.loginHint})` : ""}`, missing: true };
  if (agent.credentials === undefined || agent.credentials === "unknown") return { text: "credentials not checked", missing: false };
  return { text: `credentials: ${agent.credentials}`, missing: false };
}

/** The agents, the preferred one first, then the installed ones, each with its availability:
 * version and credentials, or why it cannot run (not installed: how to install it). */
export function agentItems(agents: AgentInfo[], preferred: string): PickItem<AgentChoice>[] {
  const rank = (a: AgentInfo): number => (a.name === preferred ? 0 : a.installed === false ? 2 : 1);
  return [...agents]
    .sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
    .map((a) => {
      const creds = credentialsText(a);
      let description: string;
      let warning: string | null = null;
      if (a.installed === false) {
        description = "$(warning) not installed";
        warning = `the agent '${a.name}' is not installed${a.installHint ? `: ${a.installHint}` : ""}`;
      } else {
        description = [a.version ? `$(check) ${a.version}` : "$(check) installed", creds.missing ? "$(key) no credentials" : ""].filter(Boolean).join(" · ");
        if (creds.missing) warning = `the agent '${a.name}' has ${creds.text}`;
      }
      const detail = a.installed === false ? [a.description, a.installHint ? `Install: ${a.installHint}` : ""] : [a.description, creds.text];
      return { label: a.name, description: a.name === preferred && !description.includes("not installed") ? `${description} · default` : description, detail: detail.filter(Boolean).join(" — "), value: { name: a.name, warning } };
    });
}

/** What the model pick returns: no model (the agent's or role's own), a name, or ask for one. */
export type ModelChoice = { kind: "default" } | { kind: "model"; model: string } | { kind: "other" };

/** The model pick: the configured default first (when set), "default" (skip: the agent's own
 * model, or the role's), the agent's known models, then "Other..." for a free name. */
export function modelItems(agent: AgentInfo | undefined, configured: string, roleModel?: string | null): PickItem<ModelChoice>[] {
  const items: PickItem<ModelChoice>[] = [];
  const seen = new Set<string>();
  const add = (model: string, description: string): void => {
    if (!model || seen.has(model)) return;
    seen.add(model);
    items.push({ label: model, description, value: { kind: "model", model } });
  };
  add(configured, "configured default (logist.model)");
  items.push({ label: "default", description: roleModel ? `the role's model (${roleModel})` : "the agent's own model", value: { kind: "default" } });
  for (const m of agent?.models ?? []) add(m, `known to ${agent?.name ?? "the agent"}`);
  items.push({ label: "Other...", description: "type a model name", value: { kind: "other" } });
  return items;
}

/** The worker roles (the preferred one first); no pick when there is one or none. */
export function roleItems(roles: RoleInfo[] | { roles?: RoleInfo[] } | null | undefined, preferred: string): PickItem<string>[] | null {
  const list = (Array.isArray(roles) ? roles : (roles?.roles ?? [])).filter((r) => !r.kind || r.kind === "worker");
  if (list.length <= 1) return null;
  return [...list]
    .sort((a, b) => Number(b.name === preferred) - Number(a.name === preferred) || a.name.localeCompare(b.name))
    .map((r) => ({
      label: r.name,
      description: [r.name === preferred ? "default" : "", r.agent ? `agent ${r.agent}` : "", r.model ? `model ${r.model}` : ""].filter(Boolean).join(" · "),
      detail: r.description,
      value: r.name,
    }));
}

/** The UI the flow needs; each returns undefined when the user cancels (Escape). */
export interface FlowUi {
  input(options: { title: string; prompt: string; placeHolder: string; validate: (text: string) => string | undefined }): Promise<string | undefined>;
  pick<T>(items: PickItem<T>[], options: { title: string; placeHolder: string }): Promise<PickItem<T> | undefined>;
  /** A warning with a "Start Anyway" button: true when the user chose it. */
  confirm(message: string): Promise<boolean>;
}

export interface FlowServer {
  listAgents(): Promise<AgentInfo[] | undefined>;
  listRoles(): Promise<RoleInfo[] | { roles?: RoleInfo[] } | undefined>;
}

export interface FlowSettings {
  agent: string;
  model: string;
  role: string;
  askForAgent: boolean;
  askForModel: boolean;
}

export interface FlowAnswers {
  prompt: string;
  agent?: string;
  model?: string;
  role?: string;
}

const STEPS = 4;

/** Prompt, agent, model, role: the answers, or undefined when any step was cancelled. */
export async function newJobFlow(ui: FlowUi, server: FlowServer, settings: FlowSettings, where: string): Promise<FlowAnswers | undefined> {
  const prompt = await ui.input({
    title: `Logist: New Job (1/${STEPS}): Prompt`,
    prompt: where,
    placeHolder: "What should the agent do?",
    validate: (text) => (text.trim() ? undefined : "Describe the job"),
  });
  if (prompt === undefined) return undefined;
  const answers: FlowAnswers = { prompt };
  let agent: AgentInfo | undefined;
  if (settings.askForAgent) {
    const agents = (await server.listAgents()) ?? [];
    if (agents.length) {
      const pick = await ui.pick(agentItems(agents, settings.agent || "mock"), { title: `Logist: New Job (2/${STEPS}): Agent`, placeHolder: "The agent that does the job" });
      if (!pick) return undefined;
      if (pick.value.warning && !(await ui.confirm(`Logist: ${pick.value.warning}. Start the job anyway?`))) return undefined;
      agent = agents.find((a) => a.name === pick.value.name);
      answers.agent = pick.value.name;
    }
  } else if (settings.agent) {
    answers.agent = settings.agent;
  }
  const roles = await server.listRoles();
  const preferredRole = settings.role || "worker";
  const roleList = Array.isArray(roles) ? roles : (roles?.roles ?? []);
  const roleModel = roleList.find((r) => r.name === preferredRole)?.model;
  if (settings.askForModel) {
    const pick = await ui.pick(modelItems(agent, settings.model, roleModel), { title: `Logist: New Job (3/${STEPS}): Model`, placeHolder: "The model the agent uses (\"default\" to skip)" });
    if (!pick) return undefined;
    if (pick.value.kind === "model") answers.model = pick.value.model;
    if (pick.value.kind === "other") {
      const typed = await ui.input({
        title: `Logist: New Job (3/${STEPS}): Model`,
        prompt: `A model name for ${answers.agent ?? "the agent"}`,
        placeHolder: "e.g. a model name the agent accepts",
        validate: (text) => (text.trim() && !/\s/.test(text.trim()) ? undefined : "One model name, no spaces"),
      });
      if (typed === undefined) return undefined;
      answers.model = typed.trim();
    }
  } else if (settings.model) {
    answers.model = settings.model;
  }
  const items = roleItems(roles, preferredRole);
  if (items) {
    const pick = await ui.pick(items, { title: `Logist: New Job (4/${STEPS}): Role`, placeHolder: "The role the agent plays" });
    if (!pick) return undefined;
    answers.role = pick.value;
  }
  return answers;
}
