# FunctionBench-style "json_serdes" (json_dumps_loads) in Python: parses a JSON
# document and serialises it again with indentation. FunctionBench downloads the
# file from an object store; here the document is generated deterministically
# from file_name ("gen02_n{N}.json": N records of ~0.5 KB; FunctionBench's own
# 1.json, 2.json and search.json: a size of similar parse cost) once per
# instance, and every call parses and re-serialises it.
# Payload: {file_name: "gen02_n1024.json"} (minio_address and bucket_name are ignored).
import datetime
import json
import random
import re
import time

WORDS = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua enim ad minim "
         "veniam quis nostrud exercitation ullamco laboris nisi aliquip ex ea commodo consequat").split()
KNOWN = {"1.json": 560, "2.json": 1350, "search.json": 3900}


def records_of(file_name):
    if file_name in KNOWN:
        return KNOWN[file_name]
    m = re.search(r"_n(\d+)\.json$", file_name)
    return min(int(m.group(1)), 1_000_000) if m else 1024


def generate(file_name, n):
    rand = random.Random(f"json:{file_name}")

    def words(k):
        return " ".join(rand.choice(WORDS) for _ in range(k))

    def hexs(k):
        return "".join(rand.choice("0123456789abcdef") for _ in range(k))

    epoch = datetime.datetime(2014, 5, 13, tzinfo=datetime.timezone.utc)
    records = []
    for i in range(n):
        records.append({
            "_id": hexs(24),
            "index": i,
            "guid": f"{hexs(8)}-{hexs(4)}-{hexs(4)}-{hexs(4)}-{hexs(12)}",
            "isActive": rand.random() < 0.5,
            "balance": round(rand.random() * 1e6) / 100,
            "age": 18 + rand.randrange(60),
            "name": {"first": words(1), "last": words(1)},
            "email": f"{words(1)}.{words(1)}@example.org",
            "address": f"{rand.randrange(999)} {words(2)} street, {words(1)}",
            "about": words(20),
            "registered": (epoch + datetime.timedelta(seconds=rand.randrange(300_000_000))).isoformat(),
            "latitude": rand.random() * 180 - 90,
            "longitude": rand.random() * 360 - 180,
            "tags": [rand.choice(WORDS) for _ in range(5)],
            "friends": [{"id": k, "name": words(2)} for k in range(3)],
        })
    return json.dumps(records)


documents = {}  # file name -> text: the "object store" of this instance


def main(args):
    file_name = args.get("file_name", "gen02_n1024.json")
    if not isinstance(file_name, str) or not file_name:
        raise ValueError("file_name: a non-empty string is required")
    text = documents.get(file_name)
    if text is None:
        text = documents[file_name] = generate(file_name, records_of(file_name))
    t0 = time.perf_counter()
    doc = json.loads(text)
    out = json.dumps(doc, indent=4)
    return {"file_name": file_name, "records": len(doc), "bytes_in": len(text), "bytes_out": len(out), "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
