"""Latents to pictures through a pipeline's own VAE and image or video processor.

A picture is a PIL image, or for a video model (CogVideoX) a `Video`: its frames in order, stored
and sent as one animated PNG (APNG, 8 frames a second as CogVideoX's videos; a viewer without APNG
support shows the first frame). So the services' `image_png`, the benchmarks' stored pictures and
`png_bytes` carry both kinds unchanged.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageSequence

from .conditioning import denoising_model, is_video_model

FRAME_MS = 125  # 8 fps: CogVideoX's frame rate


class Video:
    """A decoded video: RGB frames of one size, in order."""

    def __init__(self, frames: Sequence[Image.Image]) -> None:
        if not frames:
            raise ValueError("a video needs at least one frame")
        self.frames = tuple(frames)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames[0].size

    def save(self, fp, format: str = "PNG") -> None:
        """An animated PNG: PIL merges identical consecutive frames into one longer frame (`open_picture`
        expands them again)."""
        if format.upper() != "PNG":
            raise ValueError(f"a video is saved as an animated PNG, not {format}")
        self.frames[0].save(fp, format="PNG", save_all=True, append_images=self.frames[1:], duration=FRAME_MS, loop=0)

    def tobytes(self) -> bytes:
        return b"".join(frame.tobytes() for frame in self.frames)

    def thumbnail(self, size: tuple[int, int]) -> None:
        for frame in self.frames:
            frame.thumbnail(size)


@torch.no_grad()
def decode_images(pipe, latents: torch.Tensor) -> list[Image.Image] | list[Video]:
    """One picture per sample: a PIL image, or a `Video` for a video pipeline (latents [B, F, C, H, W],
    decoded as CogVideoXPipeline decodes them)."""
    vae = pipe.vae
    if is_video_model(denoising_model(pipe)):
        frames = pipe.decode_latents(latents.to(vae.dtype))
        return [Video(video) for video in pipe.video_processor.postprocess_video(video=frames, output_type="pil")]
    decoded = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded, output_type="pil")


def png_bytes(image: Image.Image | Video) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def open_picture(path: Path | str | io.BytesIO) -> Image.Image | Video:
    """A stored picture back: an RGB image, or a `Video` when the PNG is animated."""
    with Image.open(path) as image:
        if getattr(image, "n_frames", 1) == 1:
            return image.convert("RGB")
        frames: list[Image.Image] = []
        for frame in ImageSequence.Iterator(image):
            repeat = max(1, round(frame.info.get("duration", FRAME_MS) / FRAME_MS))
            frames += [frame.convert("RGB")] * repeat
        return Video(frames)


def contact_sheet(rows: list[list[Image.Image]], pad: int = 4) -> Image.Image:
    """Grid of equally sized images, one list per row."""
    w, h = rows[0][0].size
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * (w + pad) + pad, len(rows) * (h + pad) + pad), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(image, (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet
