// The web view's entry: theme, who is signed in, and which page the path asks for.
import { apiJson, ApiError, el } from "./util.js";
import { buildsPage } from "./builds.js";
import { buildPage } from "./build.js";
import { logPage } from "./log.js";
import { agentsPage, environmentPage } from "./delivery.js";

const THEME_KEY = "conveyor-theme";

function applyTheme(theme) {
  const dark = theme ? theme === "dark" : matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = dark ? "dark" : "light";
}

function setUpTheme() {
  applyTheme(localStorage.getItem(THEME_KEY));
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => applyTheme(localStorage.getItem(THEME_KEY)));
  document.getElementById("theme").addEventListener("click", () => {
    const next = document.documentElement.dataset.theme === "dark" ? "light" : "dark";
    localStorage.setItem(THEME_KEY, next);
    applyTheme(next);
  });
}

function signInForm(main, problem) {
  const here = location.pathname + location.search;
  main.replaceChildren(el("div", { class: "panel signin" },
    el("h1", {}, "Sign in to Conveyor"),
    el("form", { method: "post", action: "/signin", id: "signin" },
      el("label", { for: "token" }, "Token"),
      el("input", { type: "password", name: "token", id: "token", autocomplete: "current-password", required: true, autofocus: true }),
      el("input", { type: "hidden", name: "next", value: here === "/" ? "/" : here }),
      problem ? el("p", { class: "error", id: "signin-error" }, problem) : null,
      el("button", { class: "primary", type: "submit" }, "Sign in")),
    el("p", { class: "muted" }, "A client token (conveyor token create NAME --role viewer), or the server's own.")));
}

const ROUTES = [
  [/^\/$/, () => buildsPage],
  [/^\/builds\/(\d+)$/, (m) => (main, me, signal) => buildPage(main, me, signal, Number(m[1]))],
  [/^\/builds\/(\d+)\/jobs\/([^/]+)$/, (m) => (main, me, signal) => logPage(main, me, signal, Number(m[1]), decodeURIComponent(m[2]))],
  [/^\/environments\/([^/]+)$/, (m) => (main, me, signal) => environmentPage(main, me, signal, decodeURIComponent(m[1]))],
  [/^\/agents$/, () => agentsPage],
];

async function showEnvironments() {
  try {
    const found = await apiJson("/environments");
    document.getElementById("envs").replaceChildren(...found.environments.map((e) =>
      el("a", { href: `/environments/${encodeURIComponent(e.name)}` }, e.name)));
  } catch (error) {
    console.warn("environments", error);
  }
}

async function start() {
  setUpTheme();
  const main = document.getElementById("main");
  let me;
  try {
    me = await apiJson("/whoami");
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      const refused = new URLSearchParams(location.search).get("signin");
      signInForm(main, refused === "refused" ? "That token was refused." : null);
      return;
    }
    main.replaceChildren(el("p", { class: "error" }, `The coordinator does not answer: ${error.message}`));
    return;
  }
  document.getElementById("who").textContent = `${me.name} · ${me.role}`;
  document.getElementById("signout").hidden = false;
  showEnvironments();
  const controller = new AbortController();
  for (const [pattern, page] of ROUTES) {
    const found = location.pathname.match(pattern);
    if (found) {
      await page(found)(main, me, controller.signal);
      return;
    }
  }
  main.replaceChildren(el("p", { class: "error" }, "No such page."));
}

start();
