"""`asmr compare`'s pictures: the same crop of the original and of each codec, labelled,
side by side (`picture`, `write_picture`), and the rate-distortion plot of `--rd`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .compare import CODEC_NAMES, GAP, LABEL_HEIGHT, Comparison

# -- the picture ------------------------------------------------------------------------------------

def zoom_for(crop: tuple[int, int, int, int]) -> int:
    """2:1 for a crop up to 256 pixels on its longer side (3:1 under 96, small clips), else 1:1."""
    side = max(crop[2], crop[3])
    return 3 if side < 96 else 2 if side <= 256 else 1


def _fonts():
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=14), ImageFont.load_default(size=11)
    except TypeError:  # Pillow < 10.1: the bitmap font, one size
        font = ImageFont.load_default()
        return font, font


def panel_labels(result: Comparison) -> list[tuple[str, str]]:
    """(title, detail) above each panel: the original first, then each codec that ran."""
    at = f"frame {result.frame}, " if result.frame is not None else ""
    labels = [("original", f"{at}{result.width}x{result.height}, crop {result.crop[2]}x{result.crop[3]}")]
    for r in result.results:
        if r.decoded is None:
            continue
        labels.append((f"{r.name} {r.setting}", f"{r.bytes:,} B  {r.psnr:.2f} dB  SSIM {r.ssim:.3f}"))
    return labels


def picture_layout(result: Comparison) -> dict:
    """Where each panel goes: {"size": (W, H), "zoom": z, "panels": [(x, y, w, h)], "labels": [...]};
    a column is as wide as its panel or its label, whichever is wider."""
    x, y, w, h = result.crop
    z = zoom_for(result.crop)
    labels = panel_labels(result)
    big, small = _fonts()
    pw, ph = w * z, h * z
    panels, left = [], GAP
    for title, detail in labels:
        text = int(max(big.getlength(title), small.getlength(detail))) + 1
        panels.append((left, LABEL_HEIGHT, pw, ph))
        left += max(pw, text) + GAP
    return {"size": (left, LABEL_HEIGHT + ph + GAP), "zoom": z, "panels": panels, "labels": labels}


def picture(result: Comparison):
    """The same crop of the original and of each decoded image, side by side on white,
    each enlarged by nearest neighbour (zoom_for) under a two-line label: a PIL image."""
    from PIL import Image, ImageDraw

    layout = picture_layout(result)
    x, y, w, h = result.crop
    z = layout["zoom"]
    canvas = Image.new("RGB", layout["size"], "white")
    draw = ImageDraw.Draw(canvas)
    big, small = _fonts()
    sources = [result.original] + [r.decoded for r in result.results if r.decoded is not None]
    for (px, py, _, _), (title, detail), src in zip(layout["panels"], layout["labels"], sources):
        part = src[y:y + h, x:x + w]
        if part.shape[2] == 1:
            part = np.repeat(part, 3, axis=2)
        part = np.repeat(np.repeat(part, z, axis=0), z, axis=1)
        canvas.paste(Image.fromarray(np.ascontiguousarray(part), "RGB"), (px, py))
        draw.text((px, 4), title, fill="black", font=big)
        draw.text((px, 22), detail, fill=(70, 70, 70), font=small)
    return canvas


def write_picture(result: Comparison, out: Path) -> None:
    from ..io.media import atomic_output, check_image_output

    ext = check_image_output(out)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}[ext]
    image = picture(result)
    with atomic_output(Path(out)) as tmp:
        kwargs = {"lossless": True} if fmt == "WEBP" else {"quality": 95} if fmt == "JPEG" else {}
        image.save(tmp, format=fmt, **kwargs)


def write_rd_plot(results: list[Comparison], out: Path) -> None:
    """PSNR against bpp, one line per codec, each point a run of the sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io.media import atomic_output, check_image_output

    ext = check_image_output(out)
    names = [r.codec for r in results[0].results]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for name in names:
        points = sorted((row.bpp, row.psnr) for res in results for row in res.results
                        if row.codec == name and row.bytes is not None)
        if points:
            ax.plot(*zip(*points), marker="o", label=CODEC_NAMES.get(name, name),
                    linewidth=2.2 if name == "asmr" else 1.4)
    first = results[0]
    shape = f"{first.width}x{first.height}" + (f", {first.frames} frames" if first.frames is not None else "")
    ax.set_title(f"{Path(first.input).name} ({shape}): each codec at asmr's size", fontsize=10)
    ax.set_xlabel("bits per pixel")
    ax.set_ylabel("PSNR (dB, RGB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fmt = {".png": "png", ".jpg": "jpg", ".jpeg": "jpg", ".webp": "webp", ".tif": "tif", ".tiff": "tif"}[ext]
    with atomic_output(Path(out), ext) as tmp:
        fig.savefig(tmp, format=fmt)
    plt.close(fig)
