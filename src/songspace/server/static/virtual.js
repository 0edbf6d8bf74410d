// A virtualised list: of `count` rows of one height, only those in view (and a few around them)
// are in the page, so a list of 100,000 tracks costs what a list of 50 does. The <ol> keeps its
// full height through two empty rows, above and below the ones drawn, as tall as the rows they
// stand for, so the scroll bar, scrolling and jumping anywhere behave as in a plain list.
// Whichever box scrolls (the list on a desktop, the whole panel on a phone), the rows drawn are
// those inside it.
//
// Rows come from `rowOf(i)` (an <li>), or `missing(i)` while row i is not loaded; `need(from,
// to)` is asked for the rows in view that are missing; `onRange(first, last)` hears which rows
// are in view. The keyboard moves between rows: ↑/↓, PageUp/PageDown, Home/End on a row's
// control focus the same control of another row.

const OVERSCAN = 8;      // rows drawn beyond each edge of the view
const FIRST_DRAW = 40;   // rows drawn while the list is not on screen (a hidden tab)

export class VirtualList {
  constructor(ol, { rowOf, missing, need = () => {}, onRange = () => {} }) {
    Object.assign(this, { ol, rowOf, missing, need, onRange });
    this.count = 0;
    this.first = 0; this.last = 0;   // rows [first, last) are drawn
    this.rowHeight = 0;
    this.pending = false;
    const later = () => this.soon();
    ol.addEventListener("scroll", later, { passive: true });
    const panel = ol.closest(".panel");
    if (panel) panel.addEventListener("scroll", later, { passive: true });
    window.addEventListener("resize", () => { this.rowHeight = 0; this.soon(); });
    ol.addEventListener("keydown", (e) => this.onKey(e));
    ol.classList.add("virtual");
    this.above = spacer(); this.below = spacer();
    ol.replaceChildren(this.above, this.below);
  }

  row(i) { // the drawn <li> of row i
    return this.ol.children[i - this.first + 1];
  }

  // A new list of `count` rows, drawn from the top.
  reset(count) {
    this.count = count;
    this.first = this.last = 0;
    this.ol.replaceChildren(this.above, this.below);
    this.ol.scrollTop = 0;
    this.render();
  }

  // Rows i in [from, to) were loaded (or changed): draw them again where they are drawn.
  refresh(from = 0, to = this.count) {
    for (let i = Math.max(from, this.first); i < Math.min(to, this.last); i++) {
      const old = this.row(i);
      const focused = old.contains(document.activeElement) ? document.activeElement.dataset.action || "play" : null;
      const fresh = this.make(i);
      old.replaceWith(fresh);
      if (focused) (fresh.querySelector(`[data-action="${focused}"]`) || fresh).focus({ preventScroll: true });
    }
  }

  soon() {
    if (this.pending) return;
    this.pending = true;
    requestAnimationFrame(() => { this.pending = false; this.render(); });
  }

  make(i) {
    const li = this.rowOf(i) || this.missing(i);
    li.dataset.index = i;
    return li;
  }

  height() {
    if (!this.rowHeight) {
      const row = this.ol.querySelector("li.track");
      const h = row ? row.getBoundingClientRect().height : 0;
      if (h > 0) this.rowHeight = h;
    }
    return this.rowHeight || 48;
  }

  // The band of the list's content (in px from its first row) that is on screen, or null when
  // the list is not laid out (its tab hidden).
  band() {
    const r = this.ol.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return null;
    let top = 0, bottom = window.innerHeight;
    // The list's own box clips only when the list scrolls itself (on a phone the panel scrolls,
    // and the rows may run past the list's box).
    if (/auto|scroll/.test(getComputedStyle(this.ol).overflowY)) { top = Math.max(top, r.top); bottom = Math.min(bottom, r.bottom); }
    const panel = this.ol.closest(".panel");
    if (panel) { const p = panel.getBoundingClientRect(); top = Math.max(top, p.top); bottom = Math.min(bottom, p.bottom); }
    const origin = r.top - this.ol.scrollTop + this.ol.clientTop;
    return [top - origin, Math.max(top, bottom) - origin];
  }

