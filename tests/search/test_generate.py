"""A timed generation: its step seconds are the steps' own on an asynchronous device too."""

from ecdiff import preparation
from ecdiff.loading import load_pair
from ecdiff.search.generate import generate
from ecdiff.strategies import ECDiff


def test_a_timed_generation_has_its_steps_timed_to_the_device(monkeypatch):
    asked = []
    real = preparation.PreparedRun.sample

    def spy(self, on_step=None, synchronize=False):
        asked.append(synchronize)
        return real(self, on_step, synchronize)

    monkeypatch.setattr(preparation.PreparedRun, "sample", spy)
    made = generate(load_pair(tiny=True), ECDiff(2, 2, 0.4, 5), "a small red circle at the top left on a white "
                    "background", seed=0, num_steps=6)
    assert asked == [True]  # the search's step costs are fitted from these seconds (ecdiff/search/costs.py)
    assert 0 < sum(made.step_seconds.values()) <= made.latency_s
