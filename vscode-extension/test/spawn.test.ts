import assert from "node:assert/strict";
import { once } from "node:events";
import { test } from "node:test";
import { spawnServer } from "../src/spawn";

const write = (w: NodeJS.WritableStream, data: string): Promise<Error | null | undefined> =>
  new Promise((resolve) => w.write(data, (err) => resolve(err)));

test("writes to a server that has exited are dropped, not EPIPE", async () => {
  const logged: string[] = [];
  const started = await spawnServer("sh", ["-c", "echo broken install >&2; exit 1"], process.env, (t) => logged.push(t));
  await once(started.child, "exit");
  for (let i = 0; i < 3; i++) assert.ok(!(await write(started.writer, "Content-Length: 2\r\n\r\n{}")));
  await new Promise((r) => setTimeout(r, 50));
  assert.match(logged.join(""), /broken install/);
});

test("a live server gets what is written", async () => {
  const started = await spawnServer("sh", ["-c", "read line; echo \"got $line\""], process.env, () => undefined);
  const out: string[] = [];
  started.reader.on("data", (d: Buffer) => out.push(d.toString()));
  await write(started.writer, "hello\n");
  await once(started.child, "exit");
  assert.equal(out.join("").trim(), "got hello");
});

test("a program that cannot be started rejects", async () => {
  await assert.rejects(spawnServer("/nonexistent/logist-server", [], process.env, () => undefined), /ENOENT/);
});
