// `/builds/ID`: the graph, the jobs (why waiting ones wait, attempts, durations) and the gates'
// buttons, kept current by the build's event stream.
import { renderGraph } from "./graph.js";
import { api, apiJson, badge, duration, el, FINAL, jobTimes, roleAdmits, when } from "./util.js";

function gateCell(build, job, me, onDone) {
  const approval = job.approval;
  if (!approval) return null;
  if (approval.decision) {
    return el("span", { class: "muted" }, `${approval.decision} by ${approval.by}${approval.comment ? `: ${approval.comment}` : ""}`);
  }
  const may = roleAdmits(me.role, approval.roles && approval.roles.length ? approval.roles : ["deployer"]);
  if (job.status !== "waiting_for_approval" || !may) {
    return el("span", { class: "muted" }, approval.prompt || "approval gate");
  }
  const comment = el("input", { type: "text", placeholder: "comment (optional)", name: "comment" });
  const decide = (verb) => async () => {
    try {
      await api(`/builds/${build.id}/jobs/${encodeURIComponent(job.name)}/${verb}`, { method: "POST", body: { comment: comment.value } });
      onDone();
    } catch (error) {
      alert(`${verb}: ${error.message}`);
    }
  };
  return el("div", { class: "gate" }, el("span", {}, approval.prompt), comment,
    el("button", { class: "primary", "data-action": "approve", onclick: decide("approve") }, "Approve"),
    el("button", { class: "danger", "data-action": "reject", onclick: decide("reject") }, "Reject"));
}

function jobRow(build, job, me, refresh) {
  const { start, end } = jobTimes(job);
  const why = FINAL.has(job.status) || job.status === "running" ? job.message : job.message || job.reason;
  return el("tr", { "data-job": job.name },
    el("td", {}, el("a", { href: `/builds/${build.id}/jobs/${encodeURIComponent(job.name)}` }, job.name)),
    el("td", {}, badge(job.status)),
    el("td", { class: "why" }, gateCell(build, job, me, refresh) || el("span", { class: "muted" }, why || "")),
    el("td", {}, String(job.attempts)),
    el("td", { class: "muted" }, job.agent || ""),
    el("td", { class: "muted" }, duration(start, end)));
}

export async function buildPage(main, me, signal, id) {
  const title = el("h1", {}, `Build #${id}`);
  const facts = el("dl", { class: "kv panel" });
  const problem = el("pre", { class: "panel error", id: "build-error", hidden: true });
  const graph = el("div", { class: "panel graph", id: "graph" });
  const jobs = el("tbody", { id: "jobs" });
  const actions = el("span", {});
  main.replaceChildren(title, facts, problem, el("h2", {}, "Pipeline"), graph, el("h2", {}, "Jobs"),
    el("div", { class: "panel" }, el("table", {},
      el("thead", {}, el("tr", {}, ...["Job", "Status", "Waiting for / result", "Attempts", "Agent", "Duration"].map((h) => el("th", {}, h)))),
      jobs)));
  let current = null;
  const show = (build) => {
    current = build;
    title.replaceChildren(`Build #${build.id} · ${build.name} `, badge(build.status), actions);
    actions.replaceChildren(...buildActions(build, me, refresh));
    facts.replaceChildren(
      el("dt", {}, "Started by"), el("dd", {}, build.started_by || "—"),
      el("dt", {}, "Created"), el("dd", {}, when(build.created_at_ms)),
      el("dt", {}, "Duration"), el("dd", {}, duration(build.created_at_ms, build.finished_at_ms)),
      el("dt", {}, "Trigger"), el("dd", {}, [build.event, build.branch, build.tag].filter(Boolean).join(" · ") || "—"),
      ...commitFacts(build.trigger));
    // A repository's commit whose pipeline file could not run: the why, file:line:column first.
    problem.hidden = !build.error;
    problem.textContent = build.error || "";
    graph.replaceChildren(renderGraph(build));
    jobs.replaceChildren(...build.jobs.map((job) => jobRow(build, job, me, refresh)));
  };
  async function refresh() { show(await apiJson(`/builds/${id}`)); }
  await refresh();
  follow(id, show, signal, () => current);
}

function commitFacts(trigger) {
  if (!trigger) return [];
  return [
    el("dt", {}, "Repository"), el("dd", {}, trigger.repo),
    el("dt", {}, "Commit"), el("dd", { class: "mono" }, trigger.commit.slice(0, 12)),
    el("dt", {}, "Message"), el("dd", {}, trigger.message || "—"),
    el("dt", {}, "Author"), el("dd", {}, trigger.author || "—"),
  ];
}

function buildActions(build, me, refresh) {
  if (!roleAdmits(me.role, ["developer"])) return [];
  const post = (verb) => async () => {
    try { await api(`/builds/${build.id}/${verb}`, { method: "POST", body: {} }); await refresh(); }
    catch (error) { alert(`${verb}: ${error.message}`); }
  };
  return FINAL.has(build.status)
    ? [el("button", { onclick: post("retry") }, "Retry")]
    : [el("button", { class: "danger", onclick: post("cancel") }, "Cancel")];
}

// The build's own event stream while it runs; reconnects (EventSource does) until the build ends.
function follow(id, show, signal, current) {
  if (FINAL.has(current().status)) return;
  const source = new EventSource(`/api/v1/builds/${id}/events`);
  signal.addEventListener("abort", () => source.close());
  source.addEventListener("build", (event) => show(JSON.parse(event.data)));
  source.addEventListener("end", () => source.close());
}
