# FunctionBench-style "lr_training" in Python, with pandas and scikit-learn as
# FunctionBench's: reads a CSV of reviews (Score,Text), cleans the text, fits a
# TF-IDF vectoriser (min_df 100), trains a logistic regression (positive =
# Score >= 4) and pickles the model. FunctionBench downloads reviews{N}mb.csv
# from an object store; here a CSV of about N MiB (~400-byte reviews,
# Zipf-distributed words plus sentiment words that follow the score; the
# JavaScript version's generator) is generated deterministically on every call,
# as a download would be.
# Payload: {dataset_object_key: "reviews10mb.csv"} (minio_address, bucket_name ignored).
import hashlib
import io
import pickle
import re
import time

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

POSITIVE = "good great nice perfect love amazing favorite delicious excellent friendly best wonderful fresh tasty recommend".split()
NEGATIVE = "bad terrible awful worst rude slow cold dirty bland disappointing overpriced horrible poor stale mediocre".split()
SYLLABLES = "ka ri to mu se la pe no vi da lo zu ne ha fi go sa te ru mo".split()
BASE_WORDS = 30_000


def synthetic_word(i):
    w, n = "", i + 1
    while n > 0:
        w += SYLLABLES[n % len(SYLLABLES)]
        n //= len(SYLLABLES)
    return w


def dataset_mib(key):
    m = re.search(r"reviews(\d+)mb", str(key or ""), re.I)
    return max(1, min(int(m.group(1)), 200)) if m else 10


def generate_csv(mib):
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"reviews:{mib}".encode()).digest()[:8], "little"))
    words = np.array([synthetic_word(i) for i in range(BASE_WORDS)])
    zipf = 1 / np.arange(1, BASE_WORDS + 1)
    zipf /= zipf.sum()
    target = mib * 1024 * 1024
    out = io.StringIO()
    out.write("Score,Text\n")
    size = 11
    while size < target:
        # a batch of reviews at a time
        scores = rng.integers(1, 6, 256)
        lengths = rng.integers(40, 100, 256)
        drawn = rng.choice(words, size=int(lengths.sum()), p=zipf)
        at = 0
        for score, n in zip(scores, lengths):
            toks = drawn[at : at + n].tolist()
            at += n
            sentiment = POSITIVE if score >= 4 else NEGATIVE
            for k in np.nonzero(rng.random(n) < 0.05)[0]:
                toks[k] = sentiment[rng.integers(len(sentiment))]
            line = f'{score},"{" ".join(toks)}."\n'
            out.write(line)
            size += len(line)
            if size >= target:
                break
    return out.getvalue()


def main(args):
    key = args.get("dataset_object_key", "reviews10mb.csv")
    if not isinstance(key, str):
        raise ValueError("dataset_object_key: a string is required")
    mib = dataset_mib(key)
    t0 = time.perf_counter()
    csv = generate_csv(mib)
    t_gen = time.perf_counter()
    df = pd.read_csv(io.StringIO(csv))
    df["train"] = df["Text"].str.replace(r"\W", " ", regex=True).str.lower()
    labels = (df["Score"] >= 4).astype(int)
    vectorizer = TfidfVectorizer(min_df=100)
    x = vectorizer.fit_transform(df["train"])
    model = LogisticRegression(max_iter=200)
    model.fit(x, labels)
    blob = pickle.dumps(model)
    accuracy = float(model.score(x, labels))
    return {
        "dataset_object_key": key,
        "csv_bytes": len(csv),
        "reviews": int(len(df)),
        "features": int(x.shape[1]),
        "training_accuracy": round(accuracy, 4),
        "model_bytes": len(blob),
        "generate_ms": round((t_gen - t0) * 1000),
        "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
    }
