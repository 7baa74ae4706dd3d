"""The views of a Reading, one renderer each, and the one table of the files
that serve them: the file's name after the entry's, its renderer, and whether
it takes commands. fs.py and the controller both read it."""
from typing import Callable, NamedTuple

from . import json_view, prometheus, text


class View(NamedTuple):
    render: Callable  # Reading -> bytes
    writable: bool    # takes commands


VIEWS = {"": View(text.render, True), ".json": View(json_view.render, False), ".prom": View(prometheus.render, False)}
