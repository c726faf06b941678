"""Frame folders (``CLIP/*.jpg|png``, natural order) read with Pillow: the image side of `snapaction.video`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ClipError
from .info import IMAGE_EXTENSIONS, VideoInfo, check_frames, check_pixels, check_range, natural_key, scaled_size


def frame_files(folder: str | Path) -> list[Path]:
    """Image files of a frame folder, in natural sort order."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: natural_key(p.name))


def probe_folder(path: Path) -> VideoInfo:
    files = frame_files(path)
    if not files:
        raise ClipError(path, f"the folder has no image frames ({', '.join(IMAGE_EXTENSIONS)})")
    check_frames(path, len(files))
    width, height = _open_image(files[0]).size
    fps = 25.0  # frame folders carry no rate; 25 is the convention of the datasets that use them
    return VideoInfo(path, len(files), fps, len(files) / fps, width, height, 0)


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    Image.MAX_IMAGE_PIXELS = None  # SnapAction's own limit (check_pixels, before any pixel is read) governs frames of every kind
    try:
        image = Image.open(path)  # reads the header only
        check_pixels(path, *image.size, "the image is")
        image.load()
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
        raise ClipError(path, f"not a readable image ({err})") from None
    return image


def read_folder(path: Path, indices: np.ndarray, size: int | None) -> np.ndarray:
    from PIL import Image

    files = frame_files(path)
    if not files:
        raise ClipError(path, "the folder has no image frames")
    check_range(path, indices, len(files))
    cache: dict[int, np.ndarray] = {}
    for i in np.unique(indices):
        image = _open_image(files[i]).convert("RGB")
        if size:
            w, h = scaled_size(*image.size, size)
            if (w, h) != image.size:
                image = image.resize((w, h), Image.Resampling.BILINEAR, reducing_gap=None)
        cache[int(i)] = np.asarray(image)
    shapes = {a.shape for a in cache.values()}
    if len(shapes) > 1:
        raise ClipError(path, f"frames differ in size ({sorted(shapes)}); resize them to one size")
    return np.stack([cache[int(i)] for i in indices])


def decode_all_images(folder: Path, size: tuple[int, int]) -> int:
    """Open every frame of a frame folder; returns how many. `ClipError` for an unreadable frame or one of another size."""
    from PIL import Image, UnidentifiedImageError

    files = frame_files(folder)
    Image.MAX_IMAGE_PIXELS = None
    for f in files:
        try:
            with Image.open(f) as image:
                check_pixels(folder, *image.size, f"frame {f.name} is")
                image.load()
                if image.size != size:
                    raise ClipError(folder, f"frame {f.name} is {image.size[0]}x{image.size[1]}, the first frame {size[0]}x{size[1]}; resize them to one size")
        except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as err:
            raise ClipError(folder, f"frame {f.name} is not a readable image ({err})") from None
    return len(files)
