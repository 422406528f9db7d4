/** The status-bar item: running jobs and today's cost; opens the Jobs view. */
import * as vscode from "vscode";
import { formatCost, type JobModel } from "./model";

export class StatusItem implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("logist.status", vscode.StatusBarAlignment.Left, 10);

  constructor(private readonly model: JobModel) {
    this.item.name = "Logist";
    this.item.command = "workbench.view.extension.logist";
    this.update();
    this.item.show();
  }

  update(): void {
    const running = this.model.count("running");
    const input = this.model.count("needs_input");
    const review = this.model.count("review");
    const midnight = new Date();
    midnight.setHours(0, 0, 0, 0);
    const cost = formatCost(this.model.costSince(midnight.getTime() / 1000));
    const icon = running > 0 ? "$(sync~spin)" : "$(hubot)";
    this.item.text = `${icon} ${running}${input ? ` $(question) ${input}` : ""}${review ? ` $(diff) ${review}` : ""}${cost ? ` ${cost}` : ""}`;
    this.item.tooltip = `Logist: ${running} running, ${input} waiting for input, ${review} in review; today's cost ${cost || "$0"}`;
  }

  dispose(): void {
    this.item.dispose();
  }
}
