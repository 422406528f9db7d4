/** "New Job" and "New Job from Selection": the prompt, the agent, then logist/createJob. The
 * job's base is the buffer as shown: the client has sent the server every open document's
 * text, unsaved edits included, before the request. */
import * as vscode from "vscode";
import type { Server } from "./server";

interface AgentInfo {
  name: string;
  description?: string;
  installed?: boolean;
  version?: string | null;
}

interface RoleInfo {
  name: string;
  kind?: string;
  description?: string;
}

export interface NewJobResult {
  jobId: string;
  status: string;
}

async function pickAgent(server: Server, preferred: string): Promise<string | null | undefined> {
  const agents = (await server.request<AgentInfo[]>("logist/listAgents", {})) ?? [];
  if (agents.length === 0) return null;
  const items = agents
    .map((a) => ({
      label: a.name,
      description: a.installed === false ? "not installed" : (a.version ?? ""),
      detail: a.description,
      agent: a,
    }))
    .sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred));
  const pick = await vscode.window.showQuickPick(items, {
    title: "Logist: New Job (2/2): Agent",
    placeHolder: "The agent that does the job",
    ignoreFocusOut: true,
  });
  if (!pick) return undefined;
  if (pick.agent.installed === false) {
    const go = await vscode.window.showWarningMessage(`Logist: the agent '${pick.label}' is not installed; start the job anyway?`, "Start", "Cancel");
    if (go !== "Start") return undefined;
  }
  return pick.label;
}

async function pickRole(server: Server, preferred: string, uri: vscode.Uri | undefined): Promise<string | null | undefined> {
  const roles = (await server.request<RoleInfo[] | { roles: RoleInfo[] }>("logist/listRoles", uri ? { uri: uri.toString() } : {}, true)) ?? [];
  const list = (Array.isArray(roles) ? roles : (roles.roles ?? [])).filter((r) => !r.kind || r.kind === "worker");
  if (list.length <= 1) return null;
  const pick = await vscode.window.showQuickPick(
    list.map((r) => ({ label: r.name, description: r.name === preferred ? "default" : "", detail: r.description })).sort((a, b) => Number(b.label === preferred) - Number(a.label === preferred)),
    { title: "Logist: New Job: Role", placeHolder: "The role the agent plays", ignoreFocusOut: true },
  );
  return pick ? pick.label : undefined;
}

export async function newJob(server: Server, fromSelection: boolean): Promise<NewJobResult | undefined> {
  const editor = vscode.window.activeTextEditor;
  if (fromSelection && (!editor || editor.selection.isEmpty)) {
    void vscode.window.showInformationMessage("Logist: select the code the job is about first, or run \"Logist: New Job\".");
    return undefined;
  }
  const doc = editor && editor.document.uri.scheme === "file" ? editor.document : undefined;
  if (!vscode.workspace.workspaceFolders?.length) {
    void vscode.window.showErrorMessage("Logist: open a folder (a git repository) to start a job.");
    return undefined;
  }
  const where = doc ? vscode.workspace.asRelativePath(doc.uri) : "no file";
  const sel = fromSelection && editor ? editor.selection : undefined;
  const prompt = await vscode.window.showInputBox({
    title: "Logist: New Job (1/2): Prompt",
    prompt: sel ? `About ${where}, lines ${sel.start.line + 1}-${sel.end.line + 1}` : `About ${where}`,
    placeHolder: "What should the agent do?",
    ignoreFocusOut: true,
    validateInput: (text) => (text.trim() ? undefined : "Describe the job"),
  });
  if (prompt === undefined) return undefined;
  const config = vscode.workspace.getConfiguration("logist");
  const defaultAgent = config.get<string>("agent") ?? "";
  let agent: string | null | undefined = defaultAgent || null;
  if (config.get<boolean>("askForAgent", true)) {
    agent = await pickAgent(server, defaultAgent || "mock");
    if (agent === undefined) return undefined;
  }
  const role = await pickRole(server, config.get<string>("role") || "worker", doc?.uri);
  if (role === undefined) return undefined;
  const params: Record<string, unknown> = { prompt };
  if (doc) params.uri = doc.uri.toString();
  if (sel) params.range = { start: { line: sel.start.line, character: sel.start.character }, end: { line: sel.end.line, character: sel.end.character } };
  if (agent) params.agent = agent;
  const options = config.get<Record<string, Record<string, string>>>("agentOptions") ?? {};
  const agentOptions = agent ? options[agent] : undefined;
  if (agentOptions && Object.keys(agentOptions).length) params.agentOptions = agentOptions;
  const model = config.get<string>("model");
  if (model) params.model = model;
  if (role) params.role = role;
  const result = await server.request<NewJobResult>("logist/createJob", params);
  if (result) void vscode.window.setStatusBarMessage(`Logist: job ${result.jobId} started`, 5000);
  return result;
}
