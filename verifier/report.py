"""What a run prints: the JSON report of spec section 9 (`--json`) or a report for people (rich
tables), and the progress bar on stderr. The only module, with cli.py, that imports rich."""

import json
import sys

from verifier.violations import CODES

GRAMS_PER_TONNE = 1_000_000
HUMAN_ROWS_PER_CODE = 50
REPORT_FORMAT = "puhui-verify-report/2"


def tonnes(grams):
    """Tonnes with three decimals, as the project shows every quantity to a person, rounded half
    to even from integer grams in exact integer arithmetic: 1234567 -> '1.235'. The JSON report
    keeps exact grams."""
    sign = "-" if grams < 0 else ""
    kilograms, rest_g = divmod(abs(grams), 1_000)
    if rest_g > 500 or (rest_g == 500 and kilograms % 2):
        kilograms += 1
    whole, fraction = divmod(kilograms, 1_000)
    return f"{sign}{whole:,}.{fraction:03d}"


def tonnes_shown(grams):
    """Tonnes for a column headed in tonnes, with the grams beside where they would read 0.000: a
    citizen's 78 g is not nothing."""
    text = tonnes(grams)
    return f"{text} ({grams:,} g)" if grams and text in ("0.000", "-0.000") else text


def bundle_report_json(result, log_origin=None):
    """The JSON report; origin is the trust file's, log_origin what the log's genesis states (null
    without a readable one): they differ with another registry's trust file."""
    violations = result.violations
    return {
        "format": REPORT_FORMAT,
        "log_format": result.log_format,
        "valid": result.valid,
        "origin": result.origin,
        "log_origin": log_origin,
        "tree_size": result.tree_size,
        "root": result.root.hex(),
        "violations": [finding.as_json() for finding in violations.listed],
        "violation_counts": {code: violations.counts[code] for code in CODES if violations.counts[code]},
        "violations_not_listed": violations.unlisted,
        "warnings": [finding.as_json() for finding in result.warnings.listed],
        "warnings_not_listed": result.warnings.unlisted,
        "checkpoints": result.checkpoints.as_json(),
        "totals": result.totals.as_json(),
        "stats": result.stats,
    }


def proof_report_json(command, result):
    return {
        "format": REPORT_FORMAT,
        "command": command,
        "valid": result.valid,
        "violations": [{"code": code, "seq": None, "message": message} for code, message in result.violations],
        "details": result.details,
        **({} if result.log_format is None else {"log_format": result.log_format}),
        "notes": result.notes,
    }


def print_json(document):
    sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=1) + "\n")


def _console():
    """The terminal's width, or COLUMNS, or 80 when printing to a pipe or a file: a report saved
    from a pipe reads in an 80-column window like the rest of Puhui's output (rich wraps cells)."""
    from rich.console import Console

    class ReportConsole(Console):
        def on_broken_pipe(self):
            # rich's own handling exits with status 1, which means "a violation": the reader going
            # away is cli.py's to answer, with the verdict.
            self.quiet = True
            raise BrokenPipeError

    return ReportConsole(file=sys.stdout, highlight=False)


def _grams_table(title, rows, first_column):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(first_column)
    table.add_column("tonnes CO2e", justify="right")
    for name, grams in rows:
        table.add_row(str(name), tonnes_shown(grams))
    return table


