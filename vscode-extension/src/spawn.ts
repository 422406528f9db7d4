/** The server process for the language client. Its stdin is guarded: a write after the server
 * has exited (or closed its stdin) is dropped instead of failing with EPIPE. vscode-jsonrpc
 * rejects a failed request write from inside a promise executor nobody awaits, an unhandled
 * error in the extension host; the server's exit is reported by the connection closing. */
import { spawn, type ChildProcess } from "node:child_process";
import { Writable } from "node:stream";

/** A writable that forwards to `target` until it fails or `isDead()`; then drops. */
export function guardedWriter(target: Writable, isDead: () => boolean): Writable {
  let failed = false;
  target.on("error", () => (failed = true));
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      if (failed || isDead() || target.destroyed || !target.writable) {
        callback();
        return;
      }
      target.write(chunk, (err) => {
        if (err) failed = true;
        callback();
      });
    },
    final(callback) {
      if (!failed && !target.destroyed) target.end();
      callback();
    },
  });
}

export interface ServerProcess {
  child: ChildProcess;
  reader: NodeJS.ReadableStream;
  writer: Writable;
}

/** Start the server; its stderr goes to `log`. Rejects when it cannot be started at all. */
export async function spawnServer(command: string, args: string[], env: NodeJS.ProcessEnv, log: (text: string) => void): Promise<ServerProcess> {
  const child = spawn(command, args, { env, stdio: ["pipe", "pipe", "pipe"] });
  let exited = false;
  child.on("exit", () => (exited = true));
  child.stderr?.on("data", (data: Buffer) => log(data.toString("utf8")));
  await new Promise<void>((resolve, reject) => {
    child.once("spawn", () => resolve());
    child.once("error", reject);
  });
  if (!child.stdin || !child.stdout) throw new Error("the server has no stdio");
  return { child, reader: child.stdout, writer: guardedWriter(child.stdin, () => exited) };
}

/** After the client has asked it to exit: a server still running 2 s later is terminated. */
export function reap(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  }, 2000);
  timer.unref();
  child.once("exit", () => clearTimeout(timer));
}
