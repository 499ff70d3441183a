// The script of /receipts/{seq} and /verify: pins the trust file, checks the page's receipt (or a
// pasted one) step by step, and on /verify checks today's checkpoint against the remembered one.
// The outcome element carries data-verification="passed" | "failed"; the consistency element
// data-consistency="first" | "passed" | "failed"; the trust status data-trust="first" | "same" | "changed".

import { checkReceipt, consistencyHolds, hexOf, parseCheckpoint, trustedCheckpoint, webCryptoAvailable } from "./check.js";
import { MAX_PASTE_CHARS, announce, onPastedTrust, showSteps, showTrust, t } from "./check_view.js";
import { rememberCheckpoint, rememberedCheckpoint } from "./pins.js";

async function showReceipt(receipt, trust) {
  const outcome = document.getElementById("outcome");
  const list = document.getElementById("steps");
  list.replaceChildren();
  announce(outcome, "data-verification", "pending", t("check.pending"), false);
  if (!webCryptoAvailable()) {
    announce(outcome, "data-verification", "failed", t("check.unsupported"), true);
    return;
  }
  const steps = await checkReceipt(receipt, trust);
  showSteps(list, steps);
  const passed = steps.every((s) => s.ok);
  announce(outcome, "data-verification", passed ? "passed" : "failed", t(passed ? "check.passed" : "check.failed"), !passed);
}

async function fetched(url, as) {
  const answer = await fetch(url, { cache: "no-store" });
  if (!answer.ok) throw new Error(`${url}: HTTP ${answer.status}`);
  return as === "json" ? answer.json() : answer.text();
}

function describe(checkpoint) {
  return `${checkpoint.size} · ${hexOf(checkpoint.root)}`;
}

/** Today's checkpoint, signed by the pinned log key, extends the remembered one: only then is
 * today's remembered. A failure keeps the old one, so the warning stays until it is explained. */
async function showConsistency(trust) {
  const status = document.getElementById("consistency");
  const report = (state, key, values, loud) => announce(status, "data-consistency", state, t(key, values), loud);
  if (!webCryptoAvailable()) return report("failed", "check.unsupported", {}, true);
  let today;
  const todayNote = await fetched("/v1/checkpoint", "text");
  try {
    today = await trustedCheckpoint(todayNote, trust);
  } catch (error) {
    return report("failed", "consistency.unsigned", { reason: error.message }, true);
  }
  document.getElementById("today-checkpoint").textContent = describe(today);
  const rememberedNote = rememberedCheckpoint();
  if (rememberedNote === null) {
    rememberCheckpoint(todayNote);
    return report("first", "consistency.first", { size: today.size }, false);
  }
  const remembered = parseCheckpoint(rememberedNote);
  document.getElementById("remembered-checkpoint").textContent = describe(remembered);
  const sizes = { first: remembered.size, second: today.size };
  let reason = "";
  if (remembered.origin !== today.origin) reason = `origin ${remembered.origin} became ${today.origin}`;
  else if (remembered.size > today.size) reason = "the log is shorter than before";
  else if (remembered.size > 0n) { // the empty tree is a prefix of every tree
    const url = `/v1/proofs/consistency?first=${remembered.size}&second=${today.size}`;
    if (!(await consistencyHolds(await fetched(url, "json"), remembered, today))) reason = "the consistency proof does not hold";
  }
  if (reason) return report("failed", "consistency.failed", { ...sizes, reason }, true);
  rememberCheckpoint(todayNote);
  return report("passed", "consistency.passed", sizes, false);
}

function onPastedReceipt(trustNow) {
  document.getElementById("receipt-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    document.getElementById("receipt-result").hidden = false;
    const text = document.getElementById("receipt-input").value.slice(0, MAX_PASTE_CHARS);
    let receipt;
    try {
      receipt = JSON.parse(text);
    } catch (error) {
      document.getElementById("steps").replaceChildren();
      announce(document.getElementById("outcome"), "data-verification", "failed", t("verify.not_json", { error: error.message }), true);
      return;
    }
    await showReceipt(receipt, trustNow());
  });
}

async function main() {
  let trust = showTrust();
  const embedded = document.getElementById("receipt-json");
  if (embedded) {
    const receipt = JSON.parse(embedded.textContent);
    onPastedTrust(async (pinned) => showReceipt(receipt, (trust = pinned)));
    await showReceipt(receipt, trust);
    return;
  }
  onPastedReceipt(() => trust);
  onPastedTrust(async (pinned) => {
    trust = pinned;
    await showConsistency(trust);
  });
  try {
    await showConsistency(trust);
  } catch (error) {
    announce(document.getElementById("consistency"), "data-consistency", "failed",
             t("consistency.failed", { first: "?", second: "?", reason: error.message }), true);
  }
}

main();
