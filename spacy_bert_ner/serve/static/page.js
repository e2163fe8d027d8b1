// The try-it page: sends the text to POST /v1/ner and draws the entities the way
// displaCy does (a coloured mark with its label), adding each entity's confidence.
// Everything shown is set as text (textContent), never parsed as HTML.
"use strict";

const COLOURS = {
  PER: "#aa9cfc", PERSON: "#aa9cfc", ORG: "#7aecec", LOC: "#ff9561", GPE: "#feca74", MISC: "#e4e7d2",
  per: "#aa9cfc", org: "#7aecec", geo: "#ff9561", gpe: "#feca74", tim: "#bfe1d9", art: "#bfeeb7",
  eve: "#ffeb80", nat: "#c887fb",
};
const FALLBACK = ["#ddd", "#f0d0ff", "#c9e7ff", "#ffd6a5", "#caffbf", "#fdffb6"];

function colour(label) {
  if (Object.prototype.hasOwnProperty.call(COLOURS, label)) return COLOURS[label];
  let h = 0;
  for (const c of label) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return FALLBACK[h % FALLBACK.length];
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function render(text, entities) {
  const result = document.getElementById("result");
  result.replaceChildren();
  // the API's offsets count characters (code points), as Python does; JavaScript strings count UTF-16 units
  const chars = Array.from(text);
  const slice = (start, end) => chars.slice(start, end).join("");
  let at = 0;
  for (const ent of [...entities].sort((a, b) => a.start_char - b.start_char)) {
    if (ent.start_char < at) continue;
    result.append(document.createTextNode(slice(at, ent.start_char)));
    const mark = element("mark", "entity");
    mark.dataset.label = ent.label;
    mark.style.background = colour(ent.label);
    mark.append(element("span", "text", slice(ent.start_char, ent.end_char)));
    mark.append(element("span", "label", ent.label));
    if (typeof ent.confidence === "number") {
      mark.dataset.confidence = ent.confidence.toFixed(2);
      mark.append(element("span", "confidence", ent.confidence.toFixed(2)));
    }
    result.append(mark);
    at = ent.end_char;
  }
  result.append(document.createTextNode(slice(at)));
}

function setStatus(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.classList.toggle("error", Boolean(isError));
}

async function annotate(event) {
  event.preventDefault();
  const text = document.getElementById("text").value;
  const button = document.getElementById("submit");
  button.disabled = true;
  setStatus("…");
  try {
    const response = await fetch("/v1/ner", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ documents: [{ id: "page", text: text }] }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      document.getElementById("result").replaceChildren();
      setStatus(body.error ? body.error.message : "HTTP " + response.status, true);
      return;
    }
    const entities = body.documents[0].entities;
    render(text, entities);
    setStatus(entities.length + (entities.length === 1 ? " entity" : " entities"));
  } catch (error) {
    setStatus(String(error), true);
  } finally {
    button.disabled = false;
  }
}

async function showModel() {
  const model = document.getElementById("model");
  for (let i = 0; i < 120; i++) {
    const response = await fetch("/info");
    if (response.ok) {
      const info = await response.json();
      const runtimes = Object.values(info.runtime || {});
      const f = info.scores && typeof info.scores.ents_f === "number" ? ` · F1 ${(100 * info.scores.ents_f).toFixed(1)}` : "";
      model.textContent = `${info.model} ${info.version || ""} · ${info.labels.join(", ")}` +
        (runtimes.length ? ` · ${runtimes.join(", ")}` : "") + f;
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  model.textContent = "the model is not ready";
}

document.getElementById("form").addEventListener("submit", annotate);
showModel();
