function (uid) {
  var root = document.getElementById(uid);
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.attn-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";   // the SVG namespace name, not an address that is fetched
  var ROW = 22, TOP = 26, GAP = 140;
  var st = {entry: 0, layer: 0, heads: [], sel: null, pinned: false};

  function make(tag, attrs, parent, text) {
    var e = ["svg", "g", "line", "rect", "text", "title"].indexOf(tag) >= 0 ?
      document.createElementNS(SVG, tag) : document.createElement(tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function E() { return data.entries[st.entry]; }
  function weight(e, l, h, i, j) {   // the weight of query i on key j, in [0, 1]
    var s = e.shape;
    return e.w[((l * s[1] + h) * s[2] + i) * s[3] + j] / 1000;
  }
  function color(h) { return data.colors[h % data.colors.length]; }
  function ink(hex) {   // black or white, whichever reads better on the colour `hex` (WCAG contrast ratio)
    var c = [1, 3, 5].map(function (i) {
      var v = parseInt(hex.slice(i, i + 2), 16) / 255;
      return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    var lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
    return (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05) ? "#000" : "#fff";
  }
  function short(t) { return t.length > 24 ? t.slice(0, 23) + "\u2026" : t; }

  if (data.title) make("div", {"class": "attn-title"}, root, data.title).style.fontWeight = "bold";
  var controls = make("div", {"class": "attn-controls"}, root);
  var kindSel = make("select", {"class": "attn-kind", "aria-label": "kind of attention"}, controls);
  data.entries.forEach(function (e, k) { make("option", {value: k}, kindSel, e.name); });
  if (data.entries.length < 2) kindSel.style.display = "none";
  var layerSel = make("select", {"class": "attn-layer", "aria-label": "layer"}, controls);
  var headBox = make("span", {"class": "attn-heads"}, controls);
  var allBtn = make("button", {"class": "attn-all", type: "button"}, controls, "all heads");
  // a group, not an image: its tokens are buttons (focusable, pressed with Enter); its name says what it draws
  var svg = make("svg", {"class": "attn-svg", role: "group"}, root);
  var status = make("div", {"class": "attn-status", role: "status", "aria-live": "polite"}, root);
  var lines = null, qTok = [], kTok = [];

  function build() {   // a new kind: layer options, head buttons, tokens
    var e = E();
    st.layer = e.layer; st.heads = e.head_names.map(function (_, h) { return h; });
    st.sel = null; st.pinned = false;
    layerSel.innerHTML = "";
    e.layer_names.forEach(function (n, l) { make("option", {value: l}, layerSel, n); });
    layerSel.value = st.layer;
    layerSel.style.display = e.layer_names.length < 2 ? "none" : "";
    headBox.innerHTML = "";
    e.head_names.forEach(function (n, h) {
      var b = make("button", {"class": "attn-head", type: "button", "data-head": h, title: n}, headBox,
                   String(h + 1));
      b.style.borderColor = color(h);
      b.addEventListener("click", function (ev) { clickHead(h, ev.ctrlKey || ev.metaKey || ev.shiftKey); });
    });
    allBtn.style.display = e.head_names.length < 2 ? "none" : "";
    var width = function (toks) {
      return Math.min(220, Math.max(40, 16 + 7.5 * Math.max.apply(null, toks.map(function (t) { return short(t).length; }))));
    };
    var wq = width(e.queries), wk = width(e.keys), n = Math.max(e.queries.length, e.keys.length);
    svg.innerHTML = "";
    svg.setAttribute("width", wq + GAP + wk);
    svg.setAttribute("height", TOP + n * ROW);
    svg.setAttribute("viewBox", "0 0 " + (wq + GAP + wk) + " " + (TOP + n * ROW));
    make("text", {x: wq - 6, y: 14, "text-anchor": "end", "font-style": "italic", fill: "currentColor"}, svg, "query");
    make("text", {x: wq + GAP + 6, y: 14, "font-style": "italic", fill: "currentColor"}, svg, "key");
    lines = make("g", {"class": "attn-lines"}, svg);
    function tokens(toks, side, x0, w) {
      return toks.map(function (t, i) {
        // a button named by its title (the whole token, which the drawing may cut short) and its side
        var g = make("g", {"class": "attn-token", "data-side": side, "data-index": i, tabindex: 0, role: "button"}, svg);
        make("title", {}, g, (side === "q" ? "query " : "key ") + t);
        make("rect", {x: x0, y: TOP + i * ROW, width: w, height: ROW - 2, rx: 3, fill: "#1f77b4", "fill-opacity": 0}, g);
        make("text", {x: side === "q" ? x0 + w - 6 : x0 + 6, y: TOP + i * ROW + ROW / 2 + 4,
                      "text-anchor": side === "q" ? "end" : "start"}, g, short(t));
        g.addEventListener("mouseenter", function () { if (!st.pinned) { st.sel = [side, i]; draw(); } });
        g.addEventListener("mouseleave", function () { if (!st.pinned) { st.sel = null; draw(); } });
        g.addEventListener("click", function () { clickToken(side, i); });
        g.addEventListener("keydown", function (ev) {
          if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); clickToken(side, i); }
        });
        return g;
      });
    }
    qTok = tokens(e.queries, "q", 0, wq);
    kTok = tokens(e.keys, "k", wq + GAP, wk);
    svg.setAttribute("data-wq", wq);
    draw();
  }

  function clickToken(side, i) {
    var same = st.sel && st.sel[0] === side && st.sel[1] === i;
    if (st.pinned && same) { st.pinned = false; st.sel = null; }
    else { st.pinned = true; st.sel = [side, i]; }
    draw();
  }
  function clickHead(h, toggle) {
    var all = E().head_names.map(function (_, k) { return k; });
    if (toggle) {
      var at = st.heads.indexOf(h);
      if (at < 0) st.heads.push(h); else if (st.heads.length > 1) st.heads.splice(at, 1);
      st.heads.sort(function (a, b) { return a - b; });
    } else {
      st.heads = st.heads.length === 1 && st.heads[0] === h ? all : [h];
    }
    draw();
  }

  function draw() {   // lines, shades, buttons and the status line for the current state
    var e = E(), l = st.layer, H = st.heads, wq = +svg.getAttribute("data-wq");
    var sel = st.sel, L = e.queries.length, S = e.keys.length;
    lines.innerHTML = "";
    H.forEach(function (h) {
      for (var i = 0; i < L; i++) {
        if (sel && sel[0] === "q" && sel[1] !== i) continue;
        for (var j = 0; j < S; j++) {
          if (sel && sel[0] === "k" && sel[1] !== j) continue;
          var w = weight(e, l, h, i, j);
          if (w < 0.01) continue;
          make("line", {"class": "attn-line", "data-head": h, "data-q": i, "data-k": j,
                        x1: wq, y1: TOP + i * ROW + ROW / 2 - 1, x2: wq + GAP, y2: TOP + j * ROW + ROW / 2 - 1,
                        stroke: color(h), "stroke-width": 2, "stroke-opacity": w.toFixed(3)}, lines);
        }
      }
    });
    function mean(i, j) {
      var s = 0;
      H.forEach(function (h) { s += weight(e, l, h, i, j); });
      return s / H.length;
    }
    var shadeColor = H.length === 1 ? color(H[0]) : "#1f77b4";
    [[qTok, "q"], [kTok, "k"]].forEach(function (pair) {
      pair[0].forEach(function (g, i) {
        var on = sel && sel[0] === pair[1] && sel[1] === i, a = 0;
        if (sel && sel[0] !== pair[1]) a = pair[1] === "k" ? mean(sel[1], i) : mean(i, sel[1]);
        g.setAttribute("class", "attn-token" + (on ? " attn-selected" : ""));
        g.setAttribute("aria-pressed", on && st.pinned ? "true" : "false");
        g.setAttribute("data-shade", a.toFixed(3));
        var r = g.querySelector("rect");
        r.setAttribute("fill", shadeColor);
        r.setAttribute("fill-opacity", on ? 0.15 : (0.85 * a).toFixed(3));
      });
    });
    headBox.querySelectorAll("button").forEach(function (b) {
      var h = +b.getAttribute("data-head"), on = H.indexOf(h) >= 0;
      b.setAttribute("aria-pressed", on);
      b.style.background = on ? color(h) : "transparent";
      b.style.color = on ? ink(color(h)) : "";   // white on a dark head colour, black on a light one
    });
    // one map (e.g. a mean saved in place of the heads) is named, not "all heads"
    var heads = H.length === e.head_names.length && H.length > 1 ? "all heads" :
      H.map(function (h) { return e.head_names[h]; }).join(", ");
    var where = e.layer_names[l] + ", " + heads;
    svg.setAttribute("aria-label", "Attention weights, " + where + ": " + L + " queries on the left, " + S +
      " keys on the right, a line from a query to each key it attends to, darker for a larger weight");
    if (!sel) { status.textContent = where + ". Hover over or click a token; click a head to show it alone."; return; }
    var other = sel[0] === "q" ? e.keys : e.queries, n = other.length, ranked = [];
    for (var k = 0; k < n; k++) ranked.push([k, sel[0] === "q" ? mean(sel[1], k) : mean(k, sel[1])]);
    ranked.sort(function (a, b) { return b[1] - a[1]; });
    var own = (sel[0] === "q" ? e.queries : e.keys)[sel[1]];
    status.textContent = where + (sel[0] === "q" ? ". Query \u201c" + own + "\u201d attends to: " :
                                  ". Key \u201c" + own + "\u201d is attended by: ") +
      ranked.slice(0, 3).map(function (p) { return "\u201c" + other[p[0]] + "\u201d " + p[1].toFixed(2); }).join(", ") +
      (st.pinned ? " (click the token again to release it)" : "");
  }

  kindSel.addEventListener("change", function () { st.entry = +kindSel.value; build(); });
  layerSel.addEventListener("change", function () { st.layer = +layerSel.value; draw(); });
  allBtn.addEventListener("click", function () {
    st.heads = E().head_names.map(function (_, h) { return h; }); draw();
  });
  build();
}
