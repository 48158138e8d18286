"""Small PNG charts drawn with PIL (matplotlib is not a dependency): lines with a spread band,
labelled points, a marker line; linear axes with ticks."""

from __future__ import annotations

import math
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75), (127, 127, 127))


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    step = 10 ** math.floor(math.log10((hi - lo) / count))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (m * step) <= count:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step + 1e-9) + 1)]


def _label(v: float) -> str:
    return f"{v:.3g}"


class Chart:
    def __init__(self, xs: Sequence[float], ys: Sequence[float], title: str, xlabel: str, ylabel: str,
                 size: tuple[int, int] = (960, 560)) -> None:
        xs, ys = [float(v) for v in xs], [float(v) for v in ys]
        if not xs or not ys or not all(map(math.isfinite, xs + ys)):
            raise ValueError("a chart needs finite data")
        pad = lambda lo, hi: (lo - 0.05 * (hi - lo or 1.0), hi + 0.05 * (hi - lo or 1.0))  # noqa: E731
        self.x0, self.x1 = pad(min(xs), max(xs))
        self.y0, self.y1 = pad(min(ys), max(ys))
        self.image = Image.new("RGB", size, "white")
        self.draw = ImageDraw.Draw(self.image)
        self.font = ImageFont.load_default()
        self.left, self.top, self.right, self.bottom = 80, 40, size[0] - 230, size[1] - 60
        self._axes(title, xlabel, ylabel)
        self._legend: list[tuple[str, tuple]] = []

    def px(self, x: float, y: float) -> tuple[float, float]:
        fx = (x - self.x0) / (self.x1 - self.x0)
        fy = (y - self.y0) / (self.y1 - self.y0)
        return self.left + fx * (self.right - self.left), self.bottom - fy * (self.bottom - self.top)

    def _axes(self, title, xlabel, ylabel) -> None:
        d = self.draw
        d.rectangle((self.left, self.top, self.right, self.bottom), outline="black")
        for x in _ticks(self.x0, self.x1):
            px, _ = self.px(x, self.y0)
            d.line((px, self.bottom, px, self.bottom + 5), fill="black")
            d.text((px, self.bottom + 8), _label(x), fill="black", font=self.font, anchor="ma")
        for y in _ticks(self.y0, self.y1):
            _, py = self.px(self.x0, y)
            d.line((self.left - 5, py, self.left, py), fill="black")
            d.line((self.left, py, self.right, py), fill=(230, 230, 230))
            d.text((self.left - 8, py), _label(y), fill="black", font=self.font, anchor="rm")
        d.text(((self.left + self.right) / 2, 12), title, fill="black", font=self.font, anchor="ma")
        d.text(((self.left + self.right) / 2, self.bottom + 30), xlabel, fill="black", font=self.font, anchor="ma")
        d.text((8, self.top - 20), ylabel, fill="black", font=self.font)

    def band(self, xs, lo, hi, color) -> None:
        shade = tuple(int(c + (255 - c) * 0.75) for c in color)
        outline = [self.px(x, y) for x, y in zip(xs, hi)] + [self.px(x, y) for x, y in reversed(list(zip(xs, lo)))]
        self.draw.polygon(outline, fill=shade)

    def line(self, xs, ys, color, label: str | None = None) -> None:
        self.draw.line([self.px(x, y) for x, y in zip(xs, ys)], fill=color, width=2)
        if label:
            self._legend.append((label, color))

    def points(self, xs, ys, color, label: str | None = None, names: Sequence[str] | None = None, radius: int = 5) -> None:
        for i, (x, y) in enumerate(zip(xs, ys)):
            cx, cy = self.px(x, y)
            self.draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=color, outline="black")
            if names:
                self.draw.text((cx + radius + 3, cy - radius - 3), names[i], fill="black", font=self.font)
        if label:
            self._legend.append((label, color))

    def vline(self, x: float, color, label: str) -> None:
        px, _ = self.px(x, self.y0)
        self.draw.line((px, self.top, px, self.bottom), fill=color, width=1)
        self._legend.append((label, color))

    def save(self, path) -> None:
        for i, (label, color) in enumerate(self._legend):
            y = self.top + 10 + 18 * i
            self.draw.rectangle((self.right + 12, y, self.right + 24, y + 10), fill=color)
            self.draw.text((self.right + 30, y), label, fill="black", font=self.font)
        self.image.save(path)
