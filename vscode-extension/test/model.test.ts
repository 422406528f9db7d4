import assert from "node:assert/strict";
import { test } from "node:test";
import { JobModel, actionsFor, contextValue, describe, formatCost, formatElapsed, groupOf } from "../src/model";

const summary = (id: string, status: string, createdAt = 100) => ({ id, status, createdAt, agent: "mock", file: "a.txt", headline: `job ${id}` });

test("statuses fall in the four groups of the view", () => {
  assert.equal(groupOf("running"), "running");
  assert.equal(groupOf("provisioning"), "running");
  assert.equal(groupOf("stuck"), "running");
  assert.equal(groupOf("needs_input"), "needs_input");
  assert.equal(groupOf("review"), "review");
  for (const s of ["accepted", "rejected", "failed", "cancelled", "halted"]) assert.equal(groupOf(s), "settled");
  assert.equal(contextValue("review"), "job:review job:review");
  assert.match(contextValue("stuck"), /job:running/);
});

test("actions follow the state", () => {
  assert.deepEqual(actionsFor("review"), ["openChanges", "acceptAll", "requestChanges", "reject"]);
  assert.deepEqual(actionsFor("running"), ["cancel"]);
  assert.deepEqual(actionsFor("needs_input"), ["cancel"]);
  assert.deepEqual(actionsFor("failed"), ["rerun", "delete"]);
});

test("events move a job between groups and add up its cost", () => {
  const m = new JobModel();
  m.load([summary("a", "pending")]);
  assert.equal(m.apply({ jobId: "a", seq: 3, kind: "status", status: "running", data: { from: "provisioning", to: "running" } }, 110), false);
  assert.equal(m.count("running"), 1);
  m.apply({ jobId: "a", seq: 4, kind: "usage", data: { costUsd: 0.5, cumulative: true } }, 111);
  m.apply({ jobId: "a", seq: 5, kind: "usage", data: { costUsd: 0.75, cumulative: true } }, 112);
  assert.equal(m.get("a")?.costUsd, 0.75);
  m.apply({ jobId: "a", seq: 6, kind: "usage", data: { costUsd: 0.25, cumulative: false } }, 112);
  assert.equal(m.get("a")?.costUsd, 1);
  m.apply({ jobId: "a", seq: 7, kind: "question", data: { text: "Which file?" } }, 113);
  m.apply({ jobId: "a", seq: 8, kind: "status", status: "needs_input", data: { from: "running", to: "needs_input" } }, 113);
  assert.equal(m.get("a")?.question, "Which file?");
  assert.equal(m.count("needs_input"), 1);
  m.apply({ jobId: "a", seq: 9, kind: "status", status: "review", data: { from: "running", to: "review", reason: "done" } }, 120);
  assert.equal(m.get("a")?.question, null);
  assert.equal(m.get("a")?.reason, "done");
  assert.deepEqual(m.inGroup("review").map((j) => j.id), ["a"]);
});

test("an event of an unknown job asks for a new listing; a listing drops deleted jobs", () => {
  const m = new JobModel();
  assert.equal(m.apply({ jobId: "zz", seq: 1, kind: "created", data: {} }, 1), true);
  m.load([summary("a", "running"), summary("b", "review", 200)]);
  m.apply({ jobId: "a", seq: 2, kind: "usage", data: { costUsd: 2, cumulative: true } }, 1);
  m.load([summary("a", "running")]);
  assert.equal(m.get("b"), undefined);
  assert.equal(m.get("a")?.costUsd, 2, "event-derived details survive a new listing");
  assert.equal(m.costSince(150), 0);
  assert.equal(m.costSince(0), 2);
});

test("a long or multi-line headline shows its first line, clipped", () => {
  const m = new JobModel();
  m.load([{ ...summary("a", "running"), headline: `${"x".repeat(300)}\nsecond` }]);
  const h = m.get("a")?.headline ?? "";
  assert.equal(h.length, 200);
  assert.ok(!h.includes("second"));
});

test("elapsed time and cost read like the Testing view's durations", () => {
  assert.equal(formatElapsed(5.9), "5s");
  assert.equal(formatElapsed(65), "1m 05s");
  assert.equal(formatElapsed(3 * 3600 + 120), "3h 02m");
  assert.equal(formatElapsed(-4), "0s");
  assert.equal(formatCost(0), "");
  assert.equal(formatCost(0.0012), "$0.0012");
  assert.equal(formatCost(1.234), "$1.23");
  const m = new JobModel();
  m.load([summary("a", "running", 100)]);
  const job = m.get("a");
  assert.ok(job);
  assert.equal(describe(job, 165), "mock · 1m 05s");
});

test("a listed job seen in no event shows its cost so far and its elapsed time", () => {
  const m = new JobModel();
  m.load([
    { ...summary("cli", "review", 100), costUsd: 0.0012, startedAt: 110, updatedAt: 175 },
    { ...summary("run", "running", 100), costUsd: 0.5, startedAt: 130, updatedAt: 150 },
    summary("old", "accepted", 100), // a server that does not send them
  ]);
  const job = (id: string) => m.get(id) as NonNullable<ReturnType<JobModel["get"]>>;
  assert.equal(describe(job("cli"), 1000), "mock · 1m 05s · $0.0012");
  assert.equal(describe(job("run"), 160), "mock · 30s · $0.50");
  assert.equal(describe(job("old"), 1000), "mock");
  // A later listing with a lower figure (another server's view) never takes cost back.
  m.load([{ ...summary("run", "running", 100), costUsd: 0.1, startedAt: 130, updatedAt: 150 }]);
  assert.equal(describe(job("run"), 160), "mock · 30s · $0.50");
});

