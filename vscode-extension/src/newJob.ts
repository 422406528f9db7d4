/** "New Job" and "New Job from Selection": the prompt, the agent, the model and the role
 * (newJobPicks), then logist/createJob. The job's base is the buffer as shown: the client has
 * sent the server every open document's text, unsaved edits included, before the request. */
import * as path from "node:path";
import * as vscode from "vscode";
import { firstInRepository } from "./gitRepo";
import { newJobFlow, type AgentInfo, type FlowUi, type RoleInfo } from "./newJobPicks";
import type { Server } from "./server";

export interface NewJobResult {
  jobId: string;
  status: string;
}

/** The flow's UI in VS Code: input boxes and quick picks that stay open on focus loss. */
const ui: FlowUi = {
  input: (o) =>
    Promise.resolve(vscode.window.showInputBox({ title: o.title, prompt: o.prompt, placeHolder: o.placeHolder, ignoreFocusOut: true, validateInput: o.validate })),
  pick: (items, o) => Promise.resolve(vscode.window.showQuickPick(items, { title: o.title, placeHolder: o.placeHolder, ignoreFocusOut: true, matchOnDetail: true })),
  confirm: async (message) => (await vscode.window.showWarningMessage(message, { modal: true }, "Start Anyway")) === "Start Anyway",
};

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
  // The server refuses a job outside a git repository: say so before asking anything.
  const folders = doc ? [path.dirname(doc.uri.fsPath)] : vscode.workspace.workspaceFolders.map((f) => f.uri.fsPath);
  if (!(await firstInRepository(folders))) {
    const what = doc ? `${vscode.workspace.asRelativePath(doc.uri)} is not` : "no workspace folder is";
    void vscode.window.showErrorMessage(
      `Logist: ${what} in a git repository: a job runs on a copy of a repository. Run "git init" first, or open a folder inside a repository.`,
    );
    return undefined;
  }
  const where = doc ? vscode.workspace.asRelativePath(doc.uri) : "no file";
  const sel = fromSelection && editor ? editor.selection : undefined;
  const config = vscode.workspace.getConfiguration("logist");
  const answers = await newJobFlow(
    ui,
    {
      listAgents: () => server.request<AgentInfo[]>("logist/listAgents", {}),
      listRoles: () => server.request<RoleInfo[] | { roles: RoleInfo[] }>("logist/listRoles", doc ? { uri: doc.uri.toString() } : {}, true),
    },
    {
      agent: config.get<string>("agent") ?? "",
      model: config.get<string>("model") ?? "",
      role: config.get<string>("role") ?? "",
      askForAgent: config.get<boolean>("askForAgent", true),
      askForModel: config.get<boolean>("askForModel", true),
    },
    sel ? `About ${where}, lines ${sel.start.line + 1}-${sel.end.line + 1}` : `About ${where}`,
  );
  if (!answers) return undefined;
  const params: Record<string, unknown> = { prompt: answers.prompt };
  if (doc) params.uri = doc.uri.toString();
  if (sel) params.range = { start: { line: sel.start.line, character: sel.start.character }, end: { line: sel.end.line, character: sel.end.character } };
  if (answers.agent) params.agent = answers.agent;
  const options = config.get<Record<string, Record<string, string>>>("agentOptions") ?? {};
  const agentOptions = answers.agent ? options[answers.agent] : undefined;
  if (agentOptions && Object.keys(agentOptions).length) params.agentOptions = agentOptions;
  if (answers.model) params.model = answers.model;
  if (answers.role) params.role = answers.role;
  const result = await server.request<NewJobResult>("logist/createJob", params);
  if (result) void vscode.window.setStatusBarMessage(`Logist: job ${result.jobId} started`, 5000);
  return result;
}
