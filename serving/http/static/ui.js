// The reading page (serving/static/index.html): sends one article to the public
// POST /analyze and lays the answer over the article's own text. Plain DOM code, no
// framework, nothing fetched from outside. Article text is only ever set with textContent.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const COLOURS = 8; // claim colours k0..k7 in ui.css
  const TOPIC_AR = {
    culture: "ثقافة", economy: "اقتصاد", internationalNews: "أخبار دولية",
    middleEast: "الشرق الأوسط", sport: "رياضة", technology: "تقنية",
  };
  const STANCE_AR = { agree: "يؤيد الادعاء", disagree: "يعارض الادعاء", discuss: "يناقشه دون حسم", unrelated: "لا صلة له", other: "لا يؤيد ولا يعارض" };
  const WARNING_AR = {
    "mostly non-Arabic text": "أغلب حروف النص ليست عربية؛ النتائج أقل موثوقية.",
    "text truncated": "النص أطول مما تتسع له نوافذ النموذج؛ لم يُقرأ كله.",
  };
  const FIELD_ERROR = { text: "text-error", title: "title-error", claims: "claims-error", summary_sentences: "k-error" };
  const FIELD_INPUT = { text: "text", title: "title", summary_sentences: "k" };

  let token = ""; // kept in this page's memory only: never stored
  let sample = null;
  let claimIds = 0;
  let busy = false;
  let hovered = null;
  let focused = null;

  // ---------------------------------------------------------------------------------
  // Small DOM helpers

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child);
    return node;
  }

  function pct(p) {
    return `${Math.round(p * 100)}%`;
  }

  function bar(p) {
    const fill = el("span", { class: "fill" });
    fill.style.width = `${Math.max(0, Math.min(1, p)) * 100}%`;
    return el("span", { class: "bar", "aria-hidden": "true" }, fill);
  }

  function setStatus(message, problem = false) {
    const status = $("status");
    status.textContent = message;
    status.classList.toggle("problem", problem);
  }

  // ---------------------------------------------------------------------------------
  // The claims list (add and remove)

  function claimRows() {
    return Array.from($("claims").children);
  }

  function renumberClaims() {
    claimRows().forEach((row, i) => {
      row.querySelector("label").textContent = `الادعاء ${i + 1}`;
      row.querySelector("button").setAttribute("aria-label", `احذف الادعاء ${i + 1}`);
    });
  }

  function addClaim(value = "", focus = false) {
    const id = `claim-${++claimIds}`;
    const input = el("input", { id, type: "text", dir: "auto", "aria-describedby": `${id}-error` });
    input.value = value;
    const remove = el("button", { type: "button", class: "remove", text: "×" });
    const row = el("li", {},
      el("label", { for: id, class: "vh" }),
      el("div", { class: "claim-row" }, input, remove),
      el("p", { class: "error", id: `${id}-error` }));
    remove.addEventListener("click", () => {
      const next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      renumberClaims();
      (next ? next.querySelector("input") : $("add-claim")).focus();
    });
    $("claims").append(row);
    renumberClaims();
    if (focus) input.focus();
    return input;
  }

  function setClaims(values) {
    $("claims").replaceChildren();
    values.forEach((v) => addClaim(v));
  }

  // ---------------------------------------------------------------------------------
  // Errors beside their fields

  function clearErrors() {
    for (const node of document.querySelectorAll("#form .error")) node.textContent = "";
    for (const node of document.querySelectorAll("#form [aria-invalid]")) node.removeAttribute("aria-invalid");
    setStatus("");
  }

  function fieldError(errorId, inputId, message) {
    const box = $(errorId);
    box.textContent = box.textContent ? `${box.textContent} ${message}` : message;
    if (inputId) $(inputId).setAttribute("aria-invalid", "true");
    return inputId ? $(inputId) : box;
  }

  // The API's error body: {"detail": [{loc, msg}, ...]} for bad input, {"error": "..."}
  // otherwise; BentoML may wrap either in a one-item list.
  function unwrap(body) {
    return Array.isArray(body) && body.length === 1 ? body[0] : body;
  }

  function messageOf(body, status) {
    body = unwrap(body);
    if (body && typeof body.error === "string") return body.error;
    if (body && typeof body.detail === "string") return body.detail;
    if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
    return `HTTP ${status}`;
  }

  function showDetail(detail, sentRows) {
    let first = null;
    const general = [];
    for (const d of detail) {
      const loc = Array.isArray(d.loc) ? d.loc : [];
      const msg = String(d.msg ?? "invalid input");
      const field = loc[0] === "articles" && loc[1] === 0 ? loc[2] : undefined;
      let target = null;
      if (field === "claims") {
        // The claim's index: from loc (a wrong type) or the message ("claim 1 is empty").
        let index = typeof loc[3] === "number" ? loc[3] : null;
        const named = /claim (\d+)/.exec(msg);
        if (index === null && named) index = Number(named[1]);
        const row = index !== null ? sentRows[index] : undefined;
        if (row) {
          const input = row.querySelector("input");
          target = fieldError(input.getAttribute("aria-describedby"), input.id, msg);
        } else {
          target = fieldError("claims-error", null, msg);
        }
      } else if (field in FIELD_ERROR) {
        target = fieldError(FIELD_ERROR[field], FIELD_INPUT[field], msg);
      } else {
        general.push(loc.length ? `${loc.join(".")}: ${msg}` : msg);
      }
      first = first || target;
    }
    if (general.length) setStatus(`رفضت الواجهة الطلب: ${general.join("؛ ")}`, true);
    else setStatus("رفضت الواجهة الطلب: انظر الرسالة بجانب الحقل.", true);
    if (first && typeof first.focus === "function") first.focus();
  }

  function showFailure(response, body, sentRows) {
    const status = response.status;
    const message = messageOf(body, status);
    const kept = "بقي ما أدخلته كما هو.";
    if (status === 401 || status === 403) {
      $("token-field").hidden = false;
      fieldError("token-error", "token", message);
      setStatus(`الخدمة تطلب رمز وصول صحيحًا (${status}). ${kept}`, true);
      $("token").focus();
    } else if (status === 503 || status === 429 || status === 504) {
      const retry = response.headers.get("retry-after");
      const when = retry ? ` أعد المحاولة بعد ${retry} ثوانٍ.` : " أعد المحاولة بعد قليل.";
      const what = status === 504 ? "لم تُجب الخدمة في الوقت المحدد" : "الخدمة مشغولة أو غير جاهزة";
      setStatus(`${what} (${status}): ${message}.${when} ${kept}`, true);
    } else if (status >= 400 && status < 500) {
      const b = unwrap(body);
      if (b && Array.isArray(b.detail)) showDetail(b.detail, sentRows);
      else setStatus(`رفضت الواجهة الطلب (${status}): ${message}`, true);
    } else {
      setStatus(`خطأ في الخدمة (${status}): ${message}. ${kept}`, true);
    }
  }

  // ---------------------------------------------------------------------------------
  // Analyze

  async function analyze(event) {
    event.preventDefault();
    if (busy) return;
    clearErrors();
    if (!$("token-field").hidden) token = $("token").value.trim();
    // Blank claim rows are left out; the rest go as typed (the API judges them).
    const sentRows = claimRows().filter((row) => row.querySelector("input").value.trim() !== "");
    const article = { text: $("text").value, claims: sentRows.map((row) => row.querySelector("input").value) };
    const title = $("title").value;
    if (title.trim()) article.title = title;
    const k = $("k").value.trim();
    if (k !== "") article.summary_sentences = Number(k);

    const headers = { "content-type": "application/json", accept: "application/json" };
    if (token) headers.authorization = `Bearer ${token}`;
    busy = true;
    $("analyze").disabled = true;
    setStatus("جارٍ التحليل…");
    let response;
    let body = null;
    try {
      response = await fetch("/analyze", { method: "POST", headers, body: JSON.stringify({ articles: [article] }) });
      try { body = await response.json(); } catch { body = null; }
    } catch {
      setStatus("تعذّر الوصول إلى الخدمة (عطل في الشبكة أو الخدمة متوقفة). بقي ما أدخلته كما هو؛ أعد المحاولة.", true);
      return;
    } finally {
      busy = false;
      $("analyze").disabled = false;
    }
    if (!response.ok || !body || !Array.isArray(body.results)) {
      if (response.ok) setStatus("أجابت الخدمة بما لم تفهمه الصفحة. بقي ما أدخلته كما هو.", true);
      else showFailure(response, body, sentRows);
      return;
    }
    render(article, body.results[0]);
    setStatus("اكتمل التحليل. النتيجة أدناه.");
  }

  // ---------------------------------------------------------------------------------
  // The result over the article

  // Offsets count code points (Python str indices); JavaScript strings count UTF-16
  // units, so cut an array of code points instead.
  function highlighted(text, summary, stances) {
    const chars = Array.from(text);
    const spans = []; // {start, end, kind: "sum" | "ev", index}
    (summary.offsets || []).forEach(([start, end], i) => spans.push({ start, end, kind: "sum", index: i }));
    stances.forEach((s, c) => (s.evidence || []).forEach((e) => spans.push({ start: e.start, end: e.end, kind: "ev", index: c })));
    const cuts = new Set([0, chars.length]);
    for (const s of spans) {
      s.start = Math.max(0, Math.min(chars.length, s.start));
      s.end = Math.max(s.start, Math.min(chars.length, s.end));
      cuts.add(s.start);
      cuts.add(s.end);
    }
    const points = Array.from(cuts).sort((a, b) => a - b);
    const out = document.createDocumentFragment();
    for (let p = 0; p + 1 < points.length; p++) {
      const [a, b] = [points[p], points[p + 1]];
      const piece = chars.slice(a, b).join("");
      const inside = spans.filter((s) => s.start <= a && b <= s.end && s.start < s.end);
      const sum = inside.find((s) => s.kind === "sum");
      const claims = [...new Set(inside.filter((s) => s.kind === "ev").map((s) => s.index))].sort((x, y) => x - y);
      if (!sum && !claims.length) {
        out.append(document.createTextNode(piece));
        continue;
      }
      const node = el(sum ? "mark" : "span");
      node.textContent = piece;
      if (sum) {
        node.classList.add("sum");
        node.dataset.sum = String(sum.index);
      }
      if (claims.length) {
        node.classList.add("ev");
        node.dataset.claims = claims.join(" ");
        underline(node, claims);
      }
      out.append(node);
      // A numbered tag where a claim's evidence sentence ends: the colour is not the only cue.
      for (const c of claims) {
        if (spans.some((s) => s.kind === "ev" && s.index === c && s.end === b)) {
          const tag = el("span", { class: `ev-tag k${c % COLOURS}`, text: String(c + 1) });
          tag.dataset.claims = String(c);
          tag.setAttribute("aria-label", `دليل الادعاء ${c + 1}`);
          out.append(tag);
        }
      }
    }
    return out;
  }

  // One 3px underline per claim, stacked (inset shadows paint the first on top).
  function underline(node, claims) {
    node.style.boxShadow = claims.map((c, i) => `inset 0 -${3 * (i + 1)}px 0 var(--c${c % COLOURS})`).join(", ");
  }

  function showOnly(claim) {
    const article = $("article-text");
    article.classList.toggle("focusing", claim !== null);
    for (const node of article.querySelectorAll("[data-claims]")) {
      const claims = node.dataset.claims.split(" ").map(Number);
      const visible = claim === null ? claims : claims.filter((c) => c === claim);
      node.classList.toggle("off", visible.length === 0);
      if (node.classList.contains("ev") && visible.length) underline(node, visible);
    }
    for (const card of $("stances").children) card.classList.toggle("active", Number(card.dataset.claim) === claim);
  }

  function refreshFocus() {
    showOnly(hovered !== null ? hovered : focused);
  }

  function renderTopic(topic) {
    const label = $("topic-label");
    label.replaceChildren(
      document.createTextNode(TOPIC_AR[topic.label] || topic.label), " ",
      el("code", { dir: "ltr", text: topic.label }));
    if (topic.low_confidence) label.append(el("span", { class: "badge", text: "ثقة منخفضة (low_confidence)" }));
    const entries = Object.entries(topic.scores || {}).sort((x, y) => y[1] - x[1]);
    $("topic-bars").replaceChildren(...entries.map(([name, p]) => el("li", {},
      el("span", {}, TOPIC_AR[name] || name, " ", el("code", { dir: "ltr", text: name })),
      bar(p), el("span", { class: "num", text: pct(p) }))));
  }

  function renderStances(stances) {
    const list = $("stances");
    if (!stances.length) {
      list.replaceChildren(el("li", { class: "hint", text: "لا ادعاءات في هذا الطلب." }));
      $("stance-hint").hidden = true;
      return;
    }
    $("stance-hint").hidden = false;
    list.replaceChildren(...stances.map((s, c) => {
      const p = (s.scores || {})[s.label] ?? 0;
      const label = el("span", { class: "stance-label" }, STANCE_AR[s.label] || s.label, " ",
        el("code", { dir: "ltr", text: s.label }));
      const line = el("p", { class: "stance-line" }, label);
      if (s.low_confidence) line.append(el("span", { class: "badge", text: "ثقة منخفضة (low_confidence)" }));
      const card = el("li", { class: `stance k${c % COLOURS}`, tabindex: "0" },
        el("p", { class: "claim-text" }, el("span", { class: "claim-no", "aria-hidden": "true", text: String(c + 1) }),
          el("span", { dir: "auto", text: s.claim })),
        line,
        el("div", { class: "confidence" }, bar(p), el("span", { class: "num", text: pct(p) })));
      card.append(el("p", { class: "scores", dir: "ltr",
        text: Object.entries(s.scores || {}).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(" · ") }));
      const n = (s.evidence || []).length;
      card.append(el("p", { class: "evidence-note",
        text: n ? `جمل الدليل في النص: ${n}` : "لا جمل دليل لهذا الادعاء." }));
      card.dataset.claim = String(c);
      card.setAttribute("aria-label", `الادعاء ${c + 1}: ${s.claim}. الموقف: ${STANCE_AR[s.label] || s.label} (${s.label})، ${pct(p)}`);
      card.addEventListener("mouseenter", () => { hovered = c; refreshFocus(); });
      card.addEventListener("mouseleave", () => { hovered = null; refreshFocus(); });
      card.addEventListener("focus", () => {
        focused = c;
        refreshFocus();
        const first = $("article-text").querySelector(`.ev[data-claims~="${c}"]`);
        if (first) first.scrollIntoView({ block: "nearest" });
      });
      card.addEventListener("blur", () => { focused = null; refreshFocus(); });
      return card;
    }));
  }

  function render(article, result) {
    hovered = null;
    focused = null;
    const title = $("article-title");
    title.textContent = article.title || "";
    title.hidden = !article.title;
    const summary = result.summary || { sentences: [], offsets: [] };
    const stances = result.stances || [];
    $("article-text").replaceChildren(highlighted(article.text, summary, stances));
    $("article-text").classList.remove("focusing");

    renderTopic(result.topic);
    const n = (summary.sentences || []).length;
    $("summary-note").replaceChildren(
      document.createTextNode(`جمل الملخص المظللة في النص: ${n}`));
    renderStances(stances);

    const warnings = result.warnings || [];
    $("warnings").hidden = warnings.length === 0;
    $("warning-list").replaceChildren(...warnings.map((w) => el("li", {},
      el("code", { dir: "ltr", text: w }), WARNING_AR[w] ? ` ${WARNING_AR[w]}` : "")));

    const versions = Object.entries(result.model_versions || {}).map(([task, v]) => `${task}: ${v}`);
    $("versions").replaceChildren(document.createTextNode("النماذج: "),
      el("span", { dir: "ltr", text: versions.join(" · ") }));
    $("result").hidden = false;
  }

  // ---------------------------------------------------------------------------------
  // Start

  async function load() {
    try {
      const response = await fetch("/ui/page.json", { headers: { accept: "application/json" } });
      if (!response.ok) throw new Error(String(response.status));
      const page = await response.json();
      sample = page.sample;
      $("token-field").hidden = !page.token_required;
    } catch {
      setStatus("تعذّر تحميل إعدادات الصفحة من الخدمة؛ زر المقال النموذجي لا يعمل الآن.", true);
    }
  }

  function fillSample() {
    if (!sample) {
      setStatus("المقال النموذجي غير متاح: تعذّر تحميله من الخدمة.", true);
      return;
    }
    clearErrors();
    $("title").value = sample.title || "";
    $("text").value = sample.text;
    setClaims(sample.claims || []);
    if (sample.summary_sentences) $("k").value = String(sample.summary_sentences);
    setStatus("مُلئ المقال النموذجي. اضغط «حلّل».");
    $("analyze").focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("form").addEventListener("submit", analyze);
    $("add-claim").addEventListener("click", () => addClaim("", true));
    $("sample").addEventListener("click", fillSample);
    $("token").addEventListener("input", () => { token = $("token").value.trim(); });
    addClaim();
    load();
  });
})();
