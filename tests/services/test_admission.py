import pytest

from ecdiff.services.admission import Admission, Busy


def test_slots_are_bounded_and_released():
    admission = Admission(2)
    with admission.slot(), admission.slot():
        assert admission.active == 2
        with pytest.raises(Busy, match="server busy: 2 of 2 requests running"):
            admission.acquire()
        assert admission.active == 2
    assert admission.active == 0


def test_a_failing_block_releases_its_slot():
    admission = Admission(1)
    with pytest.raises(RuntimeError), admission.slot():
        raise RuntimeError("boom")
    assert admission.active == 0


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="must be >= 1"):
        Admission(0)
