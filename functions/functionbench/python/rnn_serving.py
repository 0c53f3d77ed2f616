# FunctionBench-style "rnn_serving" in Python, with PyTorch as FunctionBench's:
# the character-level RNN of PyTorch's name-generation tutorial (category +
# letter + hidden -> hidden (128) and output, then an output layer and softmax)
# generates one name per start letter for the given language. FunctionBench
# downloads trained weights; here the weights are generated deterministically
# (seeded by model_object_key) once per instance, so the names are not real
# names but the arithmetic is the same.
# Payload: {language: "Scottish", start_letters: "ABC"} (model keys, minio_address, bucket_name: seeds / ignored).
import hashlib
import time

import torch
from torch import nn

LANGUAGES = "Arabic Chinese Czech Dutch English French German Greek Irish Italian Japanese Korean Polish Portuguese Russian Scottish Spanish Vietnamese".split()
LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ .,;'"
N_LETTERS = len(LETTERS) + 1  # + end of name
HIDDEN = 128
MAX_LENGTH = 20


class RNN(nn.Module):
    def __init__(self):
        super().__init__()
        n = len(LANGUAGES) + N_LETTERS + HIDDEN
        self.i2h = nn.Linear(n, HIDDEN)
        self.i2o = nn.Linear(n, N_LETTERS)
        self.o2o = nn.Linear(HIDDEN + N_LETTERS, N_LETTERS)
        self.softmax = nn.LogSoftmax(dim=1)

    def forward(self, category, letter, hidden):
        x = torch.cat((category, letter, hidden), 1)
        hidden = self.i2h(x)
        out = self.softmax(self.o2o(torch.cat((hidden, self.i2o(x)), 1)))
        return out, hidden


def build_model(key):
    g = torch.Generator().manual_seed(int.from_bytes(hashlib.sha256(f"rnn:{key}".encode()).digest()[:7], "little"))
    model = RNN()
    with torch.no_grad():
        for p in model.parameters():
            bound = 1 / (p.shape[-1] ** 0.5)
            p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
    return model.eval()


def sample(model, category, start):
    cat = torch.zeros(1, len(LANGUAGES))
    cat[0, category] = 1
    hidden = torch.zeros(1, HIDDEN)
    name, letter = start, LETTERS.index(start)
    with torch.no_grad():
        for _ in range(MAX_LENGTH):
            inp = torch.zeros(1, N_LETTERS)
            inp[0, letter] = 1
            out, hidden = model(cat, inp, hidden)
            best = int(out.argmax(1))
            if best == N_LETTERS - 1:
                break
            name += LETTERS[best]
            letter = best
    return name


models = {}


def main(args):
    language = args.get("language", "Scottish")
    if language not in LANGUAGES:
        raise ValueError(f"language: one of {', '.join(LANGUAGES)} (got {language!r})")
    starts = args.get("start_letters", "ABC")
    if not isinstance(starts, str) or len(starts) > 1000:
        raise ValueError("start_letters: a string of at most 1000 letters is required")
    for ch in starts:
        if ch not in LETTERS:
            raise ValueError(f"start_letters: '{ch}' is not a letter the model knows")
    key = str(args.get("model_object_key", "rnn_model.pth"))
    if key not in models:
        models[key] = build_model(key)
    t0 = time.perf_counter()
    names = [sample(models[key], LANGUAGES.index(language), ch) for ch in starts]
    return {"language": language, "names": names, "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
