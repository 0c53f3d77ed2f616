"""Randomness that stays unique across snapshot clones.

A VM restored from a snapshot resumes with the exact memory of the VM that was
snapshotted: every clone starts with the same state of Python's `random`
module, of numpy's global generator, of PyTorch's default generator (each
seeded once, at import) and of the kernel CRNG. The host sends a fresh 32-byte
seed with every resync (before any user code runs after a restore), and:
  1. `random`'s global instance is reseeded from it;
  2. numpy's legacy global RandomState (np.random.rand, np.random.seed users)
     and PyTorch's default CPU generator are reseeded, when the function
     imported them (they are looked up in sys.modules, never imported here);
  3. callbacks the function registered with faascell.on_restore() run, for the
     generators it keeps itself (a module-level np.random.default_rng(), say);
  4. (in guest_ops) the seed goes into the kernel pool with a forced CRNG
     reseed, so os.urandom, secrets, uuid.uuid4 and new generators seeded from
     the OS differ per clone.
Not covered: Python's str hash secret (fixed at interpreter start) and
OpenSSL's own DRBG inside ssl/hashlib, which reseeds from the kernel on its own
schedule."""

import hashlib
import random
import sys


def _words(seed, label, count):
    """count 32-bit words derived from the seed (SHAKE-256 with a label per user)."""
    raw = hashlib.shake_256(label + seed).digest(4 * count)
    return [int.from_bytes(raw[i : i + 4], "little") for i in range(0, 4 * count, 4)]


def reseed(seed):
    """Reseeds every generator the process has; returns the names of those it reseeded."""
    done = []
    random.seed(hashlib.sha512(b"faascell-random" + seed).digest())
    done.append("random")
    np = sys.modules.get("numpy")
    np_random = getattr(np, "random", None) if np is not None else None
    if np_random is not None and hasattr(np_random, "seed"):
        np_random.seed(_words(seed, b"faascell-numpy", 8))
        done.append("numpy")
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "manual_seed"):
        w = _words(seed, b"faascell-torch", 2)
        torch.manual_seed(((w[0] << 32) | w[1]) & 0x7FFFFFFFFFFFFFFF)
        done.append("torch")
    return done
