"""The doit variables dodo.py understands, checked before anything is built or written.

doit itself accepts any `name=value` on its command line and ignores the names nobody asks for, so a
one-letter slip (`fused_ops=router`) used to run every spec. `check` stops such a run with one line that
names the variable, the closest known one and the list, and does the same for a value a variable cannot
take (`backend=simm`).
"""

import difflib

from pipeline.spec import BACKENDS

# name -> what its value is (shown in the error, and in dodo.py's docstring)
KNOWN = {
    "fused_op": "NAME[,NAME]",
    "backend": "|".join(BACKENDS),
    "workspace": "PATH",
    "artifacts": "DIR",
}


class VariableError(ValueError):
    """A doit variable dodo.py does not know, or a value it cannot take: one line, exit 2."""


def given(argv: list[str]) -> dict[str, str]:
    """The `name=value` words of a doit command line, parsed as doit parses them."""
    return dict(a.split("=", 1) for a in argv if a and not a.startswith("-") and "=" in a)


def check(argv: list[str]) -> None:
    """Raise VariableError for the first unknown variable or impossible value on the command line."""
    variables = given(argv)
    for name in variables:
        if name not in KNOWN:
            listing = ", ".join(f"{k}={v}" for k, v in KNOWN.items())
            raise VariableError(
                f"unknown doit variable {name!r}{_closest(name, KNOWN, ' (did you mean {}=?)')}; "
                f"known variables: {listing}"
            )
    backend = variables.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise VariableError(_bad_value("backend", backend, BACKENDS))
    # a fused_op value that names no spec: pipeline/spec.py says so, listing the specs there are


def _bad_value(name: str, value: str, choices) -> str:
    return (
        f"doit variable {name}={value}: no such {name}"
        f"{_closest(value, choices, ' (did you mean ' + name + '={}?)')}; known: {', '.join(choices)}"
    )


def _closest(word: str, choices, template: str) -> str:
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return template.format(found[0]) if found else " (no close match)"
