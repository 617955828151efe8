// `/environments/NAME` (deployment history, rollback) and `/agents`.
import { api, apiJson, badge, duration, el, every, roleAdmits, when } from "./util.js";

const REFRESH_MS = 3000;

function table(headers, body) {
  return el("div", { class: "panel" }, el("table", {},
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", {}, h)))), body));
}

export async function environmentPage(main, me, signal, name) {
  const body = el("tbody", { id: "deployments" });
  const note = el("p", { class: "muted", id: "rollback-note" });
  const mayRoll = roleAdmits(me.role, ["deployer"]);
  const rollback = async (to) => {
    const what = to === undefined ? "the last good deployment" : `deployment ${to}`;
    if (!confirm(`Roll ${name} back to ${what}?`)) return;
    try {
      const started = await apiJson(`/environments/${encodeURIComponent(name)}/rollback`, { method: "POST", body: to === undefined ? {} : { to } });
      location.href = `/builds/${started.id}`;
    } catch (error) {
      note.textContent = `rollback: ${error.message}`;
    }
  };
  main.replaceChildren(
    el("h1", {}, `Environment ${name} `, mayRoll ? el("button", { id: "rollback", class: "danger", onclick: () => rollback() }, "Roll back") : null),
    note, table(["Deployment", "Status", "Build", "Commit", "Approved by", "Actor", "Started", "Duration", ""], body));
  const refresh = async () => {
    const found = await apiJson(`/environments/${encodeURIComponent(name)}/deployments?limit=100`);
    body.replaceChildren(...found.deployments.map((d, i) => el("tr", { "data-deployment": d.id },
      el("td", {}, `#${d.id}${i === 0 ? " (current)" : ""}`),
      el("td", {}, badge(d.status)),
      el("td", {}, el("a", { href: `/builds/${d.build}/jobs/${encodeURIComponent(d.job)}` }, `#${d.build} ${d.job}`)),
      el("td", { class: "muted" }, (d.commit || "").slice(0, 12)),
      el("td", { class: "muted" }, d.approvals.map((a) => `${a.by} (${a.decision})`).join(", ")),
      el("td", { class: "muted" }, d.actor || ""),
      el("td", { class: "muted" }, when(d.started_at_ms)),
      el("td", { class: "muted" }, duration(d.started_at_ms, d.finished_at_ms)),
      el("td", {}, mayRoll && i > 0 && d.status === "succeeded" ? el("button", { onclick: () => rollback(d.id) }, "Roll back to this") : null))));
    if (!found.deployments.length) note.textContent = "No deployments yet.";
  };
  await refresh();
  every(REFRESH_MS, refresh, signal);
}

export async function agentsPage(main, me, signal) {
  const body = el("tbody", { id: "agents" });
  const manage = roleAdmits(me.role, ["admin"]);
  main.replaceChildren(el("h1", {}, "Agents"), table(["Agent", "State", "Running", "Labels", "Last seen", ""], body));
  const refresh = async () => {
    const agents = await apiJson("/agents");
    body.replaceChildren(...agents.map((a) => el("tr", { "data-agent": a.name },
      el("td", {}, a.name),
      el("td", {}, badge(a.state)),
      el("td", {}, `${a.running} / ${a.capacity}`),
      el("td", { class: "muted" }, Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(", ")),
      el("td", { class: "muted" }, when(a.last_seen_ms)),
      el("td", {}, manage ? modeButtons(a, refresh) : null))));
  };
  await refresh();
  every(REFRESH_MS, refresh, signal);
}

function modeButtons(agent, refresh) {
  const post = (verb) => async () => {
    try { await api(`/agents/${encodeURIComponent(agent.name)}/${verb}`, { method: "POST" }); await refresh(); }
    catch (error) { alert(`${verb}: ${error.message}`); }
  };
  return el("span", { class: "gate" },
    agent.state !== "paused" ? el("button", { onclick: post("pause") }, "Pause") : el("button", { onclick: post("resume") }, "Resume"),
    agent.state !== "draining" ? el("button", { onclick: post("drain") }, "Drain") : null);
}
