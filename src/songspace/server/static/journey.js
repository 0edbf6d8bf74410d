// Journey A → B: the two ends, chosen with A and B on any track, and the walk between them.

import { $, api, el, labelOf, plural, state, toast, track } from "./core.js";
import { refreshRowMarks, showList } from "./lists.js";

export function setEnd(which, id) {
  if (which === "A") state.pathA = id; else state.pathB = id;
  renderEnds();
  toast(`Journey ${which === "A" ? "starts at" : "ends at"}: ${labelOf(track(id))}`, "info");
}

export function renderEnds() {
  for (const [which, id] of [["a", state.pathA], ["b", state.pathB]]) {
    const slot = $(`#path-${which}`);
    slot.classList.toggle("empty", id === null);
    slot.querySelector(".slot-track").textContent = id === null ? "not chosen" : labelOf(track(id));
    slot.dataset.id = id === null ? "" : id;
  }
  refreshRowMarks();
}

export async function makeJourney() {
  if (state.pathA === null || state.pathB === null) { toast("Choose both ends: press A on one track and B on another"); return; }
  const asked = Number($("#path-n").value) || 12;
  // n is a maximum; a library smaller than n would be refused by the server, so ask for all it holds.
  const n = state.searchable ? Math.max(2, Math.min(asked, state.searchable)) : asked;
  $("#path-summary").textContent = "Walking…";
  try {
    const found = await api(`/api/path?a=${state.pathA}&b=${state.pathB}&n=${n}`);
    const summary = $("#path-summary");
    summary.replaceChildren(
      el("span", { text: `${plural(found.items.length, "track")} · ` }),
      el("span", { class: "metric", "data-testid": "largest-step", title: "The biggest jump between two neighbours of the journey (cosine distance)", text: `largest step ${found.largest_step.toFixed(3)}` }),
      el("span", { text: " vs " }),
      el("span", { class: "metric", "data-testid": "direct", title: "Cosine distance from A straight to B", text: `straight A→B ${found.direct.toFixed(3)}` }),
      el("span", { text: " · " }),
      el("span", { "data-testid": "journey-why", text: fewer(found.items.length, asked, n) }));
    showList("journey", found.items, "Each track is closer to B than the one before");
  } catch (e) { $("#path-summary").textContent = ""; }
}


// Why a journey has fewer tracks than asked for (the number asked is a maximum).
function fewer(got, asked, n) {
  if (got >= asked) return "as many as asked for";
  if (n < asked && got >= n) return `only ${got} of the ${asked} asked for: the library holds ${plural(n, "searchable track")}`;
  return `only ${got} of the ${asked} asked for: no more tracks lie between A and B, each closer to B than the one before`;
}
