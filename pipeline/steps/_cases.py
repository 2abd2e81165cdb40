"""Test cases of a pytest run, from its junit XML (written with junit_logging=all so each case carries
its own log): outcome, PCC lines and e2e perf per case. Durations are left out on purpose: they differ
on every run, and a result that only differs in them must not make downstream steps rerun."""

from pathlib import Path

from pipeline import logparse


def from_junit(path: Path) -> list[dict]:
    cases = []
    for case in logparse.junit_cases(path):
        cases.append({
            "id": case.name,
            "outcome": case.outcome,
            "message": _first_line(case.message),
            "pcc": {p.name: p.value for p in logparse.unit_pccs(case.output)},
            "e2e_us": [p["us"] for p in logparse.e2e_perf(case.output)],
        })  # fmt: skip
    return cases


def all_skipped(cases: list[dict]) -> bool:
    return bool(cases) and all(c["outcome"] == "skipped" for c in cases)


def skip_reason(cases: list[dict]) -> str:
    reasons = sorted({c["message"] for c in cases if c["outcome"] == "skipped" and c["message"]})
    return "; ".join(reasons) or "every case was skipped"


def failure_summary(cases: list[dict], limit: int = 3) -> str:
    failed = [c for c in cases if c["outcome"] in ("failed", "error")]
    if not failed:
        return ""
    shown = "; ".join(f"{c['id']}: {c['message']}" for c in failed[:limit])
    more = f" (+{len(failed) - limit} more)" if len(failed) > limit else ""
    return f"{len(failed)} of {len(cases)} cases failed: {shown}{more}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
