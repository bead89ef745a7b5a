// minimind interview drills: runs in the browser from window.MINIMIND_BANK (written by docs/build.py).
// choice: pick an option, see its feedback; numeric: type a number, checked against the value the library
// computed within the item's tolerance; open: reveal the answer and its key points, grade yourself;
// code: reveal the reference solution (the terminal quiz runs your code). Progress: localStorage.
(function () {
  "use strict";
  var STORE = "minimind.drills.v1";
  var bank = window.MINIMIND_BANK;
  var app = document.getElementById("drills-app");
  if (!app) return;
  if (!bank || !bank.items) { app.textContent = "The question bank (_static/bank.js) did not load."; return; }

  function load() { try { return JSON.parse(window.localStorage.getItem(STORE) || "{}"); } catch (e) { return {}; } }
  function save(p) { try { window.localStorage.setItem(STORE, JSON.stringify(p)); } catch (e) { /* private mode */ } }
  var progress = load();

  function el(tag, attrs, children) {
    var n = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") n.textContent = attrs[k];
      else if (k === "cls") n.className = attrs[k];
      else n.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) n.appendChild(c); });
    return n;
  }

  function params() {
    var out = {}, q = window.location.search.replace(/^\?/, "");
    q.split("&").forEach(function (kv) {
      if (!kv) return;
      var i = kv.indexOf("=");
      out[decodeURIComponent(i < 0 ? kv : kv.slice(0, i))] = decodeURIComponent(i < 0 ? "" : kv.slice(i + 1));
    });
    return out;
  }

  var P = params();
  var state = { topic: P.topic || "", kind: P.kind || "", chapter: P.chapter || "", item: P.item || "", zh: true };
  var topics = {};
  (bank.topics || []).forEach(function (t) { topics[t.id] = t; });

  function record(id, ok) {
    progress[id] = { ok: !!ok, t: Date.now() };
    save(progress);
    updateScore();
  }

  var scoreEl = el("span", { cls: "drills-score" });
  function updateScore() {
    var ids = Object.keys(progress), right = ids.filter(function (k) { return progress[k].ok; }).length;
    scoreEl.textContent = "In this browser: " + right + " right of " + ids.length + " answered";
  }

  function feedback(box, ok, text) {
    box.className = "drill-feedback " + (ok === null ? "info" : ok ? "right" : "wrong");
    box.textContent = text;
    box.hidden = false;
  }

  function parseNumber(text, unit) {
    var s = String(text).trim();
    if (unit && s.toLowerCase().slice(-unit.length) === unit.toLowerCase()) s = s.slice(0, -unit.length);
    s = s.replace(/[,_\s]/g, "");
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(s)) return NaN;
    return Number(s);
  }

  function isClose(a, b, rel, abs) { return Math.abs(a - b) <= Math.max(rel * Math.max(Math.abs(a), Math.abs(b)), abs); }

  function fmt(x) { return Number(x).toLocaleString("en-US", { maximumSignificantDigits: 4 }); }

  function kwargsText(kw) {
    return Object.keys(kw || {}).map(function (k) { return k + "=" + JSON.stringify(kw[k]); }).join(", ");
  }

  // The bank's TOML wraps long answers at a fixed width. Join a paragraph's lines (a space between words, nothing
  // between two CJK characters) and keep blank lines, list items and indented code as they are.
  var CJK = /[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]/;
  function unwrap(text) {
    return String(text || "").trim().split(/\n\s*\n/).map(function (para) {
      var lines = para.split("\n"), out = lines[0];
      for (var i = 1; i < lines.length; i++) {
        var line = lines[i];
        if (/^\s*([-*•]|\d+[.)])\s/.test(line) || /^\s{4}/.test(line) || /^\s{4}/.test(lines[i - 1])) { out += "\n" + line; continue; }
        var a = out.slice(-1), b = line.trim().charAt(0);
        out += (CJK.test(a) && CJK.test(b) ? "" : " ") + line.trim();
      }
      return out;
    }).join("\n\n");
  }

  function answerBlock(item) {
    var box = el("div", { cls: "drill-answer" });
    box.appendChild(el("p", { text: unwrap(item.answer_en) }));
    if (state.zh && item.answer_zh) box.appendChild(el("p", { cls: "drill-zh", text: unwrap(item.answer_zh) }));
    var kp = item.key_points_en || [];
    if (kp.length) {
      box.appendChild(el("strong", { text: "Key points" }));
      box.appendChild(el("ul", {}, kp.map(function (k, i) {
        var zh = state.zh && item.key_points_zh ? item.key_points_zh[i] : "";
        return el("li", { text: k + (zh ? "  /  " + zh : "") });
      })));
    }
    return box;
  }

  function choiceBody(item, card, fb) {
    var opts = el("div", { cls: "drill-options" });
    var buttons = (item.options || []).map(function (o, i) {
      var b = el("button", { type: "button", "data-index": String(i),
                             text: (i + 1) + ". " + o.en + (state.zh && o.zh ? "  /  " + o.zh : "") });
      b.addEventListener("click", function () {
        buttons.forEach(function (x) { x.classList.remove("chosen-right", "chosen-wrong", "is-answer"); });
        b.classList.add(o.correct ? "chosen-right" : "chosen-wrong");
        var right = item.options.findIndex(function (x) { return x.correct; });
        if (!o.correct && right >= 0) buttons[right].classList.add("is-answer");
        var msg = (o.correct ? "\u2713 " : "\u2717 ") + (o.feedback_en || "");
        if (!o.correct && right >= 0) msg += " (The answer is " + (right + 1) + ".)";
        if (state.zh && o.feedback_zh) msg += "\n" + o.feedback_zh;
        feedback(fb, o.correct, msg);
        if (!card.dataset.answered) { card.dataset.answered = "1"; record(item.id, o.correct); }
      });
      return b;
    });
    buttons.forEach(function (b) { opts.appendChild(b); });
    return [opts];
  }

  function numericBody(item, card, fb) {
    var input = el("input", { type: "text", inputmode: "decimal", "aria-label": "your answer",
                              placeholder: item.unit ? "number, in " + item.unit : "a number" });
    var check = el("button", { type: "button", cls: "drill-check", text: "Check" });
    function run() {
      var got = parseNumber(input.value, item.unit || "");
      if (isNaN(got)) { feedback(fb, null, "Type a number, e.g. 1,024 or 3.2e1" + (item.unit ? " (in " + item.unit + ")" : "") + "."); return; }
      var want = Number(item.answer), ok = isClose(got, want, Number(item.rel_tol || 0), Number(item.abs_tol || 0));
      var unit = item.unit ? " " + item.unit : "";
      var tol = item.rel_tol >= 0.005 ? "\u00b1" + Math.round(item.rel_tol * 100) + "%" : "rel. tol. " + item.rel_tol;
      var msg = (ok ? "Right: " : "Not quite: the answer is ") + fmt(want) + unit + " (" + tol + ")";
      if (item.function) msg += "; computed by " + item.function + "(" + kwargsText(item.kwargs) + ")";
      feedback(fb, ok, msg + ".");
      if (!card.dataset.answered) { card.dataset.answered = "1"; record(item.id, ok); }
    }
    check.addEventListener("click", run);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") run(); });
    var reveal = revealButton(item, card);
    return [el("div", { cls: "drill-actions" }, [input, check, reveal])];
  }

  function revealButton(item, card, label) {
    var b = el("button", { type: "button", cls: "drill-reveal", text: label || "Reveal answer" });
    b.addEventListener("click", function () {
      if (card.querySelector(".drill-answer")) return;
      card.appendChild(answerBlock(item));
      if (item.kind === "open") card.appendChild(selfGrade(item, card));
    });
    return b;
  }

  function selfGrade(item, card) {
    var yes = el("button", { type: "button", text: "I covered the key points" });
    var no = el("button", { type: "button", text: "I missed some" });
    yes.addEventListener("click", function () { record(item.id, true); row.textContent = "Recorded: covered."; });
    no.addEventListener("click", function () { record(item.id, false); row.textContent = "Recorded: to review."; });
    var row = el("div", { cls: "drill-actions" }, [yes, no]);
    return row;
  }

  function codeBody(item, card) {
    var parts = [];
    if (item.starter) parts.push(el("pre", { text: item.starter }));
    var b = el("button", { type: "button", cls: "drill-reveal", text: "Reveal the reference solution" });
    b.addEventListener("click", function () {
      if (card.querySelector(".drill-solution")) return;
      card.appendChild(el("pre", { cls: "drill-solution", text: item.solution || "" }));
      card.appendChild(answerBlock(item));
    });
    parts.push(el("div", { cls: "drill-actions" }, [b,
      el("span", { cls: "drill-link", text: "Run and grade your code in the terminal: minimind quiz --kind code" })]));
    return parts;
  }

  function card(item) {
    var c = el("div", { cls: "drill", id: "item-" + item.id, "data-kind": item.kind });
    var t = topics[item.topic];
    var head = el("div", { cls: "drill-head" }, [
      el("span", { text: item.id }), el("span", { text: item.kind }),
      el("span", { text: t ? t.title_en : item.topic }),
      el("span", { text: "difficulty " + item.difficulty })]);
    if (item.link) {
      var label = "Chapter " + item.chapter + (item.section ? ": " + item.section.replace(/`/g, "") : "");
      head.appendChild(el("a", { cls: "drill-link", href: item.link, text: label }));
    }
    c.appendChild(head);
    c.appendChild(el("p", { cls: "drill-q", text: item.question_en }));
    if (state.zh && item.question_zh) c.appendChild(el("p", { cls: "drill-zh", text: item.question_zh }));
    var fb = el("div", { cls: "drill-feedback", role: "status" });
    fb.hidden = true;
    var body = item.kind === "choice" ? choiceBody(item, c, fb)
             : item.kind === "numeric" ? numericBody(item, c, fb)
             : item.kind === "code" ? codeBody(item, c)
             : [el("div", { cls: "drill-actions" }, [revealButton(item, c)])];
    body.forEach(function (n) { c.appendChild(n); });
    c.appendChild(fb);
    return c;
  }

  function select(label, key, options) {
    var s = el("select", { "aria-label": label, "data-filter": key });
    options.forEach(function (o) {
      var opt = el("option", { value: o[0], text: o[1] });
      if (String(state[key]) === String(o[0])) opt.selected = true;
      s.appendChild(opt);
    });
    s.addEventListener("change", function () { state[key] = s.value; state.item = ""; render(); });
    return el("label", { text: label }, [s]);
  }

  var list = el("div", { cls: "drills-list" });
  function controls() {
    var chapters = {};
    bank.items.forEach(function (i) { if (i.chapter) chapters[i.chapter] = true; });
    var chOpts = [["", "all"]].concat(Object.keys(chapters).map(Number).sort(function (a, b) { return a - b; })
      .map(function (n) {
        var ch = (bank.chapters || {})[String(n)];
        return [String(n), n + (ch ? " " + ch.title : "")];
      }));
    var zh = el("input", { type: "checkbox" });
    zh.checked = state.zh;
    zh.addEventListener("change", function () { state.zh = zh.checked; render(); });
    return el("div", { cls: "drills-controls" }, [
      select("Topic", "topic", [["", "all"]].concat((bank.topics || []).map(function (t) { return [t.id, t.title_en]; }))),
      select("Kind", "kind", [["", "all"], ["choice", "multiple choice"], ["numeric", "numbers"],
                              ["open", "open"], ["code", "code"]]),
      select("Chapter", "chapter", chOpts),
      el("label", { text: "中文 " }, [zh]),
      scoreEl]);
  }

  function render() {
    list.textContent = "";
    var items = bank.items.filter(function (i) {
      if (state.item) return i.id === state.item;
      return (!state.topic || i.topic === state.topic) && (!state.kind || i.kind === state.kind) &&
             (!state.chapter || String(i.chapter) === String(state.chapter));
    });
    var note = state.item ? "Question " + state.item + ". " : items.length + " questions. ";
    var info = el("p", { cls: "drills-count", text: note });
    if (state.item) {
      var all = el("a", { href: "drills.html", text: "Show all questions" });
      info.appendChild(all);
    }
    list.appendChild(info);
    items.forEach(function (i) { list.appendChild(card(i)); });
  }

  app.textContent = "";
  app.appendChild(controls());
  app.appendChild(list);
  updateScore();
  render();
})();
