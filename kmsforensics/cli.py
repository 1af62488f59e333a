"""The ``kmsforensics`` command.

Examples
--------
::

    kmsforensics load ./evidence            # summary, files and issues
    kmsforensics load ./evidence --json     # the same, machine-readable
    kmsforensics load ./evidence --strict   # exit 2 on the first bad record

Everything the command prints goes through :func:`say`, which escapes control
characters (log text and file names are attacker-controlled: a member name must not
clear the screen or draw a hyperlink).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ._version import __version__
from .errors import KmsForensicsError
from .evidence import DEFAULT_MAX_BYTES
from .loader import load
from .safetext import terminal_text
from .schema import MANIFEST_COLUMNS


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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (KmsForensicsError, FileNotFoundError) as exc:
        say(f"kmsforensics: {exc}", error=True)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kmsforensics",
        description="Forensics for Alibaba Cloud KMS access logs and ActionTrail events.",
    )
    parser.add_argument("--version", action="version", version=f"kmsforensics {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    cmd = commands.add_parser("load", help="load evidence and report what was read")
    cmd.add_argument("evidence", nargs="+", help="files, folders or globs")
    cmd.add_argument("--strict", action="store_true", help="stop at the first bad record")
    cmd.add_argument(
        "--max-bytes",
        type=int,
        default=DEFAULT_MAX_BYTES,
        help="bound on the decompressed size of one file",
    )
    cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    cmd.set_defaults(run=_load)
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


def _load(args: argparse.Namespace) -> int:
    from .store import is_store
    from .store import open as open_store

    if len(args.evidence) == 1 and is_store(args.evidence[0]):
        case = open_store(args.evidence[0])
    else:
        case = load(
            *args.evidence,
            strict=args.strict,
            max_bytes=args.max_bytes,
            progress=sys.stderr.isatty(),
        )
    summary = case.summary()
    if args.json:
        summary["start"] = summary["start"].isoformat() if summary["start"] is not None else None
        summary["end"] = summary["end"].isoformat() if summary["end"] is not None else None
        summary["manifest"] = json.loads(case.manifest.to_json(orient="records"))
        say(json.dumps(summary, indent=2))
        return 0
    say(repr(case))
    columns = [c for c in MANIFEST_COLUMNS[:9] if c not in ("sha256", "bytes")]
    cells = case.manifest[columns].map(lambda v: terminal_text(v) if isinstance(v, str) else v)
    say(cells.to_string(index=False))
    if len(case.issues):
        counts = case.issues["severity"].value_counts().to_dict()
        say("issues: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
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
    from pathlib import Path

    from .synth import generate
    from .synth.scenarios import SCENARIOS

    start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
    attacks = []
    for spec in args.scenario:
        name, _, hour = spec.partition("@")
        if name not in SCENARIOS or not hour.replace(".", "", 1).isdigit():
            raise SystemExit(
                f"kmsforensics synth: bad --scenario {spec!r}; use NAME@HOUR with NAME one "
                f"of {', '.join(SCENARIOS)}"
            )
        attacks.append((name, start + timedelta(hours=float(hour))))
    summary = generate(
        Path(args.out),
        seed=args.seed,
        start=start,
        hours=args.hours,
        kms_per_hour=args.kms_per_hour,
        scenarios=attacks,
        damage=args.damage,
    )
    say(json.dumps(summary, indent=2))
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
    say(f"wrote {out} ({out.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
