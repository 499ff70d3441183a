"""The fast path of leaves.py (one regular expression per common event type) must accept only lines
the general path accepts, and give the same leaf: compared here on valid lines and on many lines
mutated a character at a time, with the parser in the same state."""

import base64
import random

import pytest

from verifier.canonical import jcs
from verifier.digests import Blake2bDigester, StringHashDigester
from verifier.leaves import _FAST, LeafParser

ORIGIN = "registry.test.example/puhui"
KEY = "0123456789abcdef"
SIG = base64.b64encode(bytes(range(64))).decode()
ROOT_KEYS = {KEY: bytes(32)}
PREVIOUS_TIME = "2026-04-01T00:00:00.000010Z"


def line(event_type, body, effects=None, seq=7, time="2026-04-01T00:00:00.000011Z", key=KEY, sig=SIG):
    leaf = {"auth": {"key": key, "sig": sig}, "body": body, "seq": seq, "time": time, "type": event_type}
    if effects is not None:
        leaf["effects"] = {"serials": effects}
    return jcs(leaf)


BASE_LINES = [
    line("transfer", {"transfer_id": "tr-1", "from": "ent-1", "to": "ent-2", "amount_g": 300, "request_id": "r1"}, [[0, 300]]),
    line("transfer", {"transfer_id": "tr-2", "from": "a", "to": "b", "amount_g": 5, "request_id": "ünïcode 😀"}, [[0, 2], [4, 7]]),
    line("retirement", {"retirement_id": "ret-1", "account": "ent-2", "amount_g": 100, "purpose": "voluntary", "beneficiary": "Ö \u2028 x\x7f", "request_id": "r2"}, [[10, 110]]),
    line("retirement", {"retirement_id": "ret-2", "account": "ent-2", "amount_g": 1, "purpose": "ets_offset", "beneficiary": "", "request_id": "r" * 128}, [[9007199254740990, 9007199254740991]]),
    line("neutrality.claim", {"claim_id": "c-1", "claimant": "ent-1", "subject": {"kind": "organization", "name": "ent 1"}, "period_start": "2026-01-01", "period_end": "2026-03-31", "footprint_g": 200, "retirements": ["ret-1"], "request_id": "r3"}),
    line("neutrality.claim", {"claim_id": "c-2", "claimant": "ent-1", "subject": {"kind": "event", "name": "𝄞 q"}, "period_start": "2024-02-29", "period_end": "2024-02-29", "footprint_g": 1, "retirements": ["ret-1", "ret-2", "ret-3"], "request_id": "r4"}),
    line("offset.surrender", {"surrender_id": "s-1", "entity": "ce-1", "compliance_year": 2026, "allocation_g": 10**12, "retirements": ["ret-9"], "request_id": "r5"}),
    line("offset.surrender", {"surrender_id": "s-2", "entity": "ce-1", "compliance_year": -5, "allocation_g": 0, "retirements": ["a", "b"], "request_id": "r6"}),
    line("neutrality.claim", {"claim_id": "c-4", "claimant": "e", "subject": {"kind": "event", "name": "\"q\" \\ \n"}, "period_start": "2026-01-01", "period_end": "2026-02-01", "footprint_g": 1, "retirements": ["r"], "request_id": "r8"}),
    line("transfer", {"transfer_id": "tr-3", "from": "x", "to": "x", "amount_g": 1, "request_id": "r7"}, [[0, 1]]),
    line("neutrality.claim", {"claim_id": "c-3", "claimant": "e", "subject": {"kind": "event", "name": "n"}, "period_start": "2026-03-01", "period_end": "2026-02-01", "footprint_g": 1, "retirements": ["r"], "request_id": "r8"}),
    line("transfer", {"transfer_id": "tr-4", "from": "a", "to": "b", "amount_g": 9007199254740992, "request_id": "r9"}, [[0, 1]]),
    line("transfer", {"transfer_id": "tr-5", "from": "a", "to": "b", "amount_g": 1, "request_id": "r10"}, [[0, 9007199254740992]]),
    line("transfer", {"transfer_id": "tr-6", "from": "a", "to": "b", "amount_g": 1, "request_id": "r11"}, [], seq=8),
    line("transfer", {"transfer_id": "tr-7", "from": "a", "to": "b", "amount_g": 1, "request_id": "r12"}, [[0, 1]], time="2026-04-01T00:00:00.000009Z"),
    line("retirement", {"retirement_id": "ret-3", "account": "a", "amount_g": 1, "purpose": "voluntary", "beneficiary": "b", "request_id": "r13"}, [[0, 1]], time="2026-02-30T00:00:00.000011Z"),
    line("retirement", {"retirement_id": "ret-4", "account": "a", "amount_g": 1, "purpose": "voluntary", "beneficiary": "b", "request_id": "r14"}, [[0, 1]], sig="A" * 88),
    line("retirement", {"retirement_id": "ret-5", "account": "a", "amount_g": 1, "purpose": "voluntary", "beneficiary": "b", "request_id": "r15"}, [[0, 1]], key="not a key"),
]
MUTATION_CHARACTERS = ['"', "\\", ",", "{", "}", "[", "]", ":", "0", "1", "9", "-", ".", " ", "\x01", "\x7f", "é", "😀", "a", "Z", "_", "T", "e"]


def leaf_state(leaf):
    return tuple(getattr(leaf, name) for name in ("seq", "type", "body", "effects", "key_id", "signed", "problem", "key_guess", "verified"))