  render(around = null) {
    const n = this.count, h = this.height();
    let first, last, seen = null;
    const band = this.band();
    if (around !== null) { first = around - OVERSCAN; last = around + OVERSCAN + 1; }
    else if (band === null) { if (this.last > this.first) return; first = 0; last = FIRST_DRAW; }
    else {
      seen = [Math.max(0, Math.floor(band[0] / h)), Math.min(n, Math.ceil(band[1] / h))];
      first = seen[0] - OVERSCAN; last = seen[1] + OVERSCAN;
    }
    first = Math.max(0, Math.min(first, n)); last = Math.max(first, Math.min(last, n));
    this.place(first, last);
    const rowHeight = this.rowHeight === 0 && last > first ? this.height() : h; // the first rows drawn tell the height
    this.above.style.height = `${first * rowHeight}px`;
    this.below.style.height = `${(n - last) * rowHeight}px`;
    const missing = [];
    for (let i = first; i < last; i++) if (this.row(i).classList.contains("placeholder")) missing.push(i);
    if (missing.length) this.need(missing[0], missing[missing.length - 1] + 1);
    this.onRange(...(seen && seen[1] > seen[0] ? seen : [first, last]));
  }

  // Draw rows [first, last): keep the rows already drawn there (a focused control stays
  // focused), drop the others, add the new ones above and below.
  place(first, last) {
    const ol = this.ol;
    // A focused row scrolled away: let go of the focus first (Chromium moves the scroll position
    // when it removes the focused element).
    const focused = document.activeElement && document.activeElement !== ol && ol.contains(document.activeElement)
      ? Number(document.activeElement.closest("li").dataset.index) : null;
    if (focused !== null && (focused < first || focused >= last)) document.activeElement.blur();
    if (last <= this.first || first >= this.last) {
      ol.replaceChildren(this.above, ...range(first, last).map((i) => this.make(i)), this.below);
    } else {
      for (let i = this.first; i < first; i++) this.above.nextElementSibling.remove();
      for (let i = last; i < this.last; i++) this.below.previousElementSibling.remove();
      this.above.after(...range(first, Math.min(this.first, last)).map((i) => this.make(i)));
      this.below.before(...range(Math.max(this.last, first), last).map((i) => this.make(i)));
    }
    this.first = first; this.last = last;
  }

  // Row i drawn and scrolled into view; its <li>.
  show(i) {
    if (i < this.first || i >= this.last) this.render(i);
    const li = this.row(i);
    li.scrollIntoView({ block: "nearest" });
    return li;
  }

  onKey(e) {
    const li = e.target.closest("li");
    if (!li || li.parentElement !== this.ol || li.dataset.index === undefined) return;
    const at = Number(li.dataset.index);
    const page = Math.max(1, Math.floor((this.band() ? this.band()[1] - this.band()[0] : 400) / this.height()) - 1);
    const to = { ArrowDown: at + 1, ArrowUp: at - 1, PageDown: at + page, PageUp: at - page, Home: 0, End: this.count - 1 }[e.key];
    if (to === undefined || e.altKey || e.ctrlKey || e.metaKey) return;
    e.preventDefault();
    e.stopPropagation();
    const target = this.show(Math.max(0, Math.min(this.count - 1, to)));
    const action = e.target.dataset.action;
    (target.querySelector(action ? `[data-action="${action}"]` : "[data-action=play]") || target).focus({ preventScroll: true });
  }
}

function spacer() {
  return Object.assign(document.createElement("li"), { className: "spacer", ariaHidden: "true" });
}

function range(from, to) {
  const out = [];
  for (let i = from; i < to; i++) out.push(i);
  return out;
}
