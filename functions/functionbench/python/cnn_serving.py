# FunctionBench-style "cnn_serving" in Python: classifies an image with a
# convolutional network (FunctionBench serves a Keras model; Debian has no
# TensorFlow, so the network is PyTorch's): 3×3 convolutions with ReLU,
# max-pooling, global average pooling, a dense layer and softmax, the JavaScript
# version's shape. The weights and the 224 × 224 RGB input image are generated
# deterministically (the image from img_idx); the weights once per instance.
#   main  (cnn_serving)       16-32-64 channels, 1000 classes;
#   geol  (cnn_serving_geol)  16-48-64 channels, 10 classes (a geology classifier's shape).
# Payload: {img_idx: 0} (other keys ignored).
import hashlib
import time

import torch
from torch import nn

SIZE = 224


def seed_of(text):
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "little")


def build_model(name, channels, classes):
    c1, c2, c3 = channels
    # seeded weights without touching the process's own generator
    with torch.random.fork_rng():
        torch.manual_seed(seed_of(f"cnn:{name}"))
        return _network(c1, c2, c3, classes).eval()


def _network(c1, c2, c3, classes):
    return nn.Sequential(
        nn.Conv2d(3, c1, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c1, c2, 3, stride=2, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c3, classes, bias=False),
    )


def image(idx):
    g = torch.Generator().manual_seed(seed_of(f"cnn-img:{idx}"))
    return torch.rand((1, 3, SIZE, SIZE), generator=g)


models = {}


def run(args, name, channels, classes):
    idx = args.get("img_idx", 0)
    if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
        raise ValueError(f"img_idx: a non-negative integer is required (got {idx!r})")
    if name not in models:
        models[name] = build_model(name, channels, classes)
    t0 = time.perf_counter()
    with torch.no_grad():
        probs = torch.softmax(models[name](image(idx)), dim=1)[0]
    top = torch.topk(probs, min(5, classes))
    top5 = [{"class": int(c), "probability": round(float(p), 6)} for p, c in zip(top.values, top.indices)]
    return {"img_idx": idx, "top5": top5, "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}


def main(args):
    return run(args, "cnn_serving", (16, 32, 64), 1000)


def geol(args):
    return run(args, "cnn_serving_geol", (16, 48, 64), 10)
