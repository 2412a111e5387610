// nspzero page: builds POST /classify requests from the form, draws the answer as bars.
// No framework, no external requests: everything goes to the server that served this page.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    mode: "text",
    limits: { max_texts: 256, max_labels: 256, max_text_chars: 20000 },
    variants: {},        // prompt key or set name -> variant (from GET /prompts)
    fileTexts: null,     // [{line, text}] parsed from the uploaded file
    fileName: "",
    fileResults: null,   // API results, in file order
    fileReads: 0,        // how many times the file was (re)read: only the latest read counts
    prompt: "",          // the prompt set chosen before the last change
    typed: null,         // the user's own labels/template/placement, kept while a prompt set is chosen
  };
  // The request's field names (the `field` of a 422 answer) -> the form field that holds them.
  const API_FIELDS = {
    texts: "text", text: "text", labels: "labels", labels_per_text: "labels", template: "template",
    templates: "template", placement: "placement",
    long_text: "long-text", aggregate: "long-text", overlap: "long-text", threshold: "threshold",
    multi_label: "multi-label", prompt: "prompt",
  };

  // ---------- helpers ----------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else if (k === "style") node.style.cssText = v;  // CSSOM, which a CSP without inline styles allows
      else node.setAttribute(k, v);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function splitList(value) {
    return value.split(/[,，、\n]/).map((s) => s.trim()).filter((s) => s.length > 0);
  }

  /** "体育, 财经" -> ["体育", "财经"]; "pos=很好|不错, neg=很差" -> {pos: ["很好", "不错"], neg: ["很差"]}. */
  function parseLabels(value) {
    const items = splitList(value);
    if (!items.some((s) => s.includes("="))) return items;
    const out = {};
    for (const item of items) {
      const [name, words] = item.includes("=") ? [item.slice(0, item.indexOf("=")).trim(), item.slice(item.indexOf("=") + 1)] : [item, item];
      out[name] = words.split("|").map((w) => w.trim()).filter((w) => w.length > 0);
    }
    return out;
  }

  // ---------- errors, shown next to the field they concern ----------
  /** The form field an API error concerns, from the `field` of the server's answer ("texts.3" -> the
   * text box, or the file in file mode); none (the error shows under the form) when it names none. */
  function fieldOf(apiField) {
    if (typeof apiField !== "string" || !apiField) return null;
    const best = API_FIELDS[(apiField.match(/^[A-Za-z_]+/) || [""])[0]] || null;
    if (best === "text" && state.mode === "file") return "file";
    if (best === "labels" && !$("labels").value.trim() && $("prompt").value) return "prompt";
    return best;
  }

  function clearError() {
    const box = $("error");
    box.hidden = true;
    box.textContent = "";
    document.querySelectorAll("[aria-invalid]").forEach((n) => n.removeAttribute("aria-invalid"));
  }

  function showError(message, field) {
    clearError();
    const box = $("error");
    const container = field ? $("field-" + field) : null;
    if (container) {
      container.append(box);
      const input = $(field) || container.querySelector("input, select, textarea");
      if (input) input.setAttribute("aria-invalid", "true");
      box.dataset.field = field;
    } else {
      $("form").append(box);
      box.dataset.field = "";
    }
    box.textContent = message;
    box.hidden = false;
  }

  class ApiError extends Error {
    constructor(status, detail, field) { super(detail); this.status = status; this.field = field || null; }
  }

  async function postClassify(body) {
    let response;
    try {
      response = await fetch("classify", {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, "cannot reach the server (" + err.message + "); is `nspzero serve` still running?");
    }
    const raw = await response.text();
    let data = null;
    try { data = JSON.parse(raw); } catch (_) { /* not JSON: reported below */ }
    if (!response.ok) {
      const detail = data && typeof data.detail === "string" ? data.detail
        : "HTTP " + response.status + ": " + (raw.slice(0, 300) || response.statusText);
      throw new ApiError(response.status, detail, data && typeof data.field === "string" ? data.field : null);
    }
    if (!data || !Array.isArray(data.results)) throw new ApiError(response.status, "unexpected answer: " + raw.slice(0, 300));
    return data;
  }

  // ---------- the request ----------
  function requestBody(texts) {
    const body = { texts: texts };
    const prompt = $("prompt").value;
    const labels = $("labels").value.trim();
    if (prompt) {
      body.prompt = prompt;
      if (labels) body.labels = splitList(labels);
    } else if (labels || !state.tunedLabels) {  // a tuned model fills labels and templates left out
      body.labels = parseLabels(labels);
    }
    const template = $("template").value;
    if (template.trim()) body.template = template;
    if ($("placement").value) body.placement = $("placement").value;
    const longText = $("long-text").value;
    if (longText !== "truncate") {
      body.long_text = "chunk";
      body.aggregate = longText === "chunk-mean" ? "mean" : "max";
    }
    if ($("multi-label").checked) {
      body.multi_label = true;
      const t = $("threshold").value.trim();
      body.threshold = t === "" ? null : (Number.isFinite(Number(t)) ? Number(t) : t);
    }
    return body;
  }

  function topLabels(result) {
    if (Array.isArray(result.label)) return result.label;
    return result.label === null || result.label === undefined ? [] : [result.label];
  }

  function sortedScores(result) {
    // JSON objects keep their order, but JS moves integer-like keys ("0", "1") first: sort by score.
    return Object.entries(result.scores).sort((a, b) => b[1] - a[1]);
  }

  // ---------- text mode ----------
  const FOLD_CHARS = 160;  // a longer text shows its start; the rest opens on a click

  function textBlock(text) {
    if (text.length <= FOLD_CHARS) return el("div", { class: "text", "data-testid": "result-text", text: text });
    return el("details", { class: "text", "data-testid": "result-text" },
      el("summary", { text: text.slice(0, FOLD_CHARS) + "… (" + text.length + " characters; show all)" }),
      el("div", { text: text }));
  }

  function labelName(label, variant) {
    // a prompt set's label ids (news_sports, "1") are shown by their first word: 体育 (news_sports)
    const words = variant && variant.labels ? variant.labels[label] : null;
    return words && words.length && words[0] !== label ? words[0] + " (" + label + ")" : label;
  }

  function renderResults(data, ms, variant) {
    const box = $("results");
    box.textContent = "";
    box.classList.remove("stale");
    const n = data.results.length;
    box.append(el("p", { class: "hint", "data-testid": "timing",
      text: n + " text" + (n === 1 ? "" : "s") + " classified in " + ms.toFixed(0) + " ms" }));
    for (const result of data.results) {
      const tops = topLabels(result);
      const answer = el("div", { class: "answer" });
      if (tops.length === 0) {
        answer.append("no label reaches the threshold");
      } else {
        answer.append((state.randomWeights ? "(random weights, meaningless) " : "") +
          (tops.length > 1 ? "labels over the threshold: " : "top label: "));
        for (const t of tops) {
          answer.append(el("span", { class: "top-label", "data-testid": "top-label", "data-label": t,
            text: labelName(t, variant) }));
        }
      }
      const bars = el("div", { class: "bars" });
      for (const [label, score] of sortedScores(result)) {
        const row = el("div", { class: "bar-row" + (tops.includes(label) ? " top" : ""), "data-testid": "result-row",
          "data-label": label, "data-score": String(score) });
        const pct = Math.max(0, Math.min(1, score)) * 100;
        row.append(el("span", { class: "bar-label", title: label, text: labelName(label, variant) }),
          el("span", { class: "bar-track" }, el("span", { class: "bar-fill", style: "width:" + pct.toFixed(2) + "%;display:block" })),
          el("span", { class: "bar-value", text: score.toFixed(4) }));
        bars.append(row);
      }
      box.append(el("div", { class: "result", "data-testid": "result" }, textBlock(result.text), answer, bars));
    }
  }

  async function classifyTexts() {
    const texts = $("text").value.split("\n").map((s) => s.trim()).filter((s) => s.length > 0);
    if (texts.length === 0) { showError("type a text to classify (one per line for several)", "text"); return; }
    if (texts.length > state.limits.max_texts) {
      showError(texts.length + " texts: the server takes at most " + state.limits.max_texts +
        " per request; use “Upload a file” for more", "text");
      return;
    }
    const t0 = performance.now();
    const body = requestBody(texts);
    const data = await postClassify(body);
    const ms = performance.now() - t0;
    $("json").textContent = JSON.stringify(data, null, 2);
    renderResults(data, ms, body.prompt ? state.variants[body.prompt] : null);
    $("status").textContent = "done in " + ms.toFixed(0) + " ms";
  }

  // ---------- file mode ----------
  function parseCSV(text, delimiter) {
    // RFC 4180: quoted fields may hold delimiters, quotes ("") and newlines. Returns [{line, cells}].
    const rows = [];
    let cells = [], cell = "", quoted = false, line = 1, rowLine = 1, i = 0;
    while (i < text.length) {
      const c = text[i];
      if (quoted) {
        if (c === '"' && text[i + 1] === '"') { cell += '"'; i += 2; continue; }
        if (c === '"') { quoted = false; i++; continue; }
        if (c === "\n") line++;
        cell += c; i++; continue;
      }
      if (c === '"' && cell === "") { quoted = true; i++; continue; }
      if (c === delimiter) { cells.push(cell); cell = ""; i++; continue; }
      if (c === "\r" && text[i + 1] === "\n") { i++; continue; }
      if (c === "\n" || c === "\r") {
        cells.push(cell); rows.push({ line: rowLine, cells: cells }); cells = []; cell = ""; line++; rowLine = line; i++; continue;
      }
      cell += c; i++;
    }
    if (quoted) throw new Error("line " + rowLine + ": a quoted field is never closed");
    if (cell !== "" || cells.length) { cells.push(cell); rows.push({ line: rowLine, cells: cells }); }
    return rows.filter((r) => r.cells.some((c) => c.trim() !== ""));
  }

  function parseFile(name, text) {
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    const ext = (name.split(".").pop() || "").toLowerCase();
    const field = $("text-field").value.trim() || "text";
    const out = [];
    if (ext === "jsonl" || ext === "json" || ext === "ndjson") {
      text.split(/\r?\n/).forEach((lineText, i) => {
        if (!lineText.trim()) return;
        let obj;
        try { obj = JSON.parse(lineText); } catch (err) { throw new Error("line " + (i + 1) + ": malformed JSON (" + err.message + "); each line must be one JSON object"); }
        if (obj === null || typeof obj !== "object" || Array.isArray(obj)) throw new Error("line " + (i + 1) + ": expected a JSON object");
        if (!(field in obj)) throw new Error("line " + (i + 1) + ": no field '" + field + "' (fields: " + (Object.keys(obj).join(", ") || "none") + "); set the text field");
        if (typeof obj[field] !== "string") throw new Error("line " + (i + 1) + ": field '" + field + "' is not a string");
        out.push({ line: i + 1, text: obj[field] });
      });
    } else if (ext === "csv" || ext === "tsv") {
      const rows = parseCSV(text, ext === "tsv" ? "\t" : ",");
      if (rows.length === 0) throw new Error("the file is empty");
      const header = rows[0].cells.map((c) => c.trim());
      const col = header.indexOf(field);
      if (col < 0) throw new Error("line 1: CSV has no column '" + field + "' (columns: " + header.join(", ") + "); set the text field");
      for (const row of rows.slice(1)) out.push({ line: row.line, text: row.cells[col] === undefined ? "" : row.cells[col] });
    } else {
      text.split(/\r?\n/).forEach((lineText, i) => { if (lineText.trim()) out.push({ line: i + 1, text: lineText }); });
    }
    for (const item of out) {
      if (!item.text.trim()) throw new Error("line " + item.line + ": the text is empty; remove or fill that line");
      if (item.text.length > state.limits.max_text_chars) {
        throw new Error("line " + item.line + ": the text has " + item.text.length + " characters; the server accepts at most " +
          state.limits.max_text_chars + " (nspzero serve --max-text-chars)");
      }
    }
    if (out.length === 0) throw new Error("no texts in " + name);
    return out;
  }

  function clearFileResults() {
    // another file (or a failed read or run) must never leave the previous file's answers as if current
    state.fileResults = null;
    $("file-table").textContent = "";
    $("file-results").hidden = true;
    $("json").textContent = "";
    $("status").textContent = "";
  }

  async function onFileChosen() {
    const generation = ++state.fileReads;  // a later read (the text field typed on) supersedes this one
    state.fileTexts = null;
    clearFileResults();
    const file = $("file").files[0];
    if (!file) { clearError(); $("file-info").textContent = ""; return; }
    let text;
    try {
      text = await file.text();
    } catch (err) {  // the file went away or cannot be read: a message, never an unhandled rejection
      if (generation === state.fileReads) showError(file.name + ": could not read the file (" + err.message + "); choose it again", "file");
      return;
    }
    if (generation !== state.fileReads) return;
    clearError();
    $("file-info").textContent = "";
    state.fileName = file.name;
    try {
      state.fileTexts = parseFile(file.name, text);
      const chunks = Math.ceil(state.fileTexts.length / state.limits.max_texts);
      $("file-info").textContent = state.fileTexts.length + " texts in " + file.name + " (" + chunks + " request" +
        (chunks === 1 ? "" : "s") + " of at most " + state.limits.max_texts + ")";
    } catch (err) {
      showError(file.name + ": " + err.message, "file");
    }
  }

  // the file is read again once typing in the text-field box pauses (not on every keystroke); until
  // then its texts are unknown, so a submit in between reads it itself (classifyFile)
  let textFieldTimer = null;
  function onTextFieldTyped() {
    if (!$("file").files[0]) return;
    state.fileReads++;  // a read in flight is now stale
    state.fileTexts = null;
    clearTimeout(textFieldTimer);
    textFieldTimer = setTimeout(onFileChosen, 300);
  }

  async function classifyFile() {
    if (!state.fileTexts) {
      if ($("file").files[0]) { clearTimeout(textFieldTimer); await onFileChosen(); }
      if (!state.fileTexts) { if ($("error").hidden) showError("choose a .txt, .csv or .jsonl file first", "file"); return; }
    }
    const items = state.fileTexts;
    const size = state.limits.max_texts;
    const results = [];
    clearFileResults();
    const t0 = performance.now();
    for (let start = 0; start < items.length; start += size) {
      const chunk = items.slice(start, start + size);
      $("status").textContent = "classifying " + (start + 1) + "–" + (start + chunk.length) + " of " + items.length + "…";
      try {
        const data = await postClassify(requestBody(chunk.map((x) => x.text)));
        results.push(...data.results);
      } catch (err) {
        if (err instanceof ApiError && chunk.length > 1) {
          err.message = "lines " + chunk[0].line + "–" + chunk[chunk.length - 1].line + ": " + err.message;
        }
        throw err;
      }
    }
    const ms = performance.now() - t0;
    state.fileResults = results;
    $("json").textContent = JSON.stringify({ results: results }, null, 2);
    renderTable(items, results);
    $("status").textContent = items.length + " texts in " + ms.toFixed(0) + " ms";
  }

  function renderTable(items, results) {
    const table = $("file-table");
    table.textContent = "";
    table.append(el("thead", {}, el("tr", {}, el("th", { text: "line" }), el("th", { text: "text" }),
      el("th", { text: "label" }), el("th", { text: "score" }), el("th", { text: "all scores" }))));
    const body = el("tbody");
    results.forEach((result, i) => {
      const tops = topLabels(result);
      const scores = sortedScores(result);
      const best = tops.length ? result.scores[tops[0]] : scores[0][1];
      body.append(el("tr", { "data-testid": "file-row", "data-label": tops.join("|") },
        el("td", { class: "num", text: String(items[i].line) }), el("td", { text: result.text }),
        el("td", {}, ...tops.map((t) => el("span", { class: "top-label", text: t }))),
        el("td", { class: "num", text: best.toFixed(4) }),
        el("td", { class: "hint", text: scores.map(([l, s]) => l + " " + s.toFixed(3)).join(" · ") })));
    });
    table.append(body);
    $("file-results").hidden = false;
  }

  // a plain number such as -5 stays as it is, as in the CLI's CSV (nspzero.io._NUMBER)
  const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

  /** A text cell a spreadsheet would run as a formula (= + - @, tab, CR first) gets a leading
   * apostrophe: it then shows as the text it is (OWASP's CSV injection advice). Numbers stay numbers.
   * The same rule as nspzero.display.spreadsheet_safe (the CLI's CSV): the page builds its CSV here,
   * from results it already holds, so the server never sees the file. */
  function neutralise(value) {
    return typeof value === "string" && /^[=+\-@\t\r]/.test(value) && !NUMBER.test(value) ? "'" + value : value;
  }

  function csvCell(value) {
    const s = String(neutralise(value));
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }

  function download(name, text, type) {
    const url = URL.createObjectURL(new Blob([text], { type: type }));
    const a = el("a", { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  function baseName() {
    return (state.fileName.replace(/\.[^.]*$/, "") || "texts") + ".nspzero";
  }

  function downloadCSV() {
    const results = state.fileResults || [];
    const labels = results.length ? Object.keys(results[0].scores) : [];
    const lines = [["line", "text", "label", ...labels].map(csvCell).join(",")];
    results.forEach((r, i) => {
      lines.push([state.fileTexts[i].line, r.text, topLabels(r).join("|"), ...labels.map((l) => r.scores[l])]
        .map(csvCell).join(","));
    });
    // a BOM so that spreadsheet programs read the file as UTF-8 (Chinese texts and labels)
    download(baseName() + ".csv", "\ufeff" + lines.join("\r\n") + "\r\n", "text/csv;charset=utf-8");
  }

  function downloadJSONL() {
    const results = state.fileResults || [];
    download(baseName() + ".jsonl", results.map((r) => JSON.stringify(r)).join("\n") + "\n", "application/x-ndjson");
  }

  // ---------- prompt sets ----------
  function clearResults() {
    $("results").textContent = "";
    $("json").textContent = "";
    $("status").textContent = "";
    clearFileResults();
  }

  function onPromptChange() {
    const key = $("prompt").value;
    const v = state.variants[key];
    const info = $("prompt-info");
    clearError();
    clearResults();  // answers to another prompt set must not stand under this one
    if (!state.prompt && key) {  // leaving "none": keep what the user typed, to put it back later
      state.typed = { labels: $("labels").value, template: $("template").value, placement: $("placement").value };
    }
    state.prompt = key;
    if (!v) {
      info.textContent = "";
      $("labels").placeholder = "体育, 财经, 科技";
      $("template").placeholder = "{label}";
      $("labels-hint").replaceChildren("comma-separated; ", el("code", { text: "label=word|word" }), " to verbalize");
      if (state.typed) {
        $("labels").value = state.typed.labels;
        $("template").value = state.typed.template;
        $("placement").value = state.typed.placement;
        state.typed = null;
      }
      return;
    }
    const labels = Object.keys(v.labels);
    $("labels").value = "";
    $("labels").placeholder = "all " + labels.length + " labels of " + v.key + " (or pick some, comma-separated)";
    $("labels-hint").textContent = "optional with a prompt set: names of its labels";
    $("template").value = "";
    $("template").placeholder = v.templates.join(" | ") + " (the prompt's)";
    $("placement").value = "";
    info.textContent = v.key + " · " + v.placement + " · combine " + v.combine + " · " + v.templates.length +
      " template" + (v.templates.length === 1 ? "" : "s") + " · labels: " +
      labels.map((l) => l + "→" + v.labels[l].join("/")).join(", ");
  }

  async function loadServerInfo() {
    try {  // a random-weights model (nspzero tiny-model) is said above every answer, not only in the log
      const health = await (await fetch("health")).json();
      state.randomWeights = Boolean(health && health.random_weights);
      $("random-weights").hidden = !state.randomWeights;
      if (health && health.tuned_labels) {  // a tuned folder: its own labels and prompts, unless typed
        state.tunedLabels = health.tuned_labels;
        $("labels").value = "";
        $("labels").placeholder = "the tuned model's: " + health.tuned_labels.join(", ");
        $("template").value = "";
        $("template").placeholder = "the tuned model's prompt";
      }
    } catch (_) { /* no banner */ }
    try {
      const limits = await (await fetch("limits")).json();
      if (limits && limits.max_texts) state.limits = limits;
    } catch (_) { /* defaults stay */ }
    try {
      const data = await (await fetch("prompts")).json();
      const select = $("prompt");
      for (const set of data.prompt_sets || []) {
        const group = el("optgroup", { label: set.name });
        const def = set.variants.find((v) => v.name === set.default) || set.variants[0];
        state.variants[set.name] = def;
        group.append(el("option", { value: set.name, text: set.name + " (default: " + def.name + ")" }));
        for (const v of set.variants) {
          state.variants[v.key] = v;
          group.append(el("option", { value: v.key, text: v.key + " — " + v.templates.join(" | ") }));
        }
        select.append(group);
      }
    } catch (err) {
      $("prompt-info").textContent = "could not load the prompt sets (" + err.message + ")";
    }
  }

  function setMode(mode) {
    state.mode = mode;
    clearError();
    $("tab-text").setAttribute("aria-selected", String(mode === "text"));
    $("tab-file").setAttribute("aria-selected", String(mode === "file"));
    $("field-text").hidden = mode !== "text";
    $("field-file").hidden = mode !== "file";
    $("results").hidden = mode !== "text";
    $("file-results").hidden = mode !== "file" || !state.fileResults;
  }

  async function onSubmit(event) {
    event.preventDefault();
    clearError();
    const button = $("classify");
    button.disabled = true;
    $("status").textContent = "classifying…";
    try {
      if (state.mode === "file") await classifyFile(); else await classifyTexts();
    } catch (err) {
      showError(err.message, err instanceof ApiError ? fieldOf(err.field) : null);
      $("results").classList.add("stale");  // earlier answers stay, dimmed: they are not this request's
    } finally {
      button.disabled = false;
      // every way out that did not finish (an error shown, a file that did not parse) leaves no "classifying…"
      if ($("status").textContent.startsWith("classifying")) $("status").textContent = "";
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("form").addEventListener("submit", onSubmit);
    $("prompt").addEventListener("change", onPromptChange);
    $("file").addEventListener("change", onFileChosen);
    // re-read the file while the field is typed in, not on "change": that fires when the field loses
    // focus, i.e. on the mousedown of the Classify click, and the error it clears would move the button
    // away from under the pointer before the mouseup, losing the click
    $("text-field").addEventListener("input", onTextFieldTyped);
    $("tab-text").addEventListener("click", () => setMode("text"));
    $("tab-file").addEventListener("click", () => setMode("file"));
    $("download-csv").addEventListener("click", downloadCSV);
    $("download-jsonl").addEventListener("click", downloadJSONL);
    $("multi-label").addEventListener("change", () => { $("threshold").disabled = !$("multi-label").checked; });
    $("threshold").disabled = !$("multi-label").checked;
    loadServerInfo();
  });
})();
