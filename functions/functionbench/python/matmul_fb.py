# FunctionBench-style "matmul" in Python: multiplies two generated matrices,
# N × M by M × N, with numpy (FunctionBench multiplies two random n × n numpy
# arrays; FaaSRail's payload gives N and M).
# Payload: {N: 100, M: N}; no network.
import hashlib
import time

import numpy as np


def int_param(args, name, default, lo, hi):
    v = args.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise ValueError(f"{name}: an integer from {lo} to {hi} is required (got {v!r})")
    return v


def main(args):
    n = int_param(args, "N", 100, 1, 8192)
    m = int_param(args, "M", n, 1, 8192)
    seed = int.from_bytes(hashlib.sha256(f"matmul:{n}x{m}".encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    a = rng.random((n, m))
    b = rng.random((m, n))
    t0 = time.perf_counter()
    c = np.matmul(a, b)
    latency = time.perf_counter() - t0
    return {"N": n, "M": m, "trace": float(np.trace(c)), "latency_ms": round(latency * 1000, 3)}
