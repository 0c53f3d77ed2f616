# FunctionBench-style "pyaes" in Python: AES-128 in CTR mode with the pyaes
# package (pure Python, as FunctionBench's), encrypting and decrypting a
# generated message of message_length letters num_iterations times.
# Payload: {message_length: 100, num_iterations: 1}; no network.
import random
import string
import time

import pyaes

LETTERS = string.ascii_letters + string.digits


def int_param(args, name, default, lo, hi):
    v = args.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise ValueError(f"{name}: an integer from {lo} to {hi} is required (got {v!r})")
    return v


def main(args):
    length = int_param(args, "message_length", 100, 0, 64 * 1024 * 1024)
    iterations = int_param(args, "num_iterations", 1, 0, 1_000_000)
    # deterministic inputs (FunctionBench draws them at random; these are seeded)
    rand = random.Random(f"pyaes:{length}")
    message = "".join(rand.choice(LETTERS) for _ in range(length)).encode()
    key = bytes(rand.randrange(256) for _ in range(16))
    t0 = time.perf_counter()
    ciphertext = b""
    for _ in range(iterations):
        ciphertext = pyaes.AESModeOfOperationCTR(key).encrypt(message)
        plaintext = pyaes.AESModeOfOperationCTR(key).decrypt(ciphertext)
        if plaintext != message:
            raise RuntimeError("decryption mismatch")
    return {
        "message_length": length,
        "num_iterations": iterations,
        "ciphertext_head": ciphertext[:16].hex(),
        "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
    }
