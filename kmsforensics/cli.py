"""The ``kmsforensics`` command (also ``python -m kmsforensics``).

Examples
--------
::

    kmsforensics load ./evidence                 # counts per format and per status
    kmsforensics load ./evidence --manifest      # and one row per file
    kmsforensics load ./evidence --json          # everything, machine-readable
    kmsforensics load ./evidence --strict        # exit 2 on the first bad record
    kmsforensics detect ./evidence --window-start 2026-03-11 --csv findings.csv
    kmsforensics incidents ./evidence
    kmsforensics export ./evidence --format timesketch --out events.jsonl
    kmsforensics report --evidence ./evidence --out report.html --param case_id=IR-7
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__
from .errors import KmsForensicsError, NoEvidenceError, ParseWarning
from .evidence import DEFAULT_MAX_BYTES
from .safetext import terminal_text

EXPORT_FORMATS = ("csv", "jsonl", "timesketch", "ocsf")


def plain(text: object) -> str:
    r"""Return text safe to print on a terminal: control characters shown as escapes.

    Examples
    --------
    >>> plain("ok\x1b[31m red")
    'ok\\x1b[31m red'
    """
    return terminal_text(str(text))


def say(text: object = "", *, error: bool = False) -> None:
    r"""Print ``text`` (to stderr with ``error``), control characters escaped line by line.

    Examples
    --------
    >>> say("evil.zip::\x1b[2J.jsonl\nsecond line")
    evil.zip::\x1b[2J.jsonl
    second line
    """
    lines = str(text).split("\n")
    print(
        "\n".join(terminal_text(line) for line in lines), file=sys.stderr if error else sys.stdout
    )


def _cli_words(message: str) -> str:
    """Say what the library's messages say in the command's own options."""
    message = message.replace("load with strict=False", "run without --strict")
    message = message.replace("strict=False", "without --strict")
    return re.sub(r"kf\.load\(\.\.\., max_bytes=(\d+)\)", r"--max-bytes \1", message)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (KmsForensicsError, FileNotFoundError) as exc:
        say(f"kmsforensics {args.command}: {_cli_words(str(exc))}", error=True)
        return 2


def _evidence_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("evidence", nargs="+", help="files, folders or globs")
    cmd.add_argument("--strict", action="store_true", help="stop at the first bad record")
    cmd.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help="bound on the decompressed size of one file",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmsforensics",
        description="Forensics for Alibaba Cloud KMS access logs and ActionTrail events.",
    )
    parser.add_argument("--version", action="version", version=f"kmsforensics {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND", dest="command")
    cmd = commands.add_parser("load", help="load evidence and say what was read")
    _evidence_options(cmd)
    cmd.add_argument("--manifest", action="store_true", help="also print one row per file")
    cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    cmd.set_defaults(run=_load)

    det = commands.add_parser("detect", help="run the rule pack and list the findings")
    _evidence_options(det)
    det.add_argument("--window-start", help="start of the window under investigation (UTC)")
    det.add_argument("--rules", help="rule ids to run, comma-separated (default: all)")
    det.add_argument("--triage", help="a triage record (JSON): its suppressions apply")
    out = det.add_mutually_exclusive_group()
    out.add_argument("--json", metavar="OUT", help="write the findings as JSON Lines")
    out.add_argument("--csv", metavar="OUT", help="write the findings as CSV")
    det.set_defaults(run=_detect)

    inc = commands.add_parser("incidents", help="group the findings into ranked incidents")
    _evidence_options(inc)
    inc.add_argument("--window-start", help="start of the window under investigation (UTC)")
    inc.add_argument("--triage", help="a triage record (JSON): its suppressions apply")
    inc.add_argument("--json", action="store_true", help="print the incidents as JSON")
    inc.set_defaults(run=_incidents)

    exp = commands.add_parser("export", help="write every event in a format other tools read")
    _evidence_options(exp)
    exp.add_argument("--format", required=True, choices=EXPORT_FORMATS, dest="fmt")
    exp.add_argument("--out", required=True, help="the file to write")
    exp.set_defaults(run=_export)

    ing = commands.add_parser(
        "ingest", help="parse evidence once into a case store (Parquet by source and day)"
    )
    ing.add_argument("evidence", nargs="+", help="files, folders or globs")
    ing.add_argument("--out", required=True, help="the case store folder (created or appended)")
    ing.add_argument("--strict", action="store_true", help="stop at the first bad record")
    ing.add_argument(
        "--batch-mb",
        type=int,
        default=256,
        help="decompressed evidence parsed at a time (memory follows it)",
    )
    ing.add_argument(
        "--wait",
        type=float,
        default=600.0,
        help="seconds to wait for another ingest writing to the same store",
    )
    ing.add_argument("--json", action="store_true", help="print what was done as JSON")
    ing.set_defaults(run=_ingest)
    gen = commands.add_parser("synth", help="generate synthetic evidence (normal activity)")
    gen.add_argument("out", help="folder to write the evidence into")
    gen.add_argument("--seed", type=int, default=0, help="same seed, same bytes")
    gen.add_argument("--hours", type=int, default=24 * 7, help="hours of activity")
    gen.add_argument(
        "--kms-per-hour", type=float, default=600.0, help="KMS instance calls in a busy hour"
    )
    gen.add_argument("--start", default="2026-03-02T00:00:00Z", help="UTC start time")
    gen.add_argument(
        "--scenario",
        action="append",
        default=[],
        metavar="NAME@HOUR",
        help="add an attack HOUR hours after the start (repeatable); NAME is one of "
        "leaked-ci-key, key-destruction, aap-broadened, console-trail-tampering, "
        "spraying-and-enumeration",
    )
    gen.add_argument(
        "--damage",
        type=float,
        default=0.0,
        help="fraction of KMS lines to damage on purpose (listed in truth.json)",
    )
    gen.add_argument("--json", action="store_true", help="print the whole truth as JSON")
    gen.set_defaults(run=_synth)
    rep = commands.add_parser("report", help="render a report template on evidence to HTML")
    rep.add_argument("--template", default="incident", help="template name or notebook path")
    rep.add_argument("--evidence", nargs="+", required=True, help="files, folders or globs")
    rep.add_argument("--out", required=True, help="the HTML file to write")
    rep.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (repeatable); VALUE is read as JSON when it parses",
    )
    rep.set_defaults(run=_report)
    return parser


def _case(args: argparse.Namespace) -> Any:
    """Load the evidence (or open a case store); refuse sources that hold no log at all."""
    from .loader import load
    from .store import is_store
    from .store import open as open_store

    if len(args.evidence) == 1 and is_store(args.evidence[0]):
        return open_store(args.evidence[0])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ParseWarning)
        case = load(
            *args.evidence,
            strict=args.strict,
            max_bytes=args.max_bytes,
            progress=sys.stderr.isatty(),
        )
    if not len(case.manifest):
        raise NoEvidenceError(f"no files in {', '.join(args.evidence)}")
    if (case.manifest["status"].astype(str) == "skipped").all() and case.activity.empty:
        raise NoEvidenceError(
            f"no KMS access log or ActionTrail file among the {len(case.manifest)} files of "
            f"{', '.join(args.evidence)} (each was skipped as not a supported log; "
            "`kmsforensics load --manifest` says why)"
        )
    for warning in seen:
        if issubclass(warning.category, ParseWarning):
            say(f"kmsforensics: {warning.message}", error=True)
    return case


def _counts(series: Any) -> str:
    counts = series.astype(str).value_counts()
    return ", ".join(f"{int(n):,} {plain(k)}" for k, n in sorted(counts.items()))


def _load(args: argparse.Namespace) -> int:
    case = _case(args)
    summary = case.summary()
    if args.json:
        summary["start"] = summary["start"].isoformat() if summary["start"] is not None else None
        summary["end"] = summary["end"].isoformat() if summary["end"] is not None else None
        summary["manifest"] = json.loads(case.manifest.to_json(orient="records"))
        say(json.dumps(summary, indent=2))
        return 0
    say(plain(repr(case)))
    say("files by format: " + _counts(case.manifest["format"]))
    say("files by status: " + _counts(case.manifest["status"]))
    if len(case.issues):
        say("issues: " + _counts(case.issues["severity"]) + " (see --json or case.issues)")
    if args.manifest:
        columns = ["path", "format", "records_read", "records_loaded", "records_rejected",
                   "duplicates", "status"]  # fmt: skip
        say(plain(case.manifest[columns].to_string(index=False)))
    else:
        say("(--manifest lists every file)")
    return 0


def _findings(args: argparse.Namespace, case: Any) -> Any:
    from .detections import DetectionNote, detect
    from .triage import TriageRecord, apply

    rules = [r.strip() for r in args.rules.split(",")] if getattr(args, "rules", None) else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DetectionNote)
        found = detect(case, rules=rules, window_start=args.window_start)
    record = TriageRecord(args.triage, [Path(p) for p in args.evidence]) if args.triage else None
    findings = apply(found, record, case)
    for rule_id, note in found.attrs.get("notes", {}).items():
        say(f"note: {rule_id} {note}", error=True)
    for ident, hidden in findings.attrs.get("suppressed", {}).items():
        say(f"suppression {ident} hid {hidden} findings", error=True)
    return findings


def _detect(args: argparse.Namespace) -> int:
    from .handover import export_findings
    from .report import SEVERITIES, ranked

    case = _case(args)
    findings = _findings(args, case)
    counts = findings["severity"].value_counts()
    found = ", ".join(f"{int(counts[s])} {s}" for s in SEVERITIES if s in counts)
    say(f"{len(findings):,} findings" + (f": {found}" if found else ""))
    for row in ranked(findings).head(15).itertuples():
        say(
            f"  {row.severity:<8} {row.rule_id} {row.first_seen:%Y-%m-%d %H:%M}Z "
            f"{plain(row.summary)[:120]}"
        )
    if len(findings) > 15:
        say(f"  ... {len(findings) - 15:,} more (--csv or --json writes them all)")
    target = args.csv or args.json
    if target:
        written = export_findings(findings, target, case, fmt="csv" if args.csv else "jsonl")
        say(f"wrote {written}")
    return 0


def _incidents(args: argparse.Namespace) -> int:
    from .graph import build_graph
    from .incidents_view import incidents

    case = _case(args)
    args.rules = None
    table = incidents(_findings(args, case), build_graph(case))
    if args.json:
        say(table.to_json(orient="records", date_format="iso", indent=1))
        return 0
    say(f"{len(table):,} incidents")
    for row in table.to_dict("records"):
        say(f"  {row['rank']:>3}. {row['severity']:<8} {plain(row['story'])}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from .handover import export_timeline
    from .timeline import timeline

    case = _case(args)
    if args.fmt == "ocsf":
        import kmsforensics

        export_ocsf = getattr(kmsforensics, "export_ocsf", None)
        if export_ocsf is None:
            raise KmsForensicsError("--format ocsf needs kf.export_ocsf (the export extra)")
        written = Path(export_ocsf(case, args.out))
    else:
        written = export_timeline(timeline(case, None), args.out, case, fmt=args.fmt)
    say(f"wrote {written} ({written.stat().st_size:,} bytes)")
    return 0


def _ingest(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .store import ingest

    report = ingest(
        *args.evidence,
        out=args.out,
        strict=args.strict,
        batch_bytes=args.batch_mb * 1024 * 1024,
        progress=sys.stderr.isatty(),
        wait=args.wait,
    )
    if args.json:
        say(json.dumps(asdict(report), indent=2))
        return 0
    added = ", ".join(f"{v:,} {k}" for k, v in report.events_added.items())
    say(
        f"{report.store}: {report.files_added:,} files added ({added} rows), "
        f"{report.files_already_in_store:,} already in the store, "
        f"{report.duplicates:,} duplicate events, {report.seconds:.1f} s"
    )
    return 0


def _synth(args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta

    from .synth import generate
    from .synth.scenarios import SCENARIOS

    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    attacks = []
    for spec in args.scenario:
        name, _, hour = spec.partition("@")
        if name not in SCENARIOS or not hour.replace(".", "", 1).isdigit():
            raise KmsForensicsError(
                f"bad --scenario {spec!r}; use NAME@HOUR with NAME one of {', '.join(SCENARIOS)}"
            )
        attacks.append((name, start + timedelta(hours=float(hour))))
    out = Path(args.out)
    truth = generate(
        out,
        seed=args.seed,
        start=start,
        hours=args.hours,
        kms_per_hour=args.kms_per_hour,
        scenarios=attacks,
        damage=args.damage,
    )
    if args.json:
        say(json.dumps(truth, indent=2))
        return 0
    counts = truth["counts"]
    say(
        f"wrote {out / 'evidence'}: {counts['files']:,} files, {counts['kms_records']:,} KMS "
        f"records, {counts['actiontrail_events']:,} ActionTrail events, "
        f"{len(truth['scenarios'])} attacks; the ground truth is in {out / 'truth.json'}"
    )
    return 0


def _report(args: argparse.Namespace) -> int:
    from .report import render

    parameters = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise KmsForensicsError(f"--param takes KEY=VALUE, not {item!r}")
        try:
            parameters[key] = json.loads(value)
        except json.JSONDecodeError:
            parameters[key] = value
    out = render(args.evidence, args.out, template=args.template, parameters=parameters)
    say(f"wrote {out} ({out.stat().st_size:,} bytes), {out.name}.sha256 and {out.stem}.json")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
