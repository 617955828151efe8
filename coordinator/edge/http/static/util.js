// Small helpers every page shares: calls to /api/v1, element building, times.

const ROLES = ["viewer", "developer", "deployer", "admin"];

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The sign-in cookie goes with every call; the header tells the server the page itself asks
// (a state-changing call signed in by cookie only is refused without it).
export async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { "X-Conveyor-Request": "1", ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const reply = await fetch(`/api/v1${path}`, init);
  if (!reply.ok) {
    let message = reply.statusText;
    try { message = (await reply.json()).error || message; } catch { /* not JSON */ }
    throw new ApiError(reply.status, message);
  }
  return reply;
}

export async function apiJson(path, options) {
  return (await api(path, options)).json();
}

export function roleAdmits(role, allowed) {
  const rank = ROLES.indexOf(role);
  const needed = allowed.map((r) => ROLES.indexOf(r)).filter((i) => i >= 0);
  return rank >= 0 && needed.length > 0 && rank >= Math.min(...needed);
}

// el("a", {href: "/"}, "text", child): attributes starting with "on" are listeners.
export function el(tag, attrs = {}, ...children) {
  const node = tag === "svg" || attrs.svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "svg" || value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function svg(tag, attrs = {}, ...children) {
  return el(tag, { ...attrs, svg: true }, ...children);
}

export function badge(status) {
  return el("span", { class: `badge s-${status}`, "data-status": status }, status.replaceAll("_", " "));
}

export function duration(startMs, endMs) {
  if (!startMs) return "";
  const seconds = Math.max(0, Math.round(((endMs || Date.now()) - startMs) / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

export function when(ms) {
  return ms ? new Date(ms).toLocaleString() : "";
}

export function jobTimes(job) {
  const starts = job.steps.map((s) => s.started_at_ms).filter(Boolean);
  const ends = job.steps.map((s) => s.finished_at_ms).filter(Boolean);
  const start = starts.length ? Math.min(...starts) : null;
  const running = job.status === "running";
  return { start, end: running || !ends.length ? null : Math.max(...ends) };
}

export const FINAL = new Set(["succeeded", "failed", "canceled", "skipped"]);

// Re-runs `fn` every `ms` until `signal` aborts (pages stop theirs when they are left).
export function every(ms, fn, signal) {
  const timer = setInterval(() => { fn().catch((e) => console.warn(e)); }, ms);
  signal.addEventListener("abort", () => clearInterval(timer));
}
