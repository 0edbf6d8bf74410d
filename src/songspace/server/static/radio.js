// Radio: seeds (♥) and dislikes (✕) kept in localStorage, the radio made from them, the
// one-click radio from any track, and the top-up that keeps a playing radio going: when the
// queue runs low it asks /api/radio for more from the same seeds and adds only tracks not
// already in the list (so nothing played comes back), with the same rules as `songspace radio`
// (its default length, seed and artist window).

import { $, api, el, hooks, labelOf, plural, remember, state, toast, track } from "./core.js";
import { appendToList, refreshRowMarks, showList, showTab } from "./lists.js";

const LOW = 3;        // tracks left in the queue when the radio asks for more
const MORE = 20;      // how many more it asks for
const LENGTH = 30;    // a new radio's length, as `songspace radio`'s default

function saveSeeds() {
  try { localStorage.setItem("songspace.seeds", JSON.stringify({ likes: state.likes, dislikes: state.dislikes, tracks: [...state.likes, ...state.dislikes].map(track) })); } catch (_) { /* private mode */ }
}

export function loadSeeds() {
  try {
    const saved = JSON.parse(localStorage.getItem("songspace.seeds") || "null");
    if (saved) { remember(saved.tracks || []); state.likes = saved.likes || []; state.dislikes = saved.dislikes || []; }
  } catch (_) { /* nothing saved */ }
}

export function toggleSeed(kind, id) {
  const other = kind === "likes" ? "dislikes" : "likes";
  const list = state[kind];
  if (list.includes(id)) state[kind] = list.filter((i) => i !== id);
  else { state[kind] = [...list, id]; state[other] = state[other].filter((i) => i !== id); toast(`${kind === "likes" ? "Liked" : "Disliked"}: ${labelOf(track(id))}`, "info"); }
  renderSeeds();
  saveSeeds();
}

export function renderSeeds() {
  for (const kind of ["likes", "dislikes"]) {
    const ul = $(`#radio-${kind}`);
    const ids = state[kind];
    ul.replaceChildren(...(ids.length ? ids.map((id) => el("li", { class: `chip ${kind}`, "data-id": id },
      el("span", { text: labelOf(track(id)) }),
      el("button", { "data-remove": kind, title: "Remove", "aria-label": `Remove ${labelOf(track(id))} from the ${kind}`, text: "×" })))
      : [el("li", { class: "none", text: kind === "likes" ? "none yet: press ♥ on a track" : "none" })]));
  }
  const badge = $("#radio-badge");
  badge.hidden = state.likes.length === 0;
  badge.textContent = state.likes.length;
  refreshRowMarks();
}

// How many tracks a radio may ask for: the server refuses more than the library holds.
// The seeds never come back, so a radio can hold at most the library less its seeds.
function capped(n) {
  return state.searchable ? Math.max(1, Math.min(n, state.searchable - state.radio.seeds.length)) : n;
}

function why(found, asked) {
  if (found >= asked) return "";
  return ` (of ${asked} asked for: the rest are near a disliked track, far from the seeds, or would break the artist gap)`;
}

async function fetchRadio(n) {
  const r = state.radio;
  const body = { seeds: r.seeds, avoid: r.avoid, n: capped(n), seed: r.seed, artist_window: r.artistWindow };
  const found = await api("/api/radio", { method: "POST", body: JSON.stringify(body) });
  return { items: found.items, asked: body.n };
}

function seedsText(r) {
  return r.seeds.length === 1 ? `“${labelOf(track(r.seeds[0]))}”` : plural(r.seeds.length, "liked track");
}

// The Radio tab's "Make radio": from every liked track, with the tab's settings.
export async function makeRadio() {
  if (!state.likes.length) { toast("Like at least one track first (♥ on any track)"); return; }
  state.radio = {
    seeds: [...state.likes], avoid: [...state.dislikes],
    seed: Number($("#radio-seed").value) || 0,
    artistWindow: Number($("#radio-artist-window").value) || 1,
    exhausted: false, busy: false,
  };
  const n = Number($("#radio-n").value) || LENGTH;
  $("#radio-info").textContent = "Tuning…";
  try {
    const { items, asked } = await fetchRadio(n);
    showList("radio", items, items.length ? `${plural(items.length, "track")} around ${seedsText(state.radio)}${why(items.length, asked)} · more come as it plays`
      : "No track qualifies: every other track is a seed, close to a disliked one, or far from the seeds");
  } catch (e) { $("#radio-info").textContent = ""; }
}

// One click on ∿: a radio from this one track, starting with it (it plays on if it already
// plays), then the tracks around it.
export async function startRadio(id) {
  state.radio = { seeds: [id], avoid: state.dislikes.filter((i) => i !== id), seed: 0, artistWindow: 3, exhausted: false, busy: false };
  const head = track(id);
  showTab("radio");
  $("#radio-info").textContent = `Tuning a radio from ${labelOf(head)}…`;
  let items = [], asked = 0;
  try {
    ({ items, asked } = await fetchRadio(LENGTH));
  } catch (e) {
    $("#radio-info").textContent = `No radio: ${e.message}`;
    return;
  }
  if (!state.radio || state.radio.seeds[0] !== id) return; // another radio was asked for meanwhile
  if (!items.length) state.radio.exhausted = true; // nothing to top up from
  const rows = [{ ...head, score: 1 }, ...items];
  showList("radio", rows, items.length
    ? `Radio from ${labelOf(head)}: ${plural(items.length, "track")} after it${why(items.length, asked)} · more come as it plays`
    : (state.searchable || 0) <= 1 ? "No radio: the library holds no other track" : "No other track qualifies: the others are disliked, close to a disliked track, or far from this one");
  if (state.playing === id && !$("#audio").paused) state.queue = { list: "radio", index: 0 };
  else hooks.play(id, { list: "radio", index: 0 });
}

// More tracks for the radio that plays, when few are left; `andPlay`: play the first new one
// (the queue had run out).
export async function topUpRadio(andPlay = false) {
  const r = state.radio;
  if (!r || r.busy || r.exhausted) return;
  r.busy = true;
  const have = state.lists.radio;
  const known = new Set(have.map((t) => t.id));
  try {
    const { items } = await fetchRadio(have.length + MORE);
    if (state.radio !== r) return;
    const fresh = items.filter((t) => !known.has(t.id));
    if (!fresh.length) {
      r.exhausted = true;
      $("#radio-info").textContent = `${plural(have.length, "track")}: no more tracks lie close enough to ${seedsText(r)}, so the radio ends here`;
      if (andPlay) toast("The radio has played everything close to its seeds", "info");
      return;
    }
    appendToList("radio", fresh, `${plural(have.length + fresh.length, "track")} around ${seedsText(r)} · more come as it plays`);
    if (andPlay) hooks.play(fresh[0].id, { list: "radio", index: have.length });
  } catch (_) { /* the toast said why */ } finally { r.busy = false; }
}

// Each track that starts: if it is the radio's and few are left after it, get more.
export function onPlay(e) {
  const q = e.detail.queue;
  if (!q || q.list !== "radio" || !state.radio) return;
  if (state.lists.radio.length - q.index - 1 <= LOW) topUpRadio();
}
