// "More like this" for one track, and the explain view under a neighbour.

import { $, api, clock, el, labelOf, state, titleOf, track } from "./core.js";
import { showList, showTab } from "./lists.js";


export async function showSimilar(id, { stay = false } = {}) {
  if (!stay) showTab("similar");
  state.similarQuery = id;
  const t = track(id);
  const card = $("#similar-query");
  card.classList.remove("empty");
  card.replaceChildren(
    el("span", { class: "label", text: "Sounds like " }),
    el("button", { class: "link", "data-action": "play-query", title: "Play it", "aria-label": `Play ${labelOf(t)}`, text: `▶ ${labelOf(t)}` }),
    el("button", { class: "small", "data-action": "radio-query", title: "Radio from this track", "aria-label": `Radio from this track: ${labelOf(t)}`, text: "∿ Radio" }));
  if (state.searchable !== undefined && state.searchable <= 1) {
    showList("similar", [], "The library holds no other track to compare it with");
    return;
  }
  $("#similar-info").textContent = "Listening for neighbours…";
  // The server refuses more neighbours than the library has other tracks.
  const k = Math.min(Number($("#similar-k").value), state.searchable ? state.searchable - 1 : Infinity);
  const params = new URLSearchParams({ k });
  if ($("#similar-other-artists").checked) params.set("other_artists", "true");
  if ($("#similar-other-albums").checked) params.set("other_albums", "true");
  try {
    const found = await api(`/api/tracks/${id}/similar?${params}`);
    if (state.similarQuery !== id) return;
    showList("similar", found.items, found.items.length ? `${found.items.length} nearest tracks · press “why?” to hear which parts match` : "No neighbours with these options");
  } catch (e) {
    $("#similar-info").textContent = "";
    showList("similar", [], "");
  }
}

function spanBar(span, duration, label, id) {
  const total = duration || Math.max(span[1], 1);
  const left = Math.min(100, (100 * span[0]) / total), width = Math.max(1.5, Math.min(100 - left, (100 * (span[1] - span[0])) / total));
  return el("div", { class: "tl" },
    el("span", { class: "tl-label", text: label }),
    el("div", { class: "bar", title: `${clock(span[0])}–${clock(span[1])} of ${clock(total)}` },
      el("span", { class: "seg", style: `left:${left}%;width:${width}%` })),
    el("button", { class: "time", "data-play": id, "data-at": span[0], title: "Play from here", "aria-label": `Play ${label === "A" ? "track A" : "track B"} from ${clock(span[0])}`, text: `${clock(span[0])}–${clock(span[1])}` }));
}

export async function toggleExplain(li, id) {
  const open = li.querySelector(".explain");
  if (open) { open.remove(); return; }
  const a = state.similarQuery;
  const box = el("div", { class: "explain", "data-testid": "explain" }, el("div", { class: "explain-head", text: "Finding the moments that match…" }));
  li.append(box);
  try {
    const found = await api(`/api/explain?a=${a}&b=${id}&top=5`);
    const ta = track(a), tb = track(id);
    box.replaceChildren(
      el("div", { class: "explain-head", text: found.items.length ? `Moments that sound alike: “${titleOf(ta)}” (A) and this track (B)` : "No segment pairs to compare" }),
      ...found.items.map((m) => el("div", { class: "explain-pair", "data-testid": "explain-pair" },
        spanBar(m.a_span, ta.duration, "A", a),
        spanBar(m.b_span, tb.duration, "B", id),
        el("span", { class: "sim", title: "Similarity of the two moments (cosine)", text: m.similarity.toFixed(2) }))));
  } catch (e) {
    box.replaceChildren(el("div", { class: "explain-head", text: e.message }));
  }
}

// ---------------------------------------------------------------------------------------------
