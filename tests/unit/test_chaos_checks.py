"""The chaos suite's own checks, on made-up data."""

from worker.chaos import went_back


def test_a_state_written_again_the_same_is_not_a_step_back() -> None:
    assert went_back({b"a": [1, 2, 2, 3], b"b": [0, 0]}) == ([], [])


def test_a_state_with_fewer_transactions_after_more_went_back_and_at_the_end_rolls_back() -> None:
    posted = {b"a": [1, 3, 2, 4], b"b": [1, 3, 2], b"c": [1, 2]}
    assert went_back(posted) == ([b"a", b"b"], [b"b"])
