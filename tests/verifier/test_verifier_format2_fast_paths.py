"""Format 2's accepting fast paths give what the full checks give (house rule: a fast path only
ever accepts what the full path accepts, and a refusal is explained by the full path)."""

import random
from types import SimpleNamespace

from verifier.records_v2 import ActivityChecker2, _FileState2
from verifier.replay import Holdings, Rejected
from verifier.replay_v2 import Replay2

ISSUANCES = {"i-a": (0, 50), "i-b": (50, 100), "i-c": (100, 150), "i-d": (150, 200)}


def spend_replay():
    """A Replay2 holding only what _spendable reads for a transfer: four issuances of 50 serials."""
    replay = Replay2.__new__(Replay2)
    replay.open_cases = {}
    replay.issuance_ids = {issuance_id: index for index, issuance_id in enumerate(ISSUANCES)}
    replay.issuance_starts = [start for start, _ in ISSUANCES.values()]
    replay.issuance_info = [(end, "M", 2026, "42") for _, end in ISSUANCES.values()]
    return replay


def full_spendable(replay, leaf, account, account_id):
    """_spendable as section 6 reads for a transfer: NOT_HELD of format 1 (_held), then exactly the
    lowest serials of the chosen issuances."""
    body = leaf.body
    windows = replay._chosen_windows(body["issuances"])
    serials, amount_g = leaf.effects["serials"], body["amount_g"]
    replay._held(account, serials, amount_g, account_id)
    if account.holdings.lowest(amount_g, windows) != serials:
        chosen = "of the chosen issuances " if windows is not None else ""
        raise Rejected("NOT_HELD", f"effects.serials are not the {amount_g} lowest serials {chosen}that {account_id!r} holds")


def outcome(check, *arguments):
    try:
        check(*arguments)
    except Rejected as rejected:
        return (rejected.code, rejected.message)
    return None


def random_holdings(rng):
    holdings = Holdings()
    start = rng.randrange(0, 10)
    while start < 200:
        end = min(200, start + rng.randrange(1, 40))
        holdings.add(((start, end),))
        start = end + rng.randrange(1, 30)
    return holdings


def candidate_serials(rng, lowest, amount_g):
    """The lowest serials themselves, or a near miss of them, or ranges drawn at random."""
    serials = [list(pair) for pair in lowest] if lowest else [[0, amount_g]]
    choice = rng.randrange(7)
    if choice == 1:
        serials[rng.randrange(len(serials))][rng.randrange(2)] += rng.choice((-1, 1))
    elif choice == 2:
        start, end = serials[0]
        if end - start > 1:
            serials[0:1] = [[start, start + 1], [start + 1, end]]  # not merged
    elif choice == 3:
        serials.reverse()
    elif choice == 4:
        serials.append([serials[-1][0], serials[-1][0] + 1])  # overlapping
    elif choice == 5:
        serials = [sorted(rng.sample(range(201), 2)) for _ in range(rng.randrange(1, 3))]
    elif choice == 6:
        serials = [[pair[0] + 1, pair[1] + 1] for pair in serials]
    return serials


def test_a_spend_of_the_lowest_serials_skips_only_checks_that_would_pass():
    rng = random.Random(10)
    replay = spend_replay()
    accepted = refused = 0
    for _ in range(4000):
        account = SimpleNamespace(holdings=random_holdings(rng))
        issuances = None if rng.random() < 0.3 else rng.sample(sorted(ISSUANCES), rng.randrange(1, 5))
        amount_g = rng.randrange(1, 80)
        windows = replay._chosen_windows(issuances)
        serials = candidate_serials(rng, account.holdings.lowest(amount_g, windows), amount_g)
        leaf = SimpleNamespace(type="transfer", body={"issuances": issuances, "amount_g": amount_g}, effects={"serials": serials})
        expected = outcome(full_spendable, replay, leaf, account, "acct")
        assert outcome(replay._spendable, leaf, account, "acct") == expected, (account.holdings.starts, account.holdings.ends, issuances, amount_g, serials)
        accepted += expected is None
        refused += expected is not None
    assert accepted > 500 and refused > 500  # both paths were taken


