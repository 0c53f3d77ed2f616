# FunctionBench-style "image_rotate" (image_processing) in Python, with Pillow
# as FunctionBench's: applies the operations named in `ops`
# ("filter-flip-gray_scale-resize-rotate") to an RGB image: flip (left-right and
# top-bottom), rotate (90, 180, 270), filter (BLUR, CONTOUR, SHARPEN),
# gray_scale, resize (to 128 × 128). FunctionBench downloads a JPEG; here an RGB
# image of the decoded size of that file is generated deterministically:
# "img107k.jpeg" -> 107 KiB of JPEG, taken as a 10:1 compression of 4:3 RGB
# pixels (about 680 × 510), then encoded as JPEG and decoded, as a download would be.
# Payload: {img_name: "img016k.jpeg", ops: "flip-rotate"} (minio_address, bucket_name ignored).
import hashlib
import io
import math
import re
import time

import numpy as np
from PIL import Image, ImageFilter


def size_of(img_name):
    m = re.search(r"(\d+)k", img_name, re.I)
    kib = min(int(m.group(1)), 20_000) if m else 64
    pixels = kib * 1024 * 10 / 3
    width = max(8, round(math.sqrt(pixels * 4 / 3)))
    return width, max(6, round(width * 3 / 4))


def generate(img_name):
    width, height = size_of(img_name)
    seed = int.from_bytes(hashlib.sha256(f"img:{img_name}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    noise = rng.random((height, width), dtype=np.float32) * 40
    r = 127 + 100 * np.sin(x * (6.283 / width) * 3) + noise
    g = 127 + 100 * np.cos(y * (6.283 / height) * 2) + noise
    b = 127 + 100 * np.sin((x + y) * (6.283 / (width + height)) * 5) - noise
    rgb = np.clip(np.stack([r, g, b], axis=-1), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def digest(img):
    return f"{img.width}x{img.height}x{len(img.getbands())}:{hashlib.sha256(img.tobytes()).hexdigest()[:8]}"


OPS = {
    "flip": lambda img: {"left_right": img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "top_bottom": img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)},
    "rotate": lambda img: {"r90": img.transpose(Image.Transpose.ROTATE_90), "r180": img.transpose(Image.Transpose.ROTATE_180), "r270": img.transpose(Image.Transpose.ROTATE_270)},
    "filter": lambda img: {"blur": img.filter(ImageFilter.BLUR), "contour": img.filter(ImageFilter.CONTOUR), "sharpen": img.filter(ImageFilter.SHARPEN)},
    "gray_scale": lambda img: {"gray": img.convert("L")},
    "resize": lambda img: {"resized": img.resize((128, 128), Image.Resampling.BILINEAR)},
}

jpegs = {}  # image name -> JPEG bytes: the "object store" of this instance


def main(args):
    img_name = args.get("img_name", "img016k.jpeg")
    if not isinstance(img_name, str):
        raise ValueError("img_name: a string is required")
    ops_text = args.get("ops", "flip-rotate-filter-gray_scale-resize")
    if not isinstance(ops_text, str):
        raise ValueError('ops: a string such as "flip-rotate" is required')
    ops = [o for o in ops_text.split("-") if o]
    for op in ops:
        if op not in OPS:
            raise ValueError(f"ops: unknown operation '{op}' ({', '.join(OPS)})")
    if img_name not in jpegs:
        jpegs[img_name] = generate(img_name)
    t0 = time.perf_counter()
    img = Image.open(io.BytesIO(jpegs[img_name])).convert("RGB")
    results = {}
    for op in ops:
        for k, v in OPS[op](img).items():
            results[k] = digest(v)
    return {"img_name": img_name, "width": img.width, "height": img.height, "ops": ops, "results": results, "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
