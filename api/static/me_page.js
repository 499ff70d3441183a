// The script of /me: each of the reader's records checked in the browser against the pinned trust
// file (check.js checkRecord): the record the page shows, its proof in its batch's root, and the
// batch event's receipt. Each record's outcome, and the page's #outcome over all of them, carries
// data-verification="passed" | "failed".

import { checkRecord, webCryptoAvailable } from "./check.js";
import { announce, onPastedTrust, showSteps, showTrust, t } from "./check_view.js";

const proofs = JSON.parse(document.getElementById("record-proofs").textContent);
const receipts = JSON.parse(document.getElementById("batch-receipts").textContent);

async function checkAll(trust) {
  const outcome = document.getElementById("outcome");
  announce(outcome, "data-verification", "pending", t("check.pending"), false);
  if (!webCryptoAvailable()) {
    announce(outcome, "data-verification", "failed", t("check.unsupported"), true);
    return;
  }
  const records = document.querySelectorAll("article.record");
  let failed = 0;
  for (const [index, card] of records.entries()) {
    const shown = { activity_id: card.dataset.activity, reduction_g: Number(card.dataset.g) };
    const proof = proofs[index];
    const steps = await checkRecord(proof, receipts[String(proof?.batch_seq)], trust, shown);
    showSteps(card.querySelector("ol.steps"), steps);
    const passed = steps.every((s) => s.ok);
    announce(card.querySelector(".record-outcome"), "data-verification", passed ? "passed" : "failed",
             t(passed ? "check.record_passed" : "check.record_failed"), !passed);
    failed += passed ? 0 : 1;
  }
  if (proofs.length !== records.length) failed += 1; // a proof for a record the page does not show, or none for one it does
  announce(outcome, "data-verification", failed ? "failed" : "passed",
           t(failed ? "check.records_failed" : records.length === 1 ? "check.one_record_passed" : "check.records_passed",
             { failed, count: records.length }), failed > 0);
}

onPastedTrust(checkAll);
checkAll(showTrust());
