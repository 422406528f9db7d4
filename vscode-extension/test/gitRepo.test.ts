import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { test } from "node:test";
import { firstInRepository, insideGitRepository } from "../src/gitRepo";

const scratch = (): string => fs.mkdtempSync(path.join(os.tmpdir(), "logist-gitrepo-"));

test("a folder deep in a real repository is inside it; one beside it is not", async () => {
  const top = scratch();
  const repo = path.join(top, "repo");
  fs.mkdirSync(path.join(repo, "src", "deep"), { recursive: true });
  execFileSync("git", ["init", "-q", repo]);
  const outside = path.join(top, "plain");
  fs.mkdirSync(outside);
  assert.equal(await insideGitRepository(path.join(repo, "src", "deep")), true);
  assert.equal(await insideGitRepository(path.join(repo, "src", "deep", "file.py")), true);
  assert.equal(await insideGitRepository(outside), false);
  assert.equal(await firstInRepository([outside, path.join(repo, "src")]), path.join(repo, "src"));
  assert.equal(await firstInRepository([outside]), undefined);
});

test("a worktree (its .git is a file) counts as a repository", async () => {
  const top = scratch();
  const repo = path.join(top, "repo");
  execFileSync("git", ["init", "-q", repo]);
  execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "base"]);
  const tree = path.join(top, "tree");
  execFileSync("git", ["-C", repo, "worktree", "add", "-q", tree]);
  assert.ok(fs.statSync(path.join(tree, ".git")).isFile());
  assert.equal(await insideGitRepository(tree), true);
});
