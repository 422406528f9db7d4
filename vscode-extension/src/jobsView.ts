/** The Jobs tree: jobs grouped by state, like the Testing and Source Control views. */
import * as vscode from "vscode";
import { GROUPS, JobModel, contextValue, describe, type Group, type JobState } from "./model";

type Node = { kind: "group"; group: Group; label: string } | { kind: "job"; job: JobState };

const ICONS: Record<string, vscode.ThemeIcon> = {
  draft: new vscode.ThemeIcon("circle-outline"),
  pending: new vscode.ThemeIcon("clock"),
  provisioning: new vscode.ThemeIcon("loading~spin"),
  running: new vscode.ThemeIcon("sync~spin"),
  stuck: new vscode.ThemeIcon("warning", new vscode.ThemeColor("problemsWarningIcon.foreground")),
  needs_input: new vscode.ThemeIcon("question", new vscode.ThemeColor("notificationsWarningIcon.foreground")),
  review: new vscode.ThemeIcon("diff", new vscode.ThemeColor("gitDecoration.modifiedResourceForeground")),
  accepted: new vscode.ThemeIcon("pass", new vscode.ThemeColor("testing.iconPassed")),
  rejected: new vscode.ThemeIcon("close"),
  failed: new vscode.ThemeIcon("error", new vscode.ThemeColor("testing.iconFailed")),
  halted: new vscode.ThemeIcon("debug-pause"),
  cancelled: new vscode.ThemeIcon("circle-slash"),
};

export class JobsView implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  readonly view: vscode.TreeView<Node>;
  private readonly groupNodes = new Map<Group, Node>();
  private readonly jobNodes = new Map<string, Node>();
  private readonly ticker: NodeJS.Timeout;
  private pending: NodeJS.Timeout | undefined;

  constructor(private readonly model: JobModel) {
    for (const g of GROUPS) this.groupNodes.set(g.id, { kind: "group", group: g.id, label: g.label });
    this.view = vscode.window.createTreeView("logist.jobs", { treeDataProvider: this, showCollapseAll: true });
    // Elapsed times of running jobs move on: only their rows are refreshed. A whole-tree refresh
    // every second would drop VS Code's handles of every row meanwhile, and a click on a row's
    // inline action (Cancel) would reach the command without its job.
    this.ticker = setInterval(() => {
      if (this.pending || !this.view.visible) return;
      for (const job of this.model.inGroup("running")) this.changed.fire(this.jobNode(job));
    }, 1000);
  }

  /** Coalesced: at most one tree refresh per 50 ms however many events arrive. */
  refresh(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      const review = this.model.count("review");
      this.view.badge = review > 0 ? { value: review, tooltip: `${review} job${review > 1 ? "s" : ""} awaiting review` } : undefined;
      this.changed.fire(undefined);
    }, 50);
  }

  getChildren(node?: Node): Node[] {
    if (!node) return GROUPS.filter((g) => this.model.count(g.id) > 0).map((g) => this.groupNodes.get(g.id) as Node);
    if (node.kind === "group") return this.model.inGroup(node.group).map((job) => this.jobNode(job));
    return [];
  }

  /** One node object per job (VS Code keys a row's handle by its element). */
  private jobNode(job: JobState): Node {
    const node = this.jobNodes.get(job.id);
    if (node?.kind === "job") {
      node.job = job;
      return node;
    }
    const fresh: Node = { kind: "job", job };
    this.jobNodes.set(job.id, fresh);
    return fresh;
  }

  /** The job selected in the tree, if any. */
  selectedJob(): string | undefined {
    const node = this.view.selection[0];
    return node?.kind === "job" ? node.job.id : undefined;
  }

  getParent(node: Node): Node | undefined {
    if (node.kind === "job") {
      const group = GROUPS.find((g) => this.model.inGroup(g.id).some((j) => j.id === node.job.id));
      return group ? this.groupNodes.get(group.id) : undefined;
    }
    return undefined;
  }

  getTreeItem(node: Node): vscode.TreeItem {
    if (node.kind === "group") {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
      item.id = `group:${node.group}`;
      item.description = String(this.model.count(node.group));
      item.contextValue = `group:${node.group}`;
      return item;
    }
    const job = node.job;
    const item = new vscode.TreeItem(job.headline || job.id, vscode.TreeItemCollapsibleState.None);
    item.id = `job:${job.id}`;
    item.description = describe(job, Date.now() / 1000);
    item.iconPath = ICONS[job.status] ?? new vscode.ThemeIcon("circle-outline");
    item.contextValue = contextValue(job.status);
    const tip = new vscode.MarkdownString();
    tip.appendText(`${job.headline}\n\n`);
    tip.appendMarkdown(`**${job.status}** · job \`${job.id}\` · ${job.agent}`);
    if (job.file) tip.appendText(` · ${job.file}`);
    if (job.reason) tip.appendText(`\n\n${job.reason}`);
    if (job.question) tip.appendText(`\n\nQuestion: ${job.question}`);
    item.tooltip = tip;
    item.accessibilityInformation = { label: `${job.headline}, ${job.status}, ${item.description}` };
    item.command = { title: "Open Job Panel", command: "logist.openPanel", arguments: [job.id] };
    return item;
  }

  dispose(): void {
    clearInterval(this.ticker);
    if (this.pending) clearTimeout(this.pending);
    this.view.dispose();
    this.changed.dispose();
  }
}
