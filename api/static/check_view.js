// What the pages that check in the browser (/receipts/{seq}, /verify, /me) share: their messages
// in the page's language, the loud and quiet statuses, a check's steps as a list, and the trust
// file: pinned (pins.js), compared with the served one, or pasted from the operator's source.

import { trustProblem } from "./check.js";
import { pinPasted, pinTrust } from "./pins.js";

export const MAX_PASTE_CHARS = 1_000_000;
const messages = JSON.parse(document.getElementById("check-messages").textContent);
const servedTrust = JSON.parse(document.getElementById("served-trust").textContent);

export function t(key, values = {}) {
  return messages[key].replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

export function element(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

/** A loud status (role alert) for what must not be missed, a quiet one otherwise. */
export function announce(target, attribute, state, text, loud) {
  target.setAttribute(attribute, state);
  target.setAttribute("role", loud ? "alert" : "status");
  target.classList.toggle("alarm", loud);
  target.textContent = text;
}

export function showTrust() {
  const { trust, state } = pinTrust(servedTrust);
  announce(document.getElementById("trust-status"), "data-trust", state, t(`trust.${state}`), state === "changed");
  document.getElementById("pinned-trust-text").textContent = JSON.stringify(trust, null, 2);
  return trust;
}

/** A check's steps ({id, ok, facts, reason}) as the items of `list`, each with data-step and data-result. */
export function showSteps(list, steps) {
  list.replaceChildren();
  for (const { id, ok, facts, reason } of steps) {
    const item = element("li", ok ? "passed" : "failed");
    item.dataset.step = id;
    item.dataset.result = ok ? "passed" : "failed";
    const head = element("p", "step");
    head.append(element("span", "mark", ok ? "✓" : "✗"), " ", element("strong", "", t(`check.step_${id.replace("-", "_")}`)),
                " · ", element("span", "verdict", t(ok ? "check.ok" : "check.bad")));
    item.append(head);
    if (facts.length) {
      const details = element("dl", "facts");
      for (const [label, value] of facts) {
        const dd = element("dd");
        dd.append(element("code", "hash", value));
        details.append(element("dt", "", t(label)), dd);
      }
      item.append(details);
    }
    if (reason) item.append(element("p", "reason", reason));
    list.append(item);
  }
}

/** The trust form: a pasted trust file that is one replaces the pin, and the page checks again with it. */
export function onPastedTrust(rerun) {
  const form = document.getElementById("trust-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const status = document.getElementById("trust-form-status");
    const text = document.getElementById("trust-input").value.slice(0, MAX_PASTE_CHARS);
    let trust;
    try {
      trust = JSON.parse(text);
    } catch (error) {
      status.textContent = t("trust.invalid", { error: error.message });
      return;
    }
    const problem = await trustProblem(trust);
    if (problem) {
      status.textContent = t("trust.invalid", { error: problem });
      return;
    }
    pinPasted(trust);
    status.textContent = t("trust.pinned_now");
    await rerun(showTrust());
  });
}
