"""Latents to pictures through a pipeline's own VAE and image processor."""

from __future__ import annotations

import io

import torch
from PIL import Image


@torch.no_grad()
def decode_images(pipe, latents: torch.Tensor) -> list[Image.Image]:
    vae = pipe.vae
    decoded = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded, output_type="pil")


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def contact_sheet(rows: list[list[Image.Image]], pad: int = 4) -> Image.Image:
    """Grid of equally sized images, one list per row."""
    w, h = rows[0][0].size
    cols = max(len(r) for r in rows)
    sheet = Image.new("RGB", (cols * (w + pad) + pad, len(rows) * (h + pad) + pad), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            sheet.paste(image, (pad + c * (w + pad), pad + r * (h + pad)))
    return sheet
