// What the reader's browser remembers between visits (local storage, this site only): the trust
// file pinned on the first visit or pasted from the operator's published source, and the last
// checkpoint that was seen to be consistent. Checks use the pinned trust file, never the served one.

const TRUST_ITEM = "puhui.trust.v1";
const CHECKPOINT_ITEM = "puhui.checkpoint.v1";

/** JSON with its object keys sorted, so that two trust files compare by content, not layout. */
export function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value !== null && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

function read(item) {
  try {
    const text = localStorage.getItem(item);
    return text === null ? null : JSON.parse(text);
  } catch {
    return null; // storage off, or an entry no longer JSON: as on a first visit
  }
}

function write(item, value) {
  try {
    localStorage.setItem(item, JSON.stringify(value));
  } catch {
    // storage off or full: nothing is remembered, and the next visit is a first visit again
  }
}

/** The trust file to check with, and how the served one compares: "first" (pinned now), "same",
 * or "changed" (the pinned one stays in force). */
export function pinTrust(served) {
  const pinned = read(TRUST_ITEM);
  if (pinned === null) {
    write(TRUST_ITEM, served);
    return { trust: served, state: "first" };
  }
  return { trust: pinned, state: canonical(pinned) === canonical(served) ? "same" : "changed" };
}

/** The reader's own trust file (from the operator's published source) replaces the pin. */
export function pinPasted(trust) {
  write(TRUST_ITEM, trust);
}

/** The checkpoint note remembered from an earlier visit, or null. */
export function rememberedCheckpoint() {
  const remembered = read(CHECKPOINT_ITEM);
  return typeof remembered?.note === "string" ? remembered.note : null;
}

export function rememberCheckpoint(note) {
  write(CHECKPOINT_ITEM, { note });
}
