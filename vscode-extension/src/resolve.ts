/** Which command starts the Logist server. Pure: the file-system probe is passed in. */
import * as path from "node:path";

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where the choice came from, for the log and error messages. */
  source: string;
}

export interface ResolveInput {
  /** `logist.server.command` */
  command: readonly string[];
  /** `logist.server.pythonPath` */
  pythonPath: string;
  /** The Python extension's interpreter, when it is installed and has one. */
  pythonExtension: string | undefined;
  /** The PATH of the extension host. */
  envPath: string;
  /** Is this an executable file? */
  isExecutable: (file: string) => boolean;
}

const SERVE = "import sys; from logist_server.cli.main import serve_main; sys.exit(serve_main())";

/** A bare name is looked up on PATH; a path is taken as it is. */
export function which(name: string, envPath: string, isExecutable: (file: string) => boolean): string | undefined {
  if (name.includes("/") || name.includes(path.sep)) return isExecutable(name) ? name : undefined;
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** The server command, or an error message naming what was tried. */
export function resolveServer(input: ResolveInput): ServerCommand | { error: string } {
  const [first, ...rest] = input.command.filter((part) => part.length > 0);
  if (first !== undefined) {
    const found = which(first, input.envPath, input.isExecutable);
    if (!found) return { error: `the server command '${first}' (setting logist.server.command) was not found` };
    return { command: found, args: rest, source: "logist.server.command" };
  }
  const python = input.pythonPath || input.pythonExtension;
  if (python) {
    const source = input.pythonPath ? "logist.server.pythonPath" : "the Python extension's interpreter";
    // The interpreter's own environment first: its logist-server script, else the module.
    const sibling = path.join(path.dirname(python), "logist-server");
    if (python.includes("/") && input.isExecutable(sibling)) return { command: sibling, args: [], source };
    const found = which(python, input.envPath, input.isExecutable);
    if (found && input.pythonPath) return { command: found, args: ["-c", SERVE], source };
  }
  const onPath = which("logist-server", input.envPath, input.isExecutable);
  if (onPath) return { command: onPath, args: [], source: "PATH" };
  const tried = [python ? `the interpreter ${python}` : "", "logist-server on PATH"].filter(Boolean).join(" and ");
  return { error: `the Logist server was not found (tried ${tried})` };
}
