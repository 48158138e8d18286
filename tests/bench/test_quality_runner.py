"""run_methods: generation order, the on-disk cache and the warm-up, with a fake generator."""

import json

from PIL import Image

from ecdiff.bench.quality_runner import ImageCache, Method, Record, run_methods
from ecdiff.search.prompts import PromptItem

METHODS = [Method("a", None, {"strategy": "a"}), Method("b", None, {"strategy": "b"})]
ITEMS = [PromptItem("a red circle", 1), PromptItem("a blue square", 2), PromptItem("a green triangle", 3)]


class FakeGenerate:
    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __call__(self, method: Method, item: PromptItem) -> Record:
        self.calls.append((method.name, item.seed))
        shade = 40 * item.seed + (100 if method.name == "b" else 0)
        return Record(Image.new("RGB", (8, 8), (shade, 0, 0)), 0.1 * item.seed, 1, 2, 3, 4, False)


def test_pictures_are_generated_prompt_by_prompt_and_cached(tmp_path):
    cache, fake = ImageCache(tmp_path, "run"), FakeGenerate()
    records = run_methods(METHODS, ITEMS, cache, fake, warmup=True, progress=False)
    # One warm-up per method on the first prompt, then every method of a prompt before the next prompt.
    assert fake.calls == [("a", 1), ("b", 1), ("a", 1), ("b", 1), ("a", 2), ("b", 2), ("a", 3), ("b", 3)]
    assert [r.latency_s for r in records["b"]] == [0.1, 0.2, 0.1 * 3]
    assert records["b"][2].image.getpixel((0, 0)) == (220, 0, 0) and not records["b"][2].from_cache

    lost = sorted(next(tmp_path.glob("a-*")).glob("*.json"))[0]  # one entry of method a lost
    lost_seed = json.loads(lost.read_text())["seed"]
    lost.unlink()
    again = FakeGenerate()
    resumed = run_methods(METHODS, ITEMS, ImageCache(tmp_path, "run"), again, warmup=True, progress=False)
    assert again.calls == [("a", 1), ("a", lost_seed)]  # a warm-up, then only the lost picture
    assert sum(r.from_cache for r in resumed["a"]) == 2 and all(r.from_cache for r in resumed["b"])
