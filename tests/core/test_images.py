"""Pictures: a video is its frames, stored and sent as one animated PNG and read back frame for frame."""

import io

import numpy as np
import pytest
from PIL import Image

from ecdiff.images import FRAME_MS, Video, open_picture, png_bytes


def frames(count, seed=0, size=(8, 6)):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(count)]


def test_a_video_round_trips_through_an_animated_png_frame_for_frame():
    # Frames 1-2 and 4-6 repeat: PIL stores each run as one longer frame, read back as the run.
    distinct = frames(3)
    video = Video([distinct[0], distinct[1], distinct[1], distinct[2], distinct[2], distinct[2]])
    data = png_bytes(video)
    with Image.open(io.BytesIO(data)) as png:
        assert png.format == "PNG" and png.n_frames == 3 and png.info["duration"] == FRAME_MS
    back = open_picture(io.BytesIO(data))
    assert isinstance(back, Video) and back.size == (8, 6)
    assert [f.tobytes() for f in back.frames] == [f.convert("RGB").tobytes() for f in video.frames]
    assert back.tobytes() == video.tobytes()


def test_a_still_png_reads_back_as_an_image(tmp_path):
    image = frames(1)[0]
    image.save(tmp_path / "still.png")
    back = open_picture(tmp_path / "still.png")
    assert isinstance(back, Image.Image) and back.tobytes() == image.tobytes()


def test_a_video_thumbnail_shrinks_every_frame_and_only_png_is_written():
    video = Video(frames(2, size=(16, 16)))
    video.thumbnail((4, 4))
    assert {f.size for f in video.frames} == {(4, 4)}
    with pytest.raises(ValueError, match="animated PNG"):
        video.save(io.BytesIO(), format="JPEG")
    with pytest.raises(ValueError, match="at least one frame"):
        Video([])
