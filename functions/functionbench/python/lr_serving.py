# FunctionBench-style "lr_serving" in Python, with scikit-learn as
# FunctionBench's: predicts the sentiment of a review `x` with a TF-IDF vectoriser
# and a logistic regression, both unpickled. FunctionBench downloads the pickles
# (trained on reviews{N}mb.csv) from an object store; here a vectoriser and model
# of that scale (vocabulary ~8000 × sqrt(N) words, the JavaScript version's) are
# made deterministically and pickled once per instance (the "object store"), then:
#   main              (lr_serving)      unpickles them on the first call and keeps them;
#   main_load_per_call (new_lr_serving) unpickles them on every call.
# Payload: {x: "text", model_object_key: "lr_model_reviews10mb.pk",
#           tfidf_vect_object_key: "lr_vectorizer_reviews10mb.pk"} (minio_address, bucket_name ignored).
import hashlib
import math
import pickle
import re
import time

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

POSITIVE = "good great nice perfect perfectly love loved amazing favorite magical delicious excellent friendly best wonderful fresh tasty cozy recommend happy enjoy awesome lovely die".split()
NEGATIVE = "bad terrible awful worst rude slow cold dirty bland disappointing overpriced never horrible poor stale noisy wrong sick waste mediocre".split()
COMMON = ("the a an and or but of to in on at for with was were is are it this that my our their we i they you food service place staff time really very just "
          "like going there weekends always taking cafe some pastry before visiting parents ambiance lobster cheese steaks cooked").split()
SYLLABLES = "ka ri to mu se la pe no vi da lo zu ne ha fi go sa te ru mo".split()


def synthetic_word(i):
    w, n = "", i + 1
    while n > 0:
        w += SYLLABLES[n % len(SYLLABLES)]
        n //= len(SYLLABLES)
    return w + "x"


def dataset_mib(key):
    m = re.search(r"reviews(\d+)mb", str(key or ""), re.I)
    return max(1, min(int(m.group(1)), 1000)) if m else 10


def pickled_model(mib):
    """The two pickles FunctionBench downloads, for a data set of mib MiB."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(f"lr-model:{mib}".encode()).digest()[:8], "little"))
    size = round(8000 * math.sqrt(mib))
    words = list(dict.fromkeys(POSITIVE + NEGATIVE + COMMON))
    i = 0
    while len(words) < size:
        words.append(synthetic_word(i))
        i += 1
    vectorizer = TfidfVectorizer(vocabulary={w: k for k, w in enumerate(words)}, token_pattern=r"[a-z']+")
    vectorizer.fit([" ".join(words)])
    docs = 2500 * mib
    vectorizer.idf_ = 1 + np.log((1 + docs) / (1 + np.floor(rng.random(size) ** 3 * docs)))
    model = LogisticRegression()
    coef = (rng.random(size) - 0.5) * 0.4
    coef[: len(POSITIVE)] = 2 + rng.random(len(POSITIVE))
    coef[len(POSITIVE) : len(POSITIVE) + len(NEGATIVE)] = -2 - rng.random(len(NEGATIVE))
    model.coef_ = coef[None, :]
    model.intercept_ = np.array([0.1])
    model.classes_ = np.array([0, 1])
    return pickle.dumps(vectorizer), pickle.dumps(model)


store = {}  # data set size -> (vectoriser pickle, model pickle): the instance's "object store"
loaded = {}  # data set size -> unpickled (vectoriser, model): lr_serving keeps them


def _args(args):
    x = args.get("x", "The food was good.")
    if not isinstance(x, str):
        raise ValueError("x: a string is required")
    mib = dataset_mib(args.get("model_object_key") or args.get("tfidf_vect_object_key"))
    if mib not in store:
        store[mib] = pickled_model(mib)
    return x, mib


def _predict(vectorizer, model, x):
    features = vectorizer.transform([x])
    p = float(model.predict_proba(features)[0, 1])
    return {"y": "positive" if p >= 0.5 else "negative", "probability": round(p, 4), "known_words": int(features.nnz), "vocabulary": len(vectorizer.vocabulary_)}


def main(args):
    x, mib = _args(args)
    if mib not in loaded:
        loaded[mib] = tuple(pickle.loads(p) for p in store[mib])
    return {"x": x, **_predict(*loaded[mib], x)}


def main_load_per_call(args):
    x, mib = _args(args)
    t0 = time.perf_counter()
    vectorizer, model = (pickle.loads(p) for p in store[mib])
    load_ms = (time.perf_counter() - t0) * 1000
    return {"x": x, **_predict(vectorizer, model, x), "model_bytes": sum(len(p) for p in store[mib]), "load_ms": round(load_ms, 3)}
