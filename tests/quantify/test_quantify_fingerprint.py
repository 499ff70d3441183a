"""Fingerprints name the real-world act: equal across platforms, different across acts. Record
bytes are RFC 8785 (JCS)."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from quantify.activity import InvalidActivity, activity_record, beijing_day, fingerprint, record_bytes, rules_for
from quantify.methodology import load_shipped
from quantify_strategies import inputs_for

LIBRARY = load_shipped()
METRO = LIBRARY.get("HB-GT-METRO")
IDENT = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,30}", fullmatch=True)
TIMES = st.datetimes().map(lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def ride(activity_id, subject="p-alice", at="2026-01-05T08:00:12.000000Z", distance_m=5000, entry="S01", exit="S09"):
    return activity_record(METRO, {"activity_id": activity_id, "subject": subject, "occurred_at": at,
                                   "inputs": {"distance_m": distance_m, "entry_station": entry, "exit_station": exit}})


def test_the_same_ride_from_two_platforms_has_one_fingerprint():
    metro_app = ride("metro-app-991", at="2026-01-05T08:00:12.000000Z", distance_m=5000)
    pay_app = ride("alipay-x-17", at="2026-01-05T08:00:48.500000Z", distance_m=5120)  # measured differently
    assert metro_app["activity_id"] != pay_app["activity_id"]
    assert metro_app["fingerprint"] == pay_app["fingerprint"]


@pytest.mark.parametrize("change", [
    {"subject": "p-bob"}, {"at": "2026-01-05T08:01:00.000000Z"}, {"entry": "S02"}, {"exit": "S10"},
    {"at": "2026-01-06T08:00:12.000000Z"},
])
def test_different_acts_have_different_fingerprints(change):
    assert ride("a") ["fingerprint"] != ride("b", **change)["fingerprint"]


def test_the_version_is_not_part_of_the_act():
    bus1, bus2 = LIBRARY.get("HB-GT-BUS", 1), LIBRARY.get("HB-GT-BUS", 2)
    args = ("p-1", "2026-01-05T08:00:00.000000Z", {"line": "L5"})
    assert fingerprint(bus1, *args) == fingerprint(bus2, *args)
    # ...but the methodology is: a bus ride is not a metro ride.
    cycle = LIBRARY.get("HB-GT-CYCLE")
    walk = LIBRARY.get("HB-GT-WALK")
    assert fingerprint(cycle, "p-1", args[1], {"distance_m": 1}) != fingerprint(walk, "p-1", args[1], {"distance_m": 1})


def test_fingerprint_definition_is_the_documented_one():
    fp = fingerprint(METRO, "p-1", "2026-01-05T08:00:59.999999Z",
                     {"distance_m": 1, "entry_station": "S1", "exit_station": "S2"})
    text = json.dumps({"fields": {"entry_station": "S1", "exit_station": "S2"}, "methodology_id": "HB-GT-METRO",
                       "subject": "p-1", "time": "2026-01-05T08:00Z"}, sort_keys=True, separators=(",", ":"))
    assert fp == hashlib.sha256(b"puhui-fingerprint/v1\n" + text.encode()).hexdigest()


def test_day_fingerprints_use_the_beijing_day():
    walk = LIBRARY.get("HB-GT-WALK")
    # 15:59 UTC and 16:00 UTC are 23:59 and 00:00 in Beijing: different days.
    late = fingerprint(walk, "p-1", "2026-01-05T15:59:00.000000Z", {"distance_m": 1000})
    next_day = fingerprint(walk, "p-1", "2026-01-05T16:00:00.000000Z", {"distance_m": 1000})
    same_day = fingerprint(walk, "p-1", "2026-01-06T03:00:00.000000Z", {"distance_m": 9000})
    assert late != next_day == same_day
    assert beijing_day("2026-12-31T16:00:00.000000Z") == "2027-01-01"
    assert beijing_day("2024-02-28T16:30:00.000000Z") == "2024-02-29"


@pytest.mark.parametrize("subject, at", [
    ("", "2026-01-05T08:00:00.000000Z"), ("p 1", "2026-01-05T08:00:00.000000Z"), ("张三", "2026-01-05T08:00:00.000000Z"),
    ("p1", "2026-02-30T08:00:00.000000Z"), ("p1", "2026-01-05T24:00:00.000000Z"), ("p1", "2026-01-05T08:00:00Z"),
    ("p1", "2026-01-05 08:00:00.000000Z"), ("p1", None),
])
def test_malformed_subjects_and_times_are_refused(subject, at):
    with pytest.raises(InvalidActivity):
        fingerprint(METRO, subject, at, {"distance_m": 1, "entry_station": "S1", "exit_station": "S2"})


@settings(max_examples=300, deadline=None)
@given(activity_id=IDENT, subject=IDENT, at=TIMES, distance_m=st.integers(0, 100000), entry=IDENT, exit=IDENT,
       reduction_g=st.integers(0, 2**53 - 1))
def test_record_bytes_are_jcs(activity_id, subject, at, distance_m, entry, exit, reduction_g):
    inputs = {"exit_station": exit, "distance_m": distance_m, "entry_station": entry}
    rules = rules_for(METRO)
    inputs_jcs = rules.check_inputs(inputs)
    fp = rules.fingerprint(subject, at, inputs)
    record = {"activity_id": activity_id, "fingerprint": fp, "inputs": inputs, "occurred_at": at,
              "reduction_g": reduction_g, "subject": subject}
    assert record_bytes(activity_id, fp, inputs_jcs, at, reduction_g, subject) == rfc8785.dumps(record)


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(LIBRARY.all()), st.data())
def test_every_methodology_writes_jcs_inputs(methodology, data):
    inputs = data.draw(inputs_for(methodology))
    assert rules_for(methodology).check_inputs(inputs).encode() == rfc8785.dumps(inputs)
