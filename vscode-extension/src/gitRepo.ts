/** Whether a folder is inside a git repository, checked before the New Job flow asks anything
 * (the server refuses a job outside one; the user should learn it before typing a prompt). */
import * as fs from "node:fs/promises";
import * as path from "node:path";

/** True when `folder` or a folder above it holds `.git` (a directory, or a worktree's or
 * submodule's `.git` file), as git itself looks for it. */
export async function insideGitRepository(folder: string): Promise<boolean> {
  let dir = path.resolve(folder);
  for (;;) {
    try {
      await fs.lstat(path.join(dir, ".git"));
      return true;
    } catch {
      // not here: look above
    }
    const parent = path.dirname(dir);
    if (parent === dir) return false;
    dir = parent;
  }
}

/** The first of `folders` inside a git repository, or undefined. */
export async function firstInRepository(folders: readonly string[]): Promise<string | undefined> {
  for (const folder of folders) if (await insideGitRepository(folder)) return folder;
  return undefined;
}
