// The receipt check of docs/receipt.md, in the browser, with WebCrypto alone (SHA-256, Ed25519):
// the leaf hash (spec section 3), the RFC 9162 inclusion and consistency proofs (section 4), and the
// checkpoint's C2SP signed note against a verifier key of the trust file (sections 5 and 8).
// A second implementation beside ledger/ and verifier/: it imports nothing and trusts nothing served.

const LOG_KEY_TYPE = 0x01; // C2SP signed-note Ed25519 key type
const KEY_HASH_BYTES = 4;
const SIGNATURE_BYTES = 64;
const HASH_BYTES = 32;
const MAX_PROOF_HASHES = 63; // an inclusion proof in a tree below 2^63 leaves (spec section 5)
const MAX_CONSISTENCY_HASHES = 126; // a consistency proof there
const MAX_SIGNATURE_LINES = 100; // spec section 5
const MAX_SIZE = 2n ** 63n;

const encoder = new TextEncoder();

/** A failed check, with the reason a reader sees under the step and what was computed on the way. */
export class CheckFailed extends Error {
  constructor(reason, facts = []) {
    super(reason);
    this.facts = facts;
  }
}

function fail(reason, facts = []) {
  throw new CheckFailed(reason, facts);
}

export function webCryptoAvailable() {
  return Boolean(globalThis.crypto && crypto.subtle && globalThis.isSecureContext);
}

