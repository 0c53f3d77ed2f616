# FunctionBench-style "chameleon" in Python: compiles a page template with the
# Chameleon engine (which turns templates into Python code) and renders an
# nrow × ncol HTML table with it.
# Payload: {nrow: 10, ncol: 10}; no network.
import time

from chameleon import PageTemplate

BIGTABLE = """<table xmlns="http://www.w3.org/1999/xhtml" xmlns:tal="http://xml.zope.org/namespaces/tal">
<tr tal:repeat="row table">
<td tal:repeat="c row"><span class="column-${c + 1}">${c + 1}</span></td>
</tr>
</table>"""


def int_param(args, name, default, lo, hi):
    v = args.get(name, default)
    if not isinstance(v, int) or isinstance(v, bool) or v < lo or v > hi:
        raise ValueError(f"{name}: an integer from {lo} to {hi} is required (got {v!r})")
    return v


def main(args):
    nrow = int_param(args, "nrow", 10, 0, 10_000)
    ncol = int_param(args, "ncol", 10, 0, 10_000)
    t0 = time.perf_counter()
    # compiling the template into code is the benchmark: a new template each call
    tmpl = PageTemplate(BIGTABLE)
    row = list(range(ncol))
    html = tmpl.render(table=[row] * nrow)
    return {"nrow": nrow, "ncol": ncol, "html_length": len(html), "html_head": html[:120], "latency_ms": round((time.perf_counter() - t0) * 1000, 3)}
