import assert from "node:assert/strict";
import { test } from "node:test";
import { missingJobId, requestErrorText } from "../src/errors";
import { RestartBudget, gaveUpMessage, restartMessage, stoppedMessage } from "../src/restarts";

test("a job the server does not know is named, and said to be gone", () => {
  const err = { code: -32602, message: "unknown job id: 1a2b3c" };
  assert.equal(missingJobId(err), "1a2b3c");
  assert.equal(requestErrorText(err), "job 1a2b3c no longer exists (deleted?); the Jobs view is refreshed.");
  assert.equal(missingJobId({ message: "job 1a2b is review, not waiting for an answer" }), undefined);
  assert.equal(missingJobId(new Error("something else: unknown job id: x")), undefined);
});

test("a stopped client says how to restart the server; other errors keep their first line", () => {
  assert.match(requestErrorText({ code: -32096, message: "Client is not running" }), /Logist: Restart Server/);
  assert.equal(requestErrorText(new Error("no git repository in the workspace\n  at x")), "no git repository in the workspace");
  assert.equal(requestErrorText({ message: "logist/answerJob: job 1a is review, not waiting for an answer" }), "job 1a is review, not waiting for an answer");
});

test("the restart messages count the restarts and name the way out", () => {
  const budget = new RestartBudget(2, 60_000);
  const said: string[] = [];
  for (let t = 0; t < 3; t++) said.push(budget.crash(t * 1000) ? restartMessage(budget.count, 2) : gaveUpMessage(budget.count, 60_000));
  assert.deepEqual(said.slice(0, 2), [
    "Logist: the server stopped unexpectedly; restarting it (restart 1 of 2).",
    "Logist: the server stopped unexpectedly; restarting it (restart 2 of 2).",
  ]);
  assert.match(said[2] ?? "", /stopped 3 times in 1 minutes; it is not restarted.*Logist: Restart Server/);
  assert.match(stoppedMessage(), /Logist: Restart Server/);
});