def parse_both(raw):
    fast, slow = LeafParser(ORIGIN, ROOT_KEYS), LeafParser(ORIGIN, ROOT_KEYS)
    slow._parse_fast = lambda raw, text: None
    for parser in (fast, slow):
        parser.next_seq = 7
        parser.previous_time = PREVIOUS_TIME
    fast_leaf, slow_leaf = fast.parse(raw), slow.parse(raw)
    assert leaf_state(fast_leaf) == leaf_state(slow_leaf), raw
    assert (fast.next_seq, fast.previous_time, fast.key_guesses) == (slow.next_seq, slow.previous_time, slow.key_guesses), raw
    return fast_leaf


def test_fast_path_covers_valid_lines():
    parser = LeafParser(ORIGIN, ROOT_KEYS)
    for raw in BASE_LINES[:8]:
        parser.next_seq, parser.previous_time = 7, PREVIOUS_TIME
        assert parser._parse_fast(raw, raw.decode("utf-8")) is not None, raw
        assert parse_both(raw).problem is None
    assert set(_FAST) == {"transfer", "retirement", "neutrality.claim", "offset.surrender"}


@pytest.mark.parametrize("raw", BASE_LINES)
def test_fast_path_equals_general_path_on_edge_lines(raw):
    parse_both(raw)


@pytest.mark.parametrize("seed", range(8))
def test_fast_path_equals_general_path_on_mutated_lines(seed):
    generator = random.Random(seed)
    for raw in BASE_LINES:
        text = raw.decode("utf-8")
        for _ in range(300):
            position = generator.randrange(len(text))
            choice = generator.random()
            if choice < 0.5:
                mutant = text[:position] + generator.choice(MUTATION_CHARACTERS) + text[position + 1 :]
            elif choice < 0.7:
                mutant = text[:position] + text[position + 1 :]
            elif choice < 0.9:
                mutant = text[:position] + generator.choice(MUTATION_CHARACTERS) + text[position:]
            else:
                mutant = text[:position] + text[position] + text[position:]
            parse_both(mutant.encode("utf-8"))
        parse_both(raw[:-1] + b"\xff}")


@pytest.mark.parametrize("digester", [StringHashDigester(), Blake2bDigester(bytes(32))], ids=["string-hash", "blake2b"])
def test_clean_chunk_path_equals_record_by_record(digester):
    from verifier.activities import _check_chunk, _check_clean_chunk, check_record_chunk
    from conftest import fingerprint_of, record_bytes

    records = [
        record_bytes(f"a-{n}", fingerprint_of(f"f{n}"), f"2026-01-{1 + n % 28:02d}T08:00:00.000000Z", 10 + n, inputs={"km": n, "mode": "métro 😀"})
        for n in range(37)
    ]
    key = digester
    job = ("2026-01-01", "2026-01-31", key, 2049, b"\n".join(records))
    assert _check_clean_chunk("2026-01-01", "2026-01-31", digester, job[4]) is not None
    assert check_record_chunk(job) == _check_chunk(job)
    generator = random.Random(5)
    for _ in range(1500):
        mutated = list(records)
        index = generator.randrange(len(mutated))
        text = mutated[index].decode("utf-8")
        position = generator.randrange(len(text))
        text = text[:position] + generator.choice(MUTATION_CHARACTERS) + text[position + generator.randrange(2) :]
        mutated[index] = text.encode("utf-8")
        job = ("2026-01-01", "2026-01-31", key, 1, b"\n".join(mutated))
        assert check_record_chunk(job) == _check_chunk(job)
    # The clean path matches the chunk as a whole, one line per match: lines joined, split, empty,
    # or ending in a carriage return must still be decided as record by record.
    joined = b"\n".join(records)
    first_break = joined.index(b"\n")
    inputs_at = records[0].index(b'"inputs":{') + 10
    for blob in (
        joined[:first_break] + joined[first_break + 1 :],  # two records on one line
        joined[:inputs_at] + b"\n" + joined[inputs_at:],  # one record cut in two
        joined + b"\n",  # an empty last line
        b"\n" + joined,  # an empty first line
        joined.replace(b"\n", b"\r\n", 1),
        joined.replace(b'"mode":', b'"mo\\nde":', 1),  # an escaped newline inside a key: fine
    ):
        job = ("2026-01-01", "2026-01-31", key, 1, blob)
        assert check_record_chunk(job) == _check_chunk(job)
    for inputs_pair in (('{"a":"}', '{"}'), ('{"a":1},{"b":2}', '{"c":3}')):
        mutated = list(records)
        for index, inputs_text in zip((3, 4), inputs_pair):
            mutated[index] = mutated[index].replace(b'"inputs":{', b'"inputs":' + inputs_text.encode() + b',"x":{', 1)
        job = ("2026-01-01", "2026-01-31", key, 1, b"\n".join(mutated))
        assert check_record_chunk(job) == _check_chunk(job)


def test_digest_set_add_all_matches_a_set():
    from array import array

    from verifier.digests import DigestSet

    generator = random.Random(3)
    table, reference = DigestSet(4), set()
    for _ in range(200):
        digests = array("q", (generator.choice([generator.randrange(2, 60), generator.getrandbits(62)]) for _ in range(generator.randrange(1, 40))))
        expected_repeats = []
        for position, digest in enumerate(digests):
            if digest in reference:
                expected_repeats.append(position)
            else:
                reference.add(digest)
        assert table.add_all(digests) == expected_repeats
        assert len(table) == len(reference)
        assert all(digest in table for digest in reference)
