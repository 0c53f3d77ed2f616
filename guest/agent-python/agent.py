"""Starts FaaSCell's Python guest agent (the package faascell_agent beside this
file; faascell.py beside it is the module functions may import)."""

import time

_started = time.monotonic()

from faascell_agent.main import main  # noqa: E402 - the start time is taken first

main(_started)
