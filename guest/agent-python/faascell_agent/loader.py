"""Loading a function the way OpenWhisk's Python runtime accepts it: a single
file, or a zip whose __main__.py is the action, with the entry function (main
by default, --main picks another) defined at its top level. The main file is
imported as the module `main__` (OpenWhisk's name for it), with the function's
directory first on sys.path, so sibling modules and packages in the archive
import normally and `if __name__ == "__main__":` blocks do not run."""

import importlib.util
import os
import sys

MODULE_NAME = "main__"


class LoadError(Exception):
    """The code loaded but has no entry function (reported without a traceback)."""


def load_entry(path, entry, root):
    if not path.endswith(".py"):
        raise LoadError(f"cannot use {os.path.basename(path)} as the function's main: a Python function's main is a .py file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"[Errno 2] No such file or directory: {path!r}")
    if root not in sys.path:
        sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(MODULE_NAME, None)
        raise
    fn = getattr(module, entry, None)
    if not callable(fn):
        raise LoadError(f'{os.path.basename(path)} has no function "{entry}": define def {entry}(args) at its top level')
    return fn
