"""`puhui-verify`: exit 0 when the input holds, 1 when a violation was found, 2 when it could not
run (usage, unreadable input, bad trust file). Never a traceback for bad input."""

import argparse
import os
import sys

from verifier.reader import InputError, read_small_file


def _jobs(text):
    try:
        jobs = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= jobs <= 1024:
        raise argparse.ArgumentTypeError("must be between 1 and 1024")
    return jobs


def _memory_limit(text):
    from verifier.uniqueness import MIN_MEMORY_LIMIT, parse_size

    try:
        size = parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if size < MIN_MEMORY_LIMIT:
        raise argparse.ArgumentTypeError(f"must be at least {MIN_MEMORY_LIMIT // 1024}K")
    return size


def _parser():
    parser = argparse.ArgumentParser(
        prog="puhui-verify",
        description="Independent verifier of a Puhui registry log (puhui-log-v2, which verifies format-1 logs too).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bundle = commands.add_parser("bundle", help="replay an exported bundle and check every rule")
    bundle.add_argument("bundle_dir", metavar="DIR", help="the bundle: log.jsonl, checkpoints.jsonl, activities/")
    bundle.add_argument("--trust", required=True, metavar="FILE", help="the trust file obtained out of band")
    bundle.add_argument("--json", action="store_true", help="print the JSON report of spec section 9")
    bundle.add_argument("--require-activities", action="store_true", help="a missing activity file is a violation")
    bundle.add_argument("--jobs", type=_jobs, metavar="N", help="processes to use, this one included (default: all cores)")
    bundle.add_argument(
        "--memory-limit",
        type=_memory_limit,
        metavar="SIZE",
        help="memory for the activity id and fingerprint tables and a format-2 log's subjects, e.g. 512M or 4G; beyond it they spill to disk (default: half the machine's memory)",
    )
    bundle.add_argument("--spill-dir", metavar="DIR", help="where spilled tables go (default: the system's temporary directory)")
    bundle.add_argument("--dask", metavar="SCHEDULER_ADDRESS", help="check records and signatures on the workers of this Dask distributed scheduler (e.g. tcp://10.0.0.5:8786)")

    receipt = commands.add_parser("receipt", help="check a retirement or surrender receipt offline")
    receipt.add_argument("receipt_file", metavar="FILE", help="a receipt (GET /v1/receipts/SEQ, docs/receipt.md)")
    receipt.add_argument("--trust", required=True, metavar="FILE", help="the trust file obtained out of band")
    receipt.add_argument("--json", action="store_true", help="print the result as JSON")
    receipt.add_argument("--log-format", type=int, choices=(1, 2), help="the format of the receipt's log (default: the one the receipt holds under)")

    opening = commands.add_parser("opening", help="check the opening of a format-2 activity record (spec section 7.4)")
    opening.add_argument("record", metavar="RECORD_FILE_OR_JSON", help="the record's exact bytes, or the registry's record proof")
    opening.add_argument("opening", metavar="OPENING", help="the opening (a file, or its JSON text)")
    opening.add_argument("--definition", metavar="FILE", help="the methodology version's params: the fields are then checked exactly")
    opening.add_argument("--receipt", metavar="FILE", help="the receipt of the record's activity.batch event (needs --trust)")
    opening.add_argument("--trust", metavar="FILE", help="the trust file obtained out of band (with --receipt)")
    opening.add_argument("--json", action="store_true", help="print the result as JSON")

    consistency = commands.add_parser("consistency", help="check that the log only grew between two checkpoints")
    consistency.add_argument("old_checkpoint", metavar="OLD_CHECKPOINT", help="the signed note seen first")
    consistency.add_argument("new_checkpoint", metavar="NEW_CHECKPOINT", help="the signed note seen later")
    consistency.add_argument("proof", metavar="PROOF", help="the consistency proof JSON (GET /v1/proofs/consistency)")
    consistency.add_argument("--trust", required=True, metavar="FILE", help="the trust file obtained out of band")
    consistency.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser


def _file_or_text(argument, what):
    """The bytes of a file if `argument` names one, else the argument itself (JSON text)."""
    if os.path.isfile(argument):
        return read_small_file(argument, what)
    if argument.lstrip().startswith("{"):
        return argument.encode("utf-8", errors="surrogatepass")
    return read_small_file(argument, what)


def _discard_stdout():
    """Send what is left of stdout to /dev/null: its reader went away."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _reported(valid, print_report):
    """Print a verdict's report; the exit status is the verdict, 0 valid or 1 not, even when the
    reader of stdout stops early (`| head -1`): the check was complete before the first line was
    written, and a script that reads part of the report still needs it (docs/verifier.md)."""
    try:
        print_report()
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
    return 0 if valid else 1


def _run_opening(arguments):
    from verifier import report
    from verifier.openings import check_opening
    from verifier.trust import load_trust

    if (arguments.receipt is None) != (arguments.trust is None):
        raise InputError("--receipt and --trust go together")
    result = check_opening(
        _file_or_text(arguments.record, "record"),
        _file_or_text(arguments.opening, "opening"),
        read_small_file(arguments.definition, "definition") if arguments.definition else None,
        read_small_file(arguments.receipt, "receipt") if arguments.receipt else None,
        load_trust(arguments.trust) if arguments.trust else None,
    )
    if arguments.json:
        return _reported(result.valid, lambda: report.print_json(report.proof_report_json("opening", result)))
    return _reported(result.valid, lambda: report.print_proof_report("opening", result))


def _run(arguments):
    from verifier import report
    from verifier.digests import string_hash_seed
    from verifier.trust import load_trust

    if arguments.command == "opening":
        return _run_opening(arguments)
    trust = load_trust(arguments.trust)
    if arguments.command == "bundle":
        from verifier.bundle import verify_bundle
        from verifier.reader import MAX_LEAF_BYTES, read_first_line
        from verifier.trust import genesis_claim, genesis_mismatch

        log_path = os.path.join(arguments.bundle_dir, "log.jsonl")
        try:  # advice only: a bundle that cannot be read is verify_bundle's to report
            first_line = read_first_line(log_path, "log", MAX_LEAF_BYTES) if os.path.isfile(log_path) else None
        except InputError:
            first_line = None
        claim = None if first_line is None else genesis_claim(first_line)
        log_origin = claim.origin if claim is not None and isinstance(claim.origin, str) else None
        advice = genesis_mismatch(claim, trust)
        if advice is not None:
            print(f"puhui-verify: note: {advice}", file=sys.stderr)

        if arguments.spill_dir is not None and not os.path.isdir(arguments.spill_dir):
            raise InputError(f"--spill-dir {arguments.spill_dir} is not a directory")
        options = {"memory_limit": arguments.memory_limit, "spill_dir": arguments.spill_dir, "dask_scheduler": arguments.dask}
        progress = None if arguments.json else report.ProgressBar()
        if progress is None:
            result = verify_bundle(arguments.bundle_dir, trust, arguments.require_activities, arguments.jobs, **options)
        else:
            with progress:
                result = verify_bundle(arguments.bundle_dir, trust, arguments.require_activities, arguments.jobs, progress, **options)
        spilled = result.stats["uniqueness_spill_bytes_peak"]
        if spilled:
            where = arguments.spill_dir or "the temporary directory"
            print(f"puhui-verify: note: the id and fingerprint tables passed --memory-limit and spilled {spilled / 2**20:.1f} MiB at most to {where} (removed)", file=sys.stderr)
        if result.stats.get("subjects_held_whole"):
            print(f"puhui-verify: note: the format-2 subjects were held whole, beyond --memory-limit, in the last of {result.stats['passes']} readings of the log: the subjects at risk of being forgotten were not settled in two", file=sys.stderr)
        forgotten = result.stats.get("subjects_generations_forgotten", 0)
        if forgotten:
            pinned = result.stats["subjects_pinned"]
            met_again = f"; {pinned} subjects met again across generations were kept apart, so the log was read {result.stats['passes']} times" if pinned else ""
            print(f"puhui-verify: note: the format-2 subjects passed --memory-limit: {forgotten} generations of them were forgotten{met_again}", file=sys.stderr)
        if arguments.dask is not None and result.stats["digests"] != "string hash":
            why = ("the Dask workers do not all share this process's string-hash secret" if string_hash_seed() is not None else
                   "PYTHONHASHSEED is not set to a seed drawn for the run (it is unset, 0, Dask's public 6640, or not a plain number)")
            print(f"puhui-verify: note: {why}, so the ids were digested by BLAKE2b, about 0.75 us more a record; to use the string hash, "
                  "draw a number from 1 to 4294967295 for the run and start puhui-verify with PYTHONHASHSEED set to it and every worker "
                  "with DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON=\"{'PYTHONHASHSEED': '<it>'}\" (docs/scale.md)", file=sys.stderr)
        if arguments.json:
            return _reported(result.valid, lambda: report.print_json(report.bundle_report_json(result, log_origin)))
        return _reported(result.valid, lambda: report.print_bundle_report(result, log_origin))

    from verifier.proofs import check_consistency, check_receipt_of_log

    if arguments.command == "receipt":
        result = check_receipt_of_log(read_small_file(arguments.receipt_file, "receipt"), trust, arguments.log_format)
    else:
        result = check_consistency(
            read_small_file(arguments.old_checkpoint, "old checkpoint"),
            read_small_file(arguments.new_checkpoint, "new checkpoint"),
            read_small_file(arguments.proof, "consistency proof"),
            trust,
            f"old checkpoint {arguments.old_checkpoint}",
            f"new checkpoint {arguments.new_checkpoint}",
        )
    if arguments.json:
        return _reported(result.valid, lambda: report.print_json(report.proof_report_json(arguments.command, result)))
    return _reported(result.valid, lambda: report.print_proof_report(arguments.command, result))


def main(argv=None):
    arguments = _parser().parse_args(argv)
    try:
        status = _run(arguments)
        sys.stdout.flush()
    except InputError as error:
        print(f"puhui-verify: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("puhui-verify: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of our output went away before there was a verdict to report.
        _discard_stdout()
        return 2
    except MemoryError:
        print("puhui-verify: error: out of memory", file=sys.stderr)
        return 2
    except Exception as error:  # a bug, not bad input: still a message, not a traceback
        if os.environ.get("PUHUI_VERIFY_DEBUG"):
            raise
        print(f"puhui-verify: internal error: {type(error).__name__}: {error} (set PUHUI_VERIFY_DEBUG=1 for details)", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