export function hexOf(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function hashOfHex(text, what) {
  if (typeof text !== "string" || !/^[0-9a-f]{64}$/.test(text)) fail(`${what} is not 64 lowercase hex digits`);
  return Uint8Array.from(text.match(/../g), (pair) => parseInt(pair, 16));
}

/** RFC 4648 base64, standard alphabet, padded and canonical (spec section 1). */
export function bytesOfBase64(text, what) {
  if (typeof text !== "string" || !/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) {
    fail(`${what} is not base64`);
  }
  const bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  if (btoa(String.fromCharCode(...bytes)) !== text) fail(`${what} is not canonical base64`);
  return bytes;
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

export function equalBytes(a, b) {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

export async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** SHA-256(0x00 || leaf bytes). */
export async function leafHash(leafBytes) {
  return sha256(concat(Uint8Array.of(0x00), leafBytes));
}

function nodeHash(left, right) {
  return sha256(concat(Uint8Array.of(0x01), left, right));
}

function treeSize(value, what) {
  if (!Number.isSafeInteger(value) || value < 0) fail(`${what} is not a whole number`);
  return BigInt(value);
}

function proofHashes(hashes, limit, what) {
  if (!Array.isArray(hashes) || hashes.length > limit) fail(`${what} is not a list of at most ${limit} hashes`);
  return hashes.map((h, i) => hashOfHex(h, `${what} ${i}`));
}

/** The walk up the tree that RFC 9162 sections 2.1.3.2 and 2.1.4.2 share, from node fn of a tree
 * whose last node is sn: for each of `count` proof hashes, whether it is the left sibling; null when
 * the proof's length does not fit the tree. */
function leftSiblings(fn, sn, count) {
  const left = [];
  for (let i = 0; i < count; i++) {
    if (sn === 0n) return null;
    const isLeft = (fn & 1n) === 1n || fn === sn;
    left.push(isLeft);
    if (isLeft) {
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? left : null;
}

/** RFC 9162 section 2.1.3.2: the root an inclusion proof leads to from a leaf hash. */
export async function rootOfInclusion(hash, index, size, proof) {
  if (index >= size) fail(`leaf index ${index} is not below tree size ${size}`);
  const left = leftSiblings(index, size - 1n, proof.length);
  if (left === null) fail(`a proof of ${proof.length} hashes does not fit leaf ${index} of ${size}`);
  let r = hash;
  for (const [i, p] of proof.entries()) r = left[i] ? await nodeHash(p, r) : await nodeHash(r, p);
  return r;
}

/** RFC 9162 section 2.1.4.2: whether the proof shows the tree of (first, firstRoot) is a prefix of
 * the tree of (second, secondRoot). */
export async function consistent(first, second, firstRoot, secondRoot, proof) {
  if (first > second || first === 0n) return false;
  if (first === second) return proof.length === 0 && equalBytes(firstRoot, secondRoot);
  if (proof.length === 0) return false;
  const path = (first & (first - 1n)) === 0n ? [firstRoot, ...proof] : proof;
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  const left = leftSiblings(fn, sn, path.length - 1);
  if (left === null) return false;
  let fr = path[0];
  let sr = path[0];
  for (const [i, c] of path.slice(1).entries()) {
    if (left[i]) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
    } else {
      sr = await nodeHash(sr, c);
    }
  }
  return equalBytes(fr, firstRoot) && equalBytes(sr, secondRoot);
}

/** A consistency proof as /v1/proofs/consistency serves it (spec section 4 JSON), checked. */
export async function consistencyHolds(answer, first, second) {
  if (answer === null || typeof answer !== "object" || answer.first !== Number(first.size) || answer.second !== Number(second.size)) {
    fail("the consistency proof is not for these two sizes");
  }
  return consistent(first.size, second.size, first.root, second.root,
                    proofHashes(answer.hashes, MAX_CONSISTENCY_HASHES, "consistency hash"));
}

/** A C2SP checkpoint in a signed note (spec section 5): origin, size, root, the signed text, the
 * signature lines. Extension lines are part of the signed text and otherwise ignored. */
export function parseCheckpoint(note) {
  if (typeof note !== "string" || !note.endsWith("\n")) fail("the checkpoint does not end in a newline");
  const split = note.indexOf("\n\n");
  if (split < 0) fail("the checkpoint has no blank line before its signatures");
  const text = note.slice(0, split + 1);
  const [origin, sizeText, rootText] = text.slice(0, -1).split("\n");
  if (!origin || sizeText === undefined || rootText === undefined) fail("the checkpoint lacks origin, size or root");
  if (!/^(0|[1-9][0-9]{0,18})$/.test(sizeText) || BigInt(sizeText) >= MAX_SIZE) fail("the checkpoint's size is not decimal");
  const root = bytesOfBase64(rootText, "the checkpoint's root");
  if (root.length !== HASH_BYTES) fail("the checkpoint's root is not 32 bytes");
  const lines = note.slice(split + 2, -1).split("\n");
  if (lines.length === 0 || lines.length > MAX_SIGNATURE_LINES) fail("the checkpoint has no signature line, or too many");
  const signatures = lines.map((line) => {
    const match = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!match) fail(`not a signature line: ${line.slice(0, 80)}`);
    return { name: match[1], bytes: bytesOfBase64(match[2], "a signature") };
  });
  return { origin, size: BigInt(sizeText), root, text, signatures };
}

/** A verifier key `<name>+<8 hex key hash>+<base64(type || public key)>`, its key hash recomputed
 * as the first 4 bytes of SHA-256(name || "\n" || type || public key). */
export async function parseVerifierKey(text, keyType = LOG_KEY_TYPE) {
  // The name holds no "+" (C2SP); the base64 key may.
  const match = typeof text === "string" ? /^([^+\s]+)\+([0-9a-f]{8})\+(\S+)$/.exec(text) : null;
  if (!match) fail("not a verifier key <name>+<key hash>+<key>");
  const [, name, statedHashHex, keyText] = match;
  const typed = bytesOfBase64(keyText, "the verifier key");
  if (typed.length !== 33 || typed[0] !== keyType) fail(`the verifier key is not type 0x0${keyType} and 32 bytes`);
  const computed = (await sha256(concat(encoder.encode(name + "\n"), typed))).slice(0, KEY_HASH_BYTES);
  return { name, publicKey: typed.slice(1), keyHash: computed, statedHashHex };
}

/** Whether a signature line of the key's name and key hash verifies over the note's text (Ed25519). */
export async function signedBy(checkpoint, key) {
  const ed25519 = await crypto.subtle.importKey("raw", key.publicKey, { name: "Ed25519" }, false, ["verify"]);
  for (const { name, bytes } of checkpoint.signatures) {
    if (name !== key.name || bytes.length !== KEY_HASH_BYTES + SIGNATURE_BYTES) continue;
    if (!equalBytes(bytes.slice(0, KEY_HASH_BYTES), key.keyHash)) continue;
    const signature = bytes.slice(KEY_HASH_BYTES);
    if (await crypto.subtle.verify({ name: "Ed25519" }, ed25519, signature, encoder.encode(checkpoint.text))) return true;
  }
  return false;
}

/** The latest checkpoint's note checked against the trust file's log key; its parsed form. */
export async function trustedCheckpoint(note, trust) {
  const checkpoint = parseCheckpoint(note);
  const key = await parseVerifierKey(trust.log_key);
  if (checkpoint.origin !== trust.origin) fail(`the checkpoint is of origin ${checkpoint.origin}, not ${trust.origin}`);
  if (!(await signedBy(checkpoint, key))) fail("no signature line of the log key verifies");
  return checkpoint;
}

/** A trust file's shape (spec section 8), as far as these checks use it; the reason it is not one. */
export async function trustProblem(trust) {
  try {
    if (trust === null || typeof trust !== "object" || Array.isArray(trust)) fail("not a JSON object");
    if (typeof trust.origin !== "string" || !trust.origin || /\s/.test(trust.origin)) fail("origin is empty or has a space");
    const key = await parseVerifierKey(trust.log_key);
    if (key.name !== trust.origin) fail("log_key is not named after the origin");
    if (!Array.isArray(trust.root_keys) || trust.root_keys.length === 0) fail("no root key");
    return null;
  } catch (error) {
    return error.message;
  }
}

function step(id, run) {
  return { id, run };
}

/** The steps of a receipt's check, each {id, ok, facts: [[label key, value]], reason}. One step
 * failing does not stop the others, so the page shows every finding. */
export async function checkReceipt(receipt, trust) {
  const state = {};
  const steps = [
    step("format", async () => {
      if (receipt === null || typeof receipt !== "object" || receipt.format !== "puhui-receipt/1") fail("not a puhui-receipt/1 document");
      if (receipt.origin !== trust.origin) fail(`the receipt is of origin ${receipt.origin}, the trust file of ${trust.origin}`);
      state.checkpoint = parseCheckpoint(receipt.checkpoint);
      if (state.checkpoint.origin !== trust.origin) fail(`the checkpoint is of origin ${state.checkpoint.origin}`);
      return [["check.computed", `${receipt.format} · ${receipt.origin}`]];
    }),
    step("leaf-hash", async () => {
      if (typeof receipt?.leaf !== "string") fail("the receipt has no leaf");
      state.leaf = JSON.parse(receipt.leaf);
      state.leafHash = await leafHash(encoder.encode(receipt.leaf));
      return [["check.computed", hexOf(state.leafHash)]];
    }),
    step("inclusion", async () => {
      const inclusion = receipt?.inclusion;
      if (!state.leafHash || !state.checkpoint || inclusion === null || typeof inclusion !== "object") fail("no leaf hash or checkpoint to prove it in");
      const index = treeSize(inclusion.leaf_index, "leaf_index");
      const size = treeSize(inclusion.tree_size, "tree_size");
      if (index !== BigInt(state.leaf.seq)) fail(`the proof is for leaf ${index}, the leaf is seq ${state.leaf.seq}`);
      if (size !== state.checkpoint.size) fail(`the proof is in a tree of ${size}, the checkpoint's is ${state.checkpoint.size}`);
      const root = await rootOfInclusion(state.leafHash, index, size, proofHashes(inclusion.hashes, MAX_PROOF_HASHES, "proof hash"));
      const facts = [["check.computed", hexOf(root)], ["check.expected", hexOf(state.checkpoint.root)]];
      if (!equalBytes(root, state.checkpoint.root)) fail("the proof does not lead to the checkpoint's root", facts);
      return facts;
    }),
    step("log-key", async () => {
      state.key = await parseVerifierKey(trust.log_key);
      if (state.key.name !== trust.origin) fail("the log key is not named after the trust file's origin");
      const facts = [["check.computed", hexOf(state.key.keyHash)], ["check.expected", state.key.statedHashHex]];
      if (hexOf(state.key.keyHash) !== state.key.statedHashHex) fail("the key hash differs from the key string's", facts);
      return facts;
    }),
    step("signature", async () => {
      if (!state.checkpoint || !state.key) fail("no checkpoint or log key to check");
      if (!(await signedBy(state.checkpoint, state.key))) fail(`no signature line of ${state.key.name} with key hash ${hexOf(state.key.keyHash)} verifies`);
      return [["check.computed", `${state.checkpoint.size} · ${hexOf(state.checkpoint.root)}`]];
    }),
  ];
  return runSteps(steps);
}

/** Each step's result; one step failing does not stop the others. */
async function runSteps(steps) {
  const results = [];
  for (const { id, run } of steps) {
    try {
      results.push({ id, ok: true, facts: await run(), reason: "" });
    } catch (error) {
      results.push({ id, ok: false, facts: error.facts ?? [], reason: error.message });
    }
  }
  return results;
}

/** The steps of an activity record's check (spec sections 7.3 and 4), then its batch receipt's:
 * the page shows this record (`shown`: {activity_id, reduction_g}, as the page states them); its
 * leaf hash is SHA-256(0x00 || record bytes); its inclusion proof leads to the root that the
 * activity.batch event of the receipt commits to, in a tree of that batch's count; and the receipt
 * proves that event in the log the pinned trust file's key signs. */
export async function checkRecord(proof, receipt, trust, shown) {
  const state = {};
  const steps = [
    step("record-shown", async () => {
      state.record = JSON.parse(proof?.record);
      const { activity_id: id, reduction_g: grams } = state.record ?? {};
      if (id !== shown.activity_id || grams !== shown.reduction_g) {
        fail(`the page shows ${shown.activity_id}, ${shown.reduction_g} g; the record is ${id}, ${grams} g`);
      }
      return [["check.computed", `${id} · ${grams} g`]];
    }),
    step("record-hash", async () => {
      if (typeof proof?.record !== "string") fail("no record bytes");
      state.hash = await leafHash(encoder.encode(proof.record));
      return [["check.computed", hexOf(state.hash)]];
    }),
    step("record-inclusion", async () => {
      const leaf = typeof receipt?.leaf === "string" ? JSON.parse(receipt.leaf) : null;
      if (leaf?.type !== "activity.batch" || leaf.body?.batch_id !== proof.batch_id || leaf.seq !== proof.batch_seq) {
        fail(`the receipt is not of the activity.batch event of ${proof.batch_id} at seq ${proof.batch_seq}`);
      }
      if (!state.hash) fail("no leaf hash to prove");
      const batchRoot = hashOfHex(leaf.body.root, "the batch's root");
      const inclusion = proof.inclusion ?? {};
      const size = treeSize(inclusion.tree_size, "tree_size");
      if (size !== treeSize(leaf.body.count, "the batch's count")) fail(`the proof is in a tree of ${size}, the batch holds ${leaf.body.count} records`);
      const root = await rootOfInclusion(state.hash, treeSize(inclusion.leaf_index, "leaf_index"), size,
                                         proofHashes(inclusion.hashes, MAX_PROOF_HASHES, "proof hash"));
      const facts = [["check.computed", hexOf(root)], ["check.expected", hexOf(batchRoot)]];
      if (!equalBytes(root, batchRoot)) fail("the proof does not lead to the batch's root", facts);
      return facts;
    }),
  ];
  return [...(await runSteps(steps)), ...(await checkReceipt(receipt, trust))];
}
