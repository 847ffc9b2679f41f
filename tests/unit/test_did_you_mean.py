"""Unknown ids get "did you mean": the same id in another case first, then near spellings, fast on many ids."""

import time

from lifeloop.errors import closest, did_you_mean


def test_an_id_in_another_case_is_the_first_suggestion():
    assert closest("rm00002", ["RM00001", "RM00002", "RM00003"]) == ["RM00002"]
    assert did_you_mean("c000000064", ["C000000064", "C000000065"]) == "; did you mean 'C000000064'?"


def test_near_spellings_are_suggested_in_order_of_likeness_and_nothing_when_nothing_is_close():
    assert did_you_mean("retention_cal", ["retention_call", "honeymoon_welcome"]) == "; did you mean 'retention_call'?"
    assert did_you_mean("zzz", ["retention_call"]) == ""
    assert did_you_mean("anything", []) == ""


def test_a_million_customer_numbers_still_answer_within_seconds():
    ids = [f"C{i:09d}" for i in range(1_000_000)]
    start = time.perf_counter()
    assert closest("c000765432", ids) == ["C000765432"]
    assert closest("C0007654321", ids)[0] == "C000765432"   # a digit too many at the end
    # not a benchmark: a bound loose enough for a loaded 2-core machine that still catches a quadratic scan
    assert time.perf_counter() - start < 30.0