def print_bundle_report(result, log_origin=None):
    """The report for people; log_origin as in bundle_report_json."""
    from rich.markup import escape
    from rich.table import Table

    console = _console()
    totals = result.totals
    stats = result.stats
    if result.valid:
        verdict = "[bold green]VALID[/]: no violation"
    else:
        verdict = f"[bold red]NOT VALID[/]: {result.violations.total} violation(s)"
    log_format = f"format {result.log_format}" if result.log_format is not None else "empty"
    if log_origin is None or log_origin == result.origin:
        named = f"[bold]{escape(result.origin)}[/]"
    else:  # another registry's trust file: the log is its genesis's, judged by the trust file's keys
        named = f"[bold]{escape(log_origin)}[/] (its genesis's origin; the trust file's is {escape(result.origin)})"
    console.print(f"Puhui log {named} ({log_format}): {result.tree_size} events, root {result.root.hex()}")
    console.print(verdict)
    console.print(
        f"{stats.get('events_accepted', 0)} events replayed without violation, "
        f"{stats.get('activity_records', 0)} activity records in {stats.get('activity_files', 0)} files, "
        f"{stats.get('seconds', 0)} s"
    )

    checkpoints = result.checkpoints
    # One row a fact: five columns side by side would cut the witnesses' names at 80 columns.
    table = Table(title="Checkpoints", title_justify="left", show_header=False)
    table.add_column("")
    table.add_column("", overflow="fold")
    for label, value in (
        ("checkpoint lines", checkpoints.lines),
        ("validly signed", checkpoints.signed),
        ("matching the log", checkpoints.matching),
        ("latest size", checkpoints.latest_size if checkpoints.latest_size is not None else "-"),
        ("witnesses on latest", ", ".join(checkpoints.latest_witnesses) or "-"),
    ):
        table.add_row(label, str(value))
    console.print(table)

    summary = Table(title="Totals", title_justify="left")
    summary.add_column("")
    summary.add_column("tonnes CO2e", justify="right")
    for label, grams in (
        ("issued", totals.issued_g),
        ("retired", totals.retired_g),
        ("cancelled", totals.cancelled_g),
        ("surrendered as ETS offsets", totals.surrendered_g),
        ("claimed for carbon neutrality", totals.claimed_g),
    ):
        summary.add_row(label, tonnes_shown(grams))
    console.print(summary)
    for title, rows, column in (
        ("Retired by purpose", totals.retired_by_purpose, "purpose"),
        ("Issued by methodology", totals.issued_by_methodology, "methodology"),
        ("Retired by methodology", totals.retired_by_methodology, "methodology"),
        ("Issued by region", totals.issued_by_region, "region"),
        ("Retired by region", totals.retired_by_region, "region"),
    ):
        if rows:
            console.print(_grams_table(title, sorted(rows.items()), column))

    _print_findings(console, "Violations", result.violations)
    _print_findings(console, "Warnings", result.warnings)


def _print_findings(console, title, findings):
    from rich.table import Table

    if not findings:
        return
    by_code = {}
    for finding in findings.listed:
        by_code.setdefault(finding.code, []).append(finding)
    order = {code: position for position, code in enumerate(CODES)}
    for code in sorted(findings.counts, key=lambda code: (order.get(code, len(order)), code)):
        table = Table(title=f"{title}: {code} ({findings.counts[code]})", title_justify="left")
        table.add_column("seq", justify="right")
        table.add_column("what was found")
        listed = by_code.get(code, [])
        for finding in listed[:HUMAN_ROWS_PER_CODE]:
            table.add_row("-" if finding.seq is None else str(finding.seq), finding.message)
        hidden = findings.counts[code] - min(len(listed), HUMAN_ROWS_PER_CODE)
        if hidden:
            table.add_row("", f"... and {hidden} more (see --json)")
        console.print(table)


def print_proof_report(command, result):
    console = _console()
    if result.valid:
        console.print(f"[bold green]VALID[/] {command}")
    else:
        console.print(f"[bold red]NOT VALID[/] {command}")
    details = result.details
    if command == "receipt" and details:
        body = details.get("body") or {}
        console.print(f"event seq {details['seq']} ({details['type']}) in a log of {details['tree_size']} leaves")
        for name in ("retirement_id", "surrender_id", "account", "entity", "amount_g", "purpose", "beneficiary", "compliance_year", "retirements"):
            if name in body:
                value = body[name]
                shown = f"{tonnes(value)} t ({value:,} g)" if name == "amount_g" and type(value) is int else value
                console.print(f"  {name.removesuffix('_g') if name == 'amount_g' else name}: {shown}")
    if command == "opening" and details:
        checked = "exactly, against the definition" if details["definition_checked"] else "against the record only (no --definition)"
        console.print(f"record {details['activity_id']} of {details['occurred_on']}: fields checked {checked}")
        if "batch_seq" in details:
            console.print(f"in batch {details['batch_id']}, whose event is seq {details['batch_seq']} of a log of {details['tree_size']} leaves")
    if command == "consistency" and details:
        console.print(f"checkpoint of size {details['old_size']} -> checkpoint of size {details['new_size']}")
    for code, message in result.violations:
        console.print(f"  [bold]{code}[/]: {message}")
    for note in result.notes:
        console.print(f"note: {note}")


class ProgressBar:
    """A progress bar on stderr, only when stderr is a terminal; call it with (done, total) bytes."""

    def __init__(self):
        self._progress = None
        self._task = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

            self._progress = Progress(
                "verifying", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                console=Console(file=sys.stderr), transient=True,
            )

    def __enter__(self):
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc):
        if self._progress:
            self._progress.stop()

    def __call__(self, done, total):
        if self._progress is None:
            return
        if self._task is None:
            self._task = self._progress.add_task("verify", total=total)
        self._progress.update(self._task, completed=done)
