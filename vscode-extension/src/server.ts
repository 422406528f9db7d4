/** Starting, restarting and talking to the Logist language server. */
import type { ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  State,
  type CloseHandlerResult,
  type ErrorHandler,
  type ErrorHandlerResult,
  type LanguageClientOptions,
  type ServerOptions,
} from "vscode-languageclient/node";
import { resolveServer, type ServerCommand } from "./resolve";
import { MAX_RESTARTS, RESTART_WINDOW_MS, RestartBudget, gaveUpMessage, restartMessage, startFailedMessage, stoppedMessage } from "./restarts";
import { errorText, missingJobId, requestErrorText } from "./errors";
import { reap, spawnServer } from "./spawn";

const INSTALL_URL = "https://github.com/logist/logist#install";
export { MAX_RESTARTS };

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

async function pythonExtensionInterpreter(): Promise<string | undefined> {
  const ext = vscode.extensions.getExtension("ms-python.python");
  if (!ext) return undefined;
  try {
    const api = (ext.isActive ? ext.exports : await ext.activate()) as {
      environments?: { getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } };
    };
    return api.environments?.getActiveEnvironmentPath(vscode.workspace.workspaceFolders?.[0]?.uri).path;
  } catch {
    return undefined;
  }
}

/** Workspace settings the server is given as initialization options and on change. */
export function settingsPayload(): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration("logist");
  return { agent: c.get("agent") || null, model: c.get("model") || null, role: c.get("role") || null };
}

/** The language client, whose own error notifications are left to the log: the extension says
 * what went wrong itself (a start that failed, each restart, giving up), in words that name the
 * way out, instead of "couldn't create connection to server". */
class QuietClient extends LanguageClient {
  override error(message: string, data?: unknown, _showNotification?: boolean | "force"): void {
    super.error(message, data, false);
  }

  /** When the server exits during initialize the library drops its start promise, then rejects
   * it ("Pending response rejected since connection got disposed"): a rejection nobody handles.
   * It is handled here; the caller sees the client not running (`doStart`). */
  override start(): Promise<void> {
    const started = super.start();
    (this as unknown as { _onStart?: Promise<void> })._onStart?.catch(() => undefined);
    return started;
  }

  /** The library stops a client whose initialize failed while it is still "starting", which
   * rejects ("can't be stopped"), unawaited: an unhandled error in the extension host. */
  override async stop(timeout?: number): Promise<void> {
    try {
      await super.stop(timeout);
    } catch (err) {
      this.outputChannel.appendLine(`[logist] stopping the client: ${errorText(err)}`);
    }
  }
}

export class Server implements vscode.Disposable {
  client: LanguageClient | undefined;
  private readonly budget = new RestartBudget(MAX_RESTARTS, RESTART_WINDOW_MS);
  private readonly onReadyEmitter = new vscode.EventEmitter<LanguageClient>();
  readonly onReady = this.onReadyEmitter.event;
  private starting: Promise<LanguageClient | undefined> | undefined;
  private disposables: vscode.Disposable[] = [];
  /** Set when the server crashed too often and was left stopped, until "Restart Server". */
  private gaveUp = false;
  /** The server processes started and not yet exited. */
  private readonly processes = new Set<ChildProcess>();
  /** The last start's failure (and its actions), until a restart. */
  private failedStart: { message: string; actions: string[]; exited: boolean } | undefined;
  private readonly onMissingJobEmitter = new vscode.EventEmitter<string>();
  /** A request named a job the server does not know (deleted meanwhile): its id. */
  readonly onMissingJob = this.onMissingJobEmitter.event;

  constructor(
    readonly output: vscode.OutputChannel,
    private readonly configure: (client: LanguageClient) => void,
    private readonly timing: (name: string, ms: number) => void,
  ) {}

