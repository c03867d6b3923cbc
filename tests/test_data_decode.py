"""Decoding single images: channel conversions (RGBA, palette, LA, 16-bit), formats, resize
modes, and the reasons invalid images are rejected with. Images are encoded to real files'
bytes with Pillow, then decoded by vaetune."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from vaetune.data.decode import DecodeSettings, InvalidImage, decode_image

BG = (0, 0, 255)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decode(data: bytes, channels: int = 3, size: int | None = None, resize: str = "fit", bg=BG) -> np.ndarray:
    return decode_image(data, DecodeSettings(image_size=size, channels=channels, background=bg, resize=resize))


def test_rgba_kept_with_four_channels_and_composited_for_three():
    img = Image.new("RGBA", (2, 1))
    img.putpixel((0, 0), (200, 100, 0, 128))
    img.putpixel((1, 0), (9, 9, 9, 0))
    data = encode(img)
    rgba = decode(data, channels=4)
    assert rgba.shape == (4, 1, 2) and rgba[:, 0, 0].tolist() == [200, 100, 0, 128]
    rgb = decode(data, channels=3)
    assert rgb.shape == (3, 1, 2)
    # half-transparent over blue: 200*a, 100*a, 255*(1-a) with a = 128/255
    assert np.abs(rgb[:, 0, 0].astype(int) - [100, 50, 127]).max() <= 1
    assert rgb[:, 0, 1].tolist() == list(BG)  # fully transparent: the background
    grey = decode(data, channels=1)
    assert grey.shape == (1, 1, 2) and grey[0, 0, 1] == round(0.114 * 255)


def test_palette_with_transparency():
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 250, 200, 10] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    data = encode(img, transparency=0)
    assert decode(data, channels=3)[:, 0].T.tolist() == [list(BG), [250, 200, 10]]
    assert decode(data, channels=4)[:, 0].T.tolist() == [[0, 0, 0, 0], [250, 200, 10, 255]]


def test_grey_alpha():
    img = Image.new("LA", (2, 1))
    img.putpixel((0, 0), (100, 0))
    img.putpixel((1, 0), (100, 255))
    data = encode(img)
    assert decode(data, channels=3)[:, 0].T.tolist() == [list(BG), [100, 100, 100]]
    assert decode(data, channels=4)[:, 0, 1].tolist() == [100, 100, 100, 255]
    assert decode(data, channels=1, bg=(255, 255, 255))[0, 0].tolist() == [255, 100]


def test_sixteen_bit_grey_is_scaled_not_clipped():
    img = Image.fromarray(np.array([[0, 1000, 32896, 65535]], dtype=np.uint16))
    assert img.mode == "I;16"
    out = decode(encode(img), channels=1)
    assert out[0, 0].tolist() == [0, 4, 128, 255]  # value / 257, rounded
    assert decode(encode(img), channels=3)[:, 0, 3].tolist() == [255, 255, 255]


@pytest.mark.parametrize(("values", "dtype", "mode", "expected"), [
    # floats in 0..1 are read times 255 (a plain conversion rounds them all to 0 or 1)
    ([0.0, 0.25, 0.5, 1.0], np.float32, "F", [0, 64, 128, 255]),  # 63.75, 127.5 round to 64, 128
    ([0.0, 2.0, 100.0, 255.0], np.float32, "F", [0, 2, 100, 255]),  # floats beyond 1 are read as 0..255
    ([0, 7, 200, 255], np.int32, "I", [0, 7, 200, 255]),  # 32-bit holding 8-bit values: as they are
    ([0, 1000, 32896, 65535], np.int32, "I", [0, 4, 128, 255]),  # 32-bit holding 16-bit values: / 257
])
def test_wide_grey_images_keep_their_range(values, dtype, mode, expected):
    img = Image.fromarray(np.array([values], dtype=dtype), mode)
    assert img.mode == mode
    assert decode(encode(img, "TIFF"), channels=1)[0, 0].tolist() == expected


@pytest.mark.parametrize(("values", "dtype", "mode", "reason"), [
    ([0.0, -0.5, 1.0], np.float32, "F", "floating-point image with values from -0.5 to 1; vaetune reads 0..1 or 0..255"),
    ([0.0, 300.0], np.float32, "F", "floating-point image with values from 0 to 300; vaetune reads 0..1 or 0..255"),
    ([0.0, float("nan")], np.float32, "F", "floating-point image with values that are not numbers (NaN or infinite)"),
    ([0, 70000], np.int32, "I", "32-bit image with values from 0 to 70000; vaetune reads 0..255 or 0..65535"),
])
def test_wide_grey_images_out_of_range_are_refused_with_the_range(values, dtype, mode, reason):
    img = Image.fromarray(np.array([values], dtype=dtype), mode)
    with pytest.raises(InvalidImage) as err:
        decode(encode(img, "TIFF"), channels=1)
    assert err.value.reason == reason


def test_grey_and_bilevel_to_rgb():
    assert decode(encode(Image.new("L", (3, 3), 77)))[:, 1, 1].tolist() == [77, 77, 77]
    assert decode(encode(Image.new("1", (3, 3), 1)), channels=1)[0, 1, 1] == 255


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "BMP", "GIF"])
def test_formats(fmt):
    colour = (200, 40, 40)
    out = decode(encode(Image.new("RGB", (16, 16), colour), fmt))
    assert np.abs(out[:, 8, 8].astype(int) - colour).max() <= 12  # lossy formats round a little


def test_gif_uses_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in ((250, 0, 0), (0, 0, 250))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    out = decode(buf.getvalue())
    assert out[0, 4, 4] > 200 and out[2, 4, 4] < 50


def test_resize_fit_squeezes_the_whole_image():
    img = Image.new("RGB", (40, 20), (0, 200, 0))
    img.paste((200, 0, 0), (0, 0, 10, 20))  # left quarter red
    img.paste((0, 0, 200), (30, 0, 40, 20))  # right quarter blue
    out = decode(encode(img), size=16, resize="fit")
    assert out.shape == (3, 16, 16)
    assert out[0, 8, 0] > 180 and out[2, 8, 15] > 180 and out[1, 8, 8] > 180  # nothing cut off


def test_resize_crop_keeps_the_centre():
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    img.paste((0, 200, 0), (0, 0, 9, 20))  # outer bands, cut off by the crop
    img.paste((0, 200, 0), (31, 0, 40, 20))
    out = decode(encode(img), size=16, resize="crop")
    assert out.shape == (3, 16, 16)
    assert (out[0] > 180).all() and (out[1] < 30).all()  # only the red middle remains


def test_resize_pad_adds_background_bars():
    img = Image.new("RGB", (40, 20), (200, 0, 0))
    out = decode(encode(img), size=16, resize="pad")
    assert out.shape == (3, 16, 16)
    # 40x20 -> 16x8, centred: rows 0..3 and 12..15 are background bars
    for row in (0, 3, 12, 15):
        assert out[:, row].T.tolist() == [list(BG)] * 16
    assert (out[0, 4:12] == 200).all()
    tall = decode(encode(img.rotate(90, expand=True)), size=16, resize="pad", channels=4)
    assert (tall[3, :, :4] == 0).all() and (tall[3, :, 4:12] == 255).all()  # transparent side bars


@pytest.mark.parametrize("resize", ["fit", "crop", "pad"])
def test_exact_size_is_not_resampled(resize):
    arr = np.random.default_rng(0).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    out = decode(encode(Image.fromarray(arr)), size=16, resize=resize)
    assert np.array_equal(out, arr.transpose(2, 0, 1))


def test_large_jpeg_draft_still_gives_requested_size():
    img = Image.new("RGB", (800, 400), (10, 120, 240))
    for resize in ("fit", "crop", "pad"):
        out = decode(encode(img, "JPEG"), size=32, resize=resize)
        assert out.shape == (3, 32, 32) and abs(int(out[2, 16, 16]) - 240) <= 6


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"GIF89a but not really", "not an image"),
    (b"plain text", "not an image"),
])
def test_invalid_reasons(data, reason):
    with pytest.raises(InvalidImage) as err:
        decode(data)
    assert err.value.reason == reason


def test_truncated_and_small():
    arr = np.random.default_rng(1).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    png = encode(Image.fromarray(arr))
    with pytest.raises(InvalidImage, match="corrupt: image file is truncated"):
        decode(png[: len(png) // 2])
    with pytest.raises(InvalidImage, match="too small: 32x32 < min_side 40"):
        decode_image(png, DecodeSettings(image_size=16, min_side=40))
