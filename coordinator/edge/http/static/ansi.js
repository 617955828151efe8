// ANSI SGR colours in a log line, as spans: bold, dim, italic, underline, foregrounds 30–37 and
// 90–97 (others are dropped, never shown as escape codes).
const ESCAPE = /\x1b\[([0-9;:]*)([A-Za-z])|\x1b[()][A-Za-z0-9]|\r/g;

function apply(state, params) {
  const codes = params === "" ? [0] : params.split(/[;:]/).map((p) => Number(p) || 0);
  for (let i = 0; i < codes.length; i++) {
    const code = codes[i];
    if (code === 0) Object.assign(state, { b: false, d: false, i: false, u: false, fg: null });
    else if (code === 1) state.b = true;
    else if (code === 2) state.d = true;
    else if (code === 3) state.i = true;
    else if (code === 4) state.u = true;
    else if (code === 22) state.b = state.d = false;
    else if (code === 23) state.i = false;
    else if (code === 24) state.u = false;
    else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) state.fg = code;
    else if (code === 39) state.fg = null;
    else if (code === 38 || code === 48) i += codes[i + 1] === 5 ? 2 : 4; // 256 / true colour: skipped
  }
}

function classes(state) {
  return [state.b && "a-b", state.d && "a-d", state.i && "a-i", state.u && "a-u", state.fg && `a-${state.fg}`]
    .filter(Boolean).join(" ");
}

// [{text, cls}] of one line; the state starts plain on every line (a viewer that starts anywhere
// in a huge log cannot know what came before).
export function segments(line) {
  const state = { b: false, d: false, i: false, u: false, fg: null };
  const out = [];
  let last = 0;
  for (const found of line.matchAll(ESCAPE)) {
    if (found.index > last) out.push({ text: line.slice(last, found.index), cls: classes(state) });
    if (found[2] === "m") apply(state, found[1]);
    last = found.index + found[0].length;
  }
  if (last < line.length) out.push({ text: line.slice(last), cls: classes(state) });
  return out;
}

export function plain(line) {
  return line.replace(ESCAPE, "");
}
