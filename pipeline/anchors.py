"""Where a fused sequence sits in a module file: the `start` and `end` anchors of a spec's [sequence.<mode>].

`start` must occur exactly once in the file. `end` is searched from `start` on (a one-statement
sequence names the same line twice), and its first occurrence there is the one meant: decode and
prefill paths often end with identical lines. An anchor may span several lines (a TOML multi-line
string); its line is the one where it begins. Used by the spec check and by the patch itself, so both agree.
"""

from typing import NamedTuple


class AnchorError(Exception):
    def __init__(self, key: str, problem: str, fix: str):
        super().__init__(f"{problem}; {fix}")
        self.key, self.problem, self.fix = key, problem, fix


class Span(NamedTuple):
    start_line: int  # 1-based line where `start` begins
    end_line: int  # 1-based line where `end` begins (searched after `start`)


def locate(source: str, start: str, end: str, file: str) -> Span:
    if not start.strip() or not end.strip():
        raise AnchorError("start" if not start.strip() else "end", "is empty", "quote text of the line")
    count = source.count(start)
    if count != 1:
        fix = "quote text that occurs exactly once (add more of the line, or a second line)"
        raise AnchorError("start", f"{start!r} matches {count} times in {file}", fix)
    start_at = source.index(start)
    end_at = start_at if end == start else source.find(end, start_at + len(start))
    if end_at < 0:
        where = "only before start" if end in source else "nowhere"
        raise AnchorError(
            "end", f"{end!r} occurs {where} in {file}", "quote text of the sequence's last statement"
        )
    return Span(_line(source, start_at), _line(source, end_at))


def _line(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1