  async start(): Promise<LanguageClient | undefined> {
    if (!this.starting) this.starting = this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async resolve(): Promise<ServerCommand | { error: string }> {
    const c = vscode.workspace.getConfiguration("logist.server");
    return resolveServer({
      command: c.get<string[]>("command") ?? [],
      pythonPath: c.get<string>("pythonPath") ?? "",
      pythonExtension: c.get<string>("pythonPath") ? undefined : await pythonExtensionInterpreter(),
      envPath: process.env.PATH ?? "",
      isExecutable,
    });
  }

  private async doStart(): Promise<LanguageClient | undefined> {
    const began = Date.now();
    const found = await this.resolve();
    if ("error" in found) {
      this.output.appendLine(`[logist] ${found.error}`);
      this.failedStart = { message: `Logist: ${found.error}.`, actions: ["How to Install", "Open Settings", "Restart Server"], exited: false };
      this.showFailedStart();
      return undefined;
    }
    this.failedStart = undefined;
    this.output.appendLine(`[logist] starting ${found.command} ${found.args.join(" ")} (from ${found.source})`);
    const env = { ...process.env, ...vscode.workspace.getConfiguration("logist.server").get<Record<string, string>>("env") };
    // Started here (not by the library) to guard its stdin: see spawn.ts.
    const serverOptions: ServerOptions = async () => {
      const started = await spawnServer(found.command, found.args, env, (text) => this.output.append(text));
      this.processes.add(started.child);
      started.child.once("exit", () => this.processes.delete(started.child));
      return { reader: started.reader, writer: started.writer };
    };
    let initialized = false; // this client's first start succeeded: a close after it is a crash
    const errorHandler: ErrorHandler = {
      error: (): ErrorHandlerResult => ({ action: ErrorAction.Continue }),
      // The user is told of every restart (the client library would only log it) and of the
      // last one; after that, requests say the server is stopped (`request`).
      closed: (): CloseHandlerResult => {
        // Exited before it was ever initialized (its close may come after the failed start):
        // `doStart` says so once; no restart loop.
        if (!initialized) return { action: CloseAction.DoNotRestart, handled: true };
        if (this.budget.crash(Date.now())) {
          const message = restartMessage(this.budget.count);
          this.output.appendLine(`[logist] ${message}`);
          void vscode.window.showWarningMessage(message, "Show Log").then((choice) => {
            if (choice) this.output.show();
          });
          return { action: CloseAction.Restart, message, handled: true };
        }
        this.gaveUp = true;
        const message = gaveUpMessage(this.budget.count);
        this.output.appendLine(`[logist] ${message}`);
        this.offerRestart(message);
        return { action: CloseAction.DoNotRestart, message, handled: true };
      },
    };
    const quiet = <T>(what: string, empty: T) => (err: unknown): T => {
      // A hint request failing (the server restarting, the window reloading) is not the user's error.
      this.output.appendLine(`[logist] ${what}: ${errorText(err)}`);
      return empty;
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }],
      outputChannel: this.output,
      middleware: {
        provideCodeActions: (document, range, context, token, next) =>
          Promise.resolve(next(document, range, context, token)).catch(quiet("code actions", [])),
        provideCodeLenses: (document, token, next) => Promise.resolve(next(document, token)).catch(quiet("code lenses", [])),
      },
      revealOutputChannelOn: 4 /* never */,
      initializationOptions: { settings: settingsPayload() },
      errorHandler,
      // A failed initialize is reported by `doStart` (not as the library's raw message).
      initializationFailedHandler: () => false,
    };
    const client = new QuietClient("logist", "Logist", serverOptions, clientOptions);
    this.configure(client);
    try {
      await client.start();
      // A server that exits during initialize can leave start() resolved, the client stopped.
      if (client.state !== State.Running) throw new Error("the server exited while starting");
    } catch (err) {
      const message = startFailedMessage(found.command);
      this.output.appendLine(`[logist] ${message} (${errorText(err)})`);
      this.failedStart = { message, actions: ["Show Log", "Open Settings", "Restart Server"], exited: true };
      for (const child of this.processes) reap(child);
      this.showFailedStart();
      return undefined;
    }
    initialized = true;
    this.client = client;
    this.timing("activationToInitialized", Date.now() - began);
    this.output.appendLine(`[logist] server initialized in ${Date.now() - began} ms`);
    this.disposables.push(
      client.onDidChangeState((e) => {
        if (e.newState === State.Running) this.onReadyEmitter.fire(client);
      }),
    );
    this.onReadyEmitter.fire(client);
    return client;
  }

  /** The server settings; a remote window (SSH, WSL, code-server) lists the machine settings
   * on its Remote tab only. */
  private openSettings(): void {
    const settings = vscode.env.remoteName ? "workbench.action.openRemoteSettings" : "workbench.action.openSettings";
    void vscode.commands.executeCommand(settings, { query: "logist.server" });
  }

  /** Why the last start failed, with the actions that fix it. */
  private showFailedStart(): void {
    const failed = this.failedStart;
    if (!failed) return;
    void vscode.window.showErrorMessage(failed.message, ...failed.actions).then((choice) => {
      if (choice === "How to Install") void vscode.env.openExternal(vscode.Uri.parse(INSTALL_URL));
      if (choice === "Open Settings") this.openSettings();
      if (choice === "Show Log") this.output.show();
      if (choice === "Restart Server") void vscode.commands.executeCommand("logist.restartServer");
    });
  }

  private offerRestart(message: string): void {
    void vscode.window.showErrorMessage(message, "Restart Server", "Show Log").then((choice) => {
      if (choice === "Show Log") this.output.show();
      if (choice === "Restart Server") void vscode.commands.executeCommand("logist.restartServer");
    });
  }

  async restart(): Promise<void> {
    this.budget.reset();
    this.gaveUp = false;
    this.failedStart = undefined;
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    for (const d of this.disposables) d.dispose();
    this.disposables = [];
    if (client) {
      try {
        await client.stop(5000);
      } catch (err) {
        this.output.appendLine(`[logist] stopping the server: ${errorText(err)}`);
      }
    }
    for (const child of this.processes) reap(child);
  }

  /** A request to the server; an error is shown to the user and undefined returned. */
  async request<T>(method: string, params: unknown, quiet = false): Promise<T | undefined> {
    if (this.gaveUp) {
      // Stopped after too many crashes: a request would only say "Client is not running".
      if (!quiet) this.offerRestart(stoppedMessage());
      return undefined;
    }
    if (!this.client && this.failedStart?.exited && quiet) {
      // It exited while starting: a background request does not spawn it again (a command,
      // a settings change or "Restart Server" does). A server not found is looked for again
      // (no process: the setting may have been read before the user settings were loaded).
      return undefined;
    }
    const client = this.client ?? (await this.start());
    if (!client) return undefined;
    try {
      return await client.sendRequest<T>(method, params);
    } catch (err) {
      const text = requestErrorText(err);
      this.output.appendLine(`[logist] ${method}: ${errorText(err)}`);
      const missing = missingJobId(err);
      if (missing !== undefined) this.onMissingJobEmitter.fire(missing);
      if (!quiet) void vscode.window.showErrorMessage(`Logist: ${text}`);
      return undefined;
    }
  }

  dispose(): void {
    void this.stop();
    this.onReadyEmitter.dispose();
    this.onMissingJobEmitter.dispose();
  }
}
