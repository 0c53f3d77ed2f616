# FunctionBench-style "helloworld" in Python: the smallest possible action
# (OpenWhisk's Python contract: main(args) returns a dict).


def main(args):
    name = args.get("name")
    return {"message": f"Hello, {name if isinstance(name, str) else 'World'}!"}
