import numpy as np
import pytest
from PIL import Image

from deploy.data import images as image_io


def test_default_eval_set_is_real_photos_and_disjoint_from_training():
    images = image_io.default_eval_images()
    assert [n for n, _ in images] == list(image_io.EVAL_IMAGES)
    for _, img in images:
        assert img.shape == (image_io.EVAL_CROP, image_io.EVAL_CROP, 3) and img.dtype == np.uint8
        assert img.std() > 10  # a photo, not a flat placeholder
    assert not set(image_io.EVAL_IMAGES) & set(image_io.VAL_NAMES)


def _write_png16(path, rgb16: np.ndarray) -> None:
    """A 48-bit RGB PNG written by hand (Pillow cannot write them)."""
    import struct
    import zlib
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))  # noqa: E731
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_loader_handles_16bit_grey_rgba_palette(tmp_path):
    rgb16 = (np.arange(8 * 8 * 3).reshape(8, 8, 3) * 257).astype(np.uint16)
    _write_png16(tmp_path / "a16.png", rgb16)
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "grey16.png")
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((8, 8, 4), 50, np.uint8)).save(tmp_path / "rgba.png")
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).convert("P").save(tmp_path / "pal.png")
    Image.fromarray(np.full((8, 8, 3), 120, np.uint8)).save(tmp_path / "photo.jpg")
    loaded = dict(image_io.load_folder(tmp_path))
    assert set(loaded) == {"a16", "grey16", "grey", "rgba", "pal", "photo"}
    for img in loaded.values():
        assert img.shape == (8, 8, 3) and img.dtype == np.uint8
    expected = np.arange(8 * 8 * 3).reshape(8, 8, 3)
    assert np.abs(loaded["a16"].astype(int) - expected).max() <= 1
    assert (loaded["grey16"] == round(40000 / 257)).all()
    assert (loaded["grey"] == 200).all() and (loaded["rgba"] == 50).all()


def test_non_image_and_corrupt_files_are_clear_errors(tmp_path):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "ok.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(image_io.DataError, match="notes.txt .* is not an image"):
        image_io.load_folder(tmp_path)
    (tmp_path / "notes.txt").unlink()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(image_io.DataError, match="cannot read image .*broken.png"):
        image_io.load_folder(tmp_path)
    with pytest.raises(image_io.DataError, match="does not exist"):
        image_io.load_folder(tmp_path / "missing")


def test_samples_modcrop_and_too_small():
    img = np.zeros((50, 47, 3), np.uint8)
    s = image_io.make_samples([("x", img)], 4)[0]
    assert s.hr.shape == (48, 44, 3) and s.lr.shape == (12, 11, 3)
    with pytest.raises(image_io.DataError, match="too small"):
        image_io.make_samples([("tiny", np.zeros((5, 5, 3), np.uint8))], 4)