def steps_checker(cap_g, relaxed):
    checker = ActivityChecker2.__new__(ActivityChecker2)
    checker._definition = SimpleNamespace(daily_cap_g=cap_g)
    checker._relaxed = relaxed
    return checker


def test_steps_are_checked_by_section_7_2_whatever_the_grams_before():
    """A group's records against min(formula_g, max(0, cap_g - total_before)), the total before
    beyond the cap included, strict and relaxed; the first finding is the lowest record number."""
    rng = random.Random(72)
    for _ in range(3000):
        cap_g, relaxed = rng.choice((0, 5, 1000)), rng.random() < 0.3
        groups, number, first = [], 0, None
        for _ in range(rng.randrange(1, 4)):
            before_g = rng.choice((0, cap_g - 1, cap_g, cap_g + 3, rng.randrange(0, 1200)))
            steps, total_g = [], before_g
            for _ in range(rng.randrange(1, 4)):
                number += rng.randrange(1, 5)
                formula_g = rng.choice((0, 1, rng.randrange(0, 1200)))
                expected_g = min(formula_g, max(0, cap_g - total_g))
                reduction_g = rng.choice((expected_g, expected_g, expected_g + 1, max(0, expected_g - 1), formula_g))
                if (reduction_g > expected_g if relaxed else reduction_g != expected_g) and first is None:
                    first = (number, f"line {number}: reduction_g {reduction_g}, section 7.2 gives {expected_g}")
                steps.append((number, formula_g, reduction_g))
                total_g += reduction_g
            groups.append((steps, before_g))
        rng.shuffle(groups)  # the first finding is the lowest number, whatever the groups' order
        state = _FileState2()
        steps_checker(cap_g, relaxed)._check_steps(state, groups)
        assert state.quantification == first, (cap_g, relaxed, groups)


def test_lowest_serials_from_the_first_range_are_those_of_the_full_search():
    """Holdings.lowest without windows answers from the first range held when it has enough: the
    same ranges as the search over the window of everything held, for any holdings and amount."""
    rng = random.Random(11)
    first_range_answers = 0
    for _ in range(3000):
        holdings = random_holdings(rng) if rng.random() < 0.95 else Holdings()
        starts, ends = holdings.starts, holdings.ends
        everything = ((starts[0], ends[-1]),) if starts else ()
        for amount_g in (0, 1, rng.randrange(1, 60), rng.randrange(1, 250), ends[0] - starts[0] if starts else 1):
            assert holdings.lowest(amount_g) == holdings.lowest(amount_g, everything), (starts, ends, amount_g)
            first_range_answers += bool(starts) and 0 < amount_g <= ends[0] - starts[0]
    assert first_range_answers > 3000


def random_windows(rng):
    """Sorted, disjoint windows: chosen issuances' ranges, or drawn at random."""
    if rng.random() < 0.5:
        return sorted(ISSUANCES[issuance_id] for issuance_id in rng.sample(sorted(ISSUANCES), rng.randrange(1, 5)))
    bounds = sorted(rng.sample(range(0, 221), 2 * rng.randrange(1, 4)))
    return list(zip(bounds[0::2], bounds[1::2]))


def test_lowest_serials_of_chosen_issuances_from_one_range_are_those_of_the_full_search():
    """Holdings.lowest with windows answers from the first range held inside the first window when
    it has enough: the same ranges as the search, for any holdings, windows and amount."""
    rng = random.Random(12)
    one_range_answers = 0
    for _ in range(3000):
        holdings = random_holdings(rng) if rng.random() < 0.95 else Holdings()
        windows = random_windows(rng) if rng.random() < 0.97 else []
        for amount_g in (0, 1, rng.randrange(1, 20), rng.randrange(1, 60), rng.randrange(1, 250)):
            lowest = holdings.lowest(amount_g, windows)
            assert lowest == holdings.search(amount_g, windows), (holdings.starts, holdings.ends, windows, amount_g)
            one_range_answers += lowest is not None and len(lowest) == 1 and amount_g > 0
    assert one_range_answers > 3000
