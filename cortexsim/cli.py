"""The ``cortexsim`` command line.

Sub-commands dispatch to the module that owns the concept (see DESIGN.md); this file only
parses arguments, prints (text or ``--json``) and reports every error in one place
(:func:`main`, exit statuses in :data:`EXIT_STATUSES`).
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import (
    EXIT_INTERRUPTED,
    EXIT_IO,
    InputError,
    StorageError,
    environment_error,
    interrupts_raise,
)

#: what each exit status of ``cortexsim`` means (also in ``cortexsim --help``)
EXIT_STATUSES = {
    0: "success",
    1: "an internal error (a bug in cortexsim: please report it) or a sub-command unavailable "
    "in this installation",
    2: "bad input (one line naming the option or spec field), or --out in use by another process",
    EXIT_IO: "an error of the environment while writing or reading a file (disk full, "
    "permission denied...): one line naming the path and what to do",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C or SIGINT); a re-run resumes",
}


def _print_table(rows: list[dict]) -> None:
    if not rows:
        print("(nothing)")
        return
    flat = []
    for r in rows:
        f = {}
        for k, v in r.items():
            if isinstance(v, dict):
                for k2, v2 in v.items():
                    f[f"{k}.{k2}"] = v2
            else:
                f[k] = v
        flat.append(f)
    cols = list(dict.fromkeys(k for f in flat for k in f))

    def fmt(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return "-" if v is None else str(v)

    widths = {c: max(len(c), *(len(fmt(f.get(c))) for f in flat)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for f in flat:
        print("  ".join(fmt(f.get(c)).ljust(widths[c]) for c in cols))


def _emit(data, as_json: bool) -> None:
    if as_json:
        json.dump(data, sys.stdout, indent=2, default=float)
        sys.stdout.write("\n")
    elif isinstance(data, list):
        _print_table(data)
    elif isinstance(data, dict):
        width = max(len(k) for k in data)
        for k, v in data.items():
            print(
                f"{k.ljust(width)}  {v:.4g}" if isinstance(v, float) else f"{k.ljust(width)}  {v}"
            )
    else:
        print(data)


class Unavailable(Exception):
    """A sub-command whose module cannot be imported in this installation (not yet written,
    or a dependency missing): one error line, exit status 1, no traceback."""


def _import_module(name: str):
    import importlib

    try:
        return importlib.import_module(f"cortexsim.{name}")
    except ImportError as exc:
        raise Unavailable(f"cortexsim.{name} cannot be imported ({exc})") from None


# --------------------------------------------------------------------------- commands
def cmd_protocols(a):
    from . import protocols

    _emit(protocols.describe_protocols(a.names, path=a.file), a.json)


def cmd_threshold(a):
    from . import coupling

    def number(field, text):  # the flag's text as a number; the coupling module checks range
        if text is None:
            return None
        try:
            return float(text)
        except ValueError:
            raise InputError(field, f"expected a number, got {text!r}") from None

    _emit(
        coupling.threshold_report(
            a.cell_type,
            a.waveform,
            angle_deg=number("angle_deg", a.angle_deg),
            pulse_width_us=number("pulse_width_us", a.pulse_width_us),
        ),
        a.json,
    )


def cmd_celltypes(a):
    from .circuit import characterize

    rows = characterize.characterize_all()
    if a.json:
        _emit(rows, True)
    else:
        print(celltypes_table(rows))


def celltypes_table(rows: list[dict], width: int = 100) -> str:
    """Properties down, cell types across: "simulated (target)"; sources below, wrapped.

    Parameters
    ----------
    rows : list of dict
        Output of :func:`cortexsim.circuit.characterize.characterize_all`.
    width : int
        Line width of the wrapped sources (characters).

    Returns
    -------
    str
    """
    import textwrap

    from .circuit.characterize import ABSENT

    def fmt(v, absent="-"):
        if not isinstance(v, float):
            return absent if v is None else str(v)
        return "0" if abs(v) < 5e-4 else f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"

    keys = list(dict.fromkeys(k for r in rows for k in r["simulated"]))
    cells = [
        [
            f"{fmt(r['simulated'].get(k), ABSENT.get(k, '-'))} ({fmt(r['target'].get(k))})"
            for r in rows
        ]
        for k in keys
    ]
    kw = max(len("property"), *(len(k) for k in keys))
    cw = [max(len(r["name"]), *(len(c[i]) for c in cells)) for i, r in enumerate(rows)]
    out = [
        "simulated (published target; - where no source gives one)",
        "  ".join(["property".ljust(kw)] + [r["name"].ljust(w) for r, w in zip(rows, cw)]),
    ]
    for k, c in zip(keys, cells):
        out.append("  ".join([k.ljust(kw)] + [x.ljust(w) for x, w in zip(c, cw)]))
    out.append("")
    out.append("sources:")
    for r in rows:
        out.extend(
            textwrap.wrap(f"{r['name']}: {r.get('source') or '-'}", width, subsequent_indent="    ")
        )
    return "\n".join(ln.rstrip() for ln in out)


def _run_settings(a) -> dict:
    """Run options of ``run`` and ``check`` given on the command line (``--session-sample``)."""
    settings = {}
    if a.session_sample is not None:
        v = a.session_sample
        try:
            settings["session_sample_s"] = v if v == "all" else float(v)
        except ValueError:
            raise InputError("--session-sample", f"expected 'all' or seconds, got {v!r}") from None
    return settings


def cmd_run(a):
    experiment = _import_module("experiment")
    settings = _run_settings(a)
    from .cost import guard_run  # refuses a run that will not fit in memory (exit 2)

    guard_run(
        a.spec, scale=a.scale, workers=a.workers, settings=settings, seed=a.seed, force=a.force
    )
    summary = experiment.run_cli(
        a.spec,
        scale=a.scale,
        out=a.out,
        seed=a.seed,
        progress=not a.quiet,
        workers=a.workers,
        settings=settings,
    )
    from .outdir import claim_out_dir

    with claim_out_dir(summary["out"]):  # no other writer while checkpoints are removed
        summary["checkpoints"] = finished_checkpoints(summary["out"], a.keep_checkpoints)
    if a.json:
        _emit(summary, True)
        return
    print(f"results written to {summary['out']} (results.nc, summary.json, report.md, figures)")
    for c in summary["criteria"]:
        obs = ", ".join(f"{k} {v:.3g}" for k, v in c["observed"].items())
        mark = {"pass": "PASS", "fail": "FAIL"}.get(c.get("status"), "N/A")
        how = ""
        if "fitted_to" in c:
            how = " (fitted)" if c["fitted_to"] else " (predicted)"
        print(f"[{mark}] {c['name']}{how}: expected {c['expected']}; observed {obs}")
    print(checkpoints_note(summary["checkpoints"]))


def finished_checkpoints(out, keep: bool) -> dict:
    """The checkpoints of a finished run (``OUT/checkpoints``): removed unless ``keep``; where
    they are and their size.

    Parameters
    ----------
    out : str or Path
        The run's output folder.
    keep : bool
        Keep them (a re-run of the same command then resumes from them).

    Returns
    -------
    dict
        ``path``, ``bytes`` (0 when removed) and ``kept``.
    """
    import shutil
    from pathlib import Path

    ck = Path(out) / "checkpoints"
    if not keep:
        shutil.rmtree(ck, ignore_errors=True)
    files = [f for f in ck.rglob("*") if f.is_file()] if ck.is_dir() else []
    return {"path": str(ck), "bytes": sum(f.stat().st_size for f in files), "kept": ck.is_dir()}


def checkpoints_note(ck: dict) -> str:
    """One line on a finished run's checkpoints: where, how large, how to remove them.

    Parameters
    ----------
    ck : dict
        Output of :func:`finished_checkpoints`.

    Returns
    -------
    str
    """
    import shlex

    if not ck["kept"]:
        return f"checkpoints: removed ({ck['path']}; --no-keep-checkpoints)"
    return (
        f"checkpoints: {ck['path']} ({ck['bytes'] / 1e6:.1f} MB), kept so that re-running "
        f"this command resumes from them; remove them with "
        f"`rm -r {shlex.quote(ck['path'])}`, or run with --no-keep-checkpoints"
    )


def cmd_sweep(a):
    sweep = _import_module("sweep")
    summary = sweep.run_cli(
        a.spec,
        workers=a.workers,
        scheduler=a.scheduler,
        out=a.out,
        scale=a.scale,
        progress=not a.quiet,
        plot=a.plot,
    )
    _emit(summary, a.json)


def cmd_fit(a):
    fit = _import_module("sweep.fit")
    summary = fit.run_cli(
        a.spec,
        workers=a.workers,
        scheduler=a.scheduler,
        out=a.out,
        scale=a.scale,
        progress=not a.quiet,
        n_trials=a.n_trials,
    )
    _emit(summary, a.json)


def cmd_sensitivity(a):
    sens = _import_module("sweep.sensitivity")
    summary = sens.run_cli(
        a.spec,
        workers=a.workers,
        scheduler=a.scheduler,
        out=a.out,
        scale=a.scale,
        progress=not a.quiet,
    )
    _emit(summary, a.json)


def cmd_validate(a):
    validation = _import_module("validation")
    seeds = None
    if a.seeds is not None:
        items = _comma_list("--seeds", a.seeds)
        try:
            seeds = [int(x) for x in items]
        except ValueError:
            raise InputError(
                "--seeds", f"expected comma-separated integers, got {a.seeds!r}"
            ) from None
    entries = _comma_list("--entries", a.entries) if a.entries is not None else None
    card = validation.run_cli(
        a.spec,
        scale=a.scale,
        seeds=seeds,
        workers=a.workers,
        quick=a.quick,
        out=a.out,
        entries=entries,
        suite=a.suite,
        progress=not a.quiet,
        force=a.force,
    )
    if a.json:
        _emit(card["summary"], True)
        return
    print(f"{card['model']['name']}: {card['summary']['line']}")
    print(
        f"scorecard written to {a.out or 'out/validation_' + card['model']['name']} "
        "(scorecard.md, scorecard.json, scorecard.png)"
    )


def _comma_list(field: str, text: str) -> list[str]:
    """The items of a comma-separated option (``1,2,3``); an empty list or item is an error
    (a typo such as ``1,,2`` is not silently read as ``1,2``)."""
    items = [x.strip() for x in text.split(",")]
    if not any(items):
        raise InputError(field, f"empty: give one or more comma-separated values, got {text!r}")
    if not all(items):
        raise InputError(field, f"an empty item in {text!r} (comma-separated, no empty items)")
    return items


def cmd_check(a):
    from .cost import check, format_report

    rep = check(a.spec, scale=a.scale, workers=a.workers, settings=_run_settings(a))
    if a.json:
        _emit(rep, True)
    else:
        print(format_report(rep))


def cmd_export(a):
    if not a.nwb:
        raise InputError("export", "name a format", ["--nwb"])
    from .nwb import export_cli

    got = export_cli(a.out_dir, a.out)
    if a.json:
        _emit(got, True)
    else:
        print(f"NWB file written to {got['nwb']}")


def _sweep_options(s, what: str) -> None:
    """Options shared by sweep, fit and sensitivity (all run on the sweep engine)."""
    s.add_argument("spec", help=f"{what} spec (TOML)")
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="local worker processes (default 1); ignored with --scheduler",
    )
    s.add_argument(
        "--scheduler",
        default=None,
        help="Dask scheduler address (tcp://host:8786); default: local processes",
    )
    s.add_argument(
        "--scale",
        default=None,
        help="small, default, large or a neuron count (default: the base spec's)",
    )
    s.add_argument("--out", default=None, help=f"output directory (default out/<{what} name>)")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``cortexsim`` command (one sub-command per action).

    Returns
    -------
    argparse.ArgumentParser
    """
    p = argparse.ArgumentParser(
        prog="cortexsim",
        description="TMS acting on prefrontal IT/PT circuits: from E-field to dendritic spines.",
        epilog="exit status: " + "; ".join(f"{k} {v}" for k, v in EXIT_STATUSES.items()),
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("protocols", help="list built-in stimulation protocols and schedules")
    s.add_argument(
        "names", nargs="*", metavar="NAME", help="only these protocols (default: all built-ins)"
    )
    s.add_argument("--file", default=None, help="TOML file of protocol specs to validate and list")
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_protocols)

    s = sub.add_parser("threshold", help="field (V/m) that fires a cell type with a TMS pulse")
    s.add_argument(
        "--cell-type",
        required=True,
        help="a [cells.<name>] table of models/coupling.toml: IT_L23, IT_L5, PT_L5, "
        "PV, SST or afferent in the shipped model",
    )
    s.add_argument(
        "--waveform",
        default="biphasic",
        help="biphasic, monophasic, half_sine or rectangular (default biphasic)",
    )
    s.add_argument(
        "--angle-deg",
        default="0",
        help="field direction relative to the somato-dendritic axis, in degrees "
        "(default 0; range: [limits] angle_deg of models/coupling.toml)",
    )
    s.add_argument(
        "--pulse-width-us",
        default=None,
        help="pulse width in microseconds: period of a biphasic pulse, rise of a "
        "monophasic one (default: the waveform's standard width; range: that of "
        "its [waveforms] width in models/coupling.toml)",
    )
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_threshold)

    s = sub.add_parser(
        "celltypes", help="simulate current-step protocols; intrinsic properties vs published"
    )
    s.add_argument("--json", action="store_true", help="print one JSON document")
    s.set_defaults(func=cmd_celltypes)

    s = sub.add_parser("run", help="run an experiment spec (TOML) and write results")
    s.add_argument("spec", help="experiment spec, e.g. experiments/aitbs_study.toml")
    s.add_argument(
        "--scale",
        default=None,
        help="small, default, large or a neuron count (default: the spec's)",
    )
    s.add_argument("--out", default=None, help="output directory (default out/<spec name>)")
    s.add_argument("--seed", type=int, default=None, help="override the spec's seed")
    s.add_argument(
        "--workers",
        type=int,
        default=1,
        help="conditions run in this many parallel processes (default 1)",
    )
    s.add_argument(
        "--session-sample",
        default=None,
        metavar="S|all",
        help="simulate S seconds (whole train periods) of every stimulation session "
        "and carry the GB efficacy over the rest by the GB mean field, or 'all' "
        "for every pulse (default: the spec's setting for the scale)",
    )
    s.add_argument(
        "--keep-checkpoints",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep OUT/checkpoints after a finished run, so that re-running the same "
        "command resumes from them (default: keep; "
        "--no-keep-checkpoints removes them once the results are written)",
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="run even if the estimated peak memory (cortexsim check) exceeds the "
        "memory available on this machine",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bars")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("sweep", help="run a parameter sweep spec locally or on Dask")
    _sweep_options(s, "sweep")
    s.add_argument(
        "--plot",
        default=None,
        metavar="METRIC",
        help="draw METRIC: lines (1 parameter) or a heat map (2) with replicate spread",
    )
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("fit", help="calibrate parameters to targets (Optuna; resumable)")
    _sweep_options(s, "fit")
    s.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="total trials of the study (default: the spec's fit.n_trials)",
    )
    s.set_defaults(func=cmd_fit)

    s = sub.add_parser("sensitivity", help="first- and total-order Sobol indices (SALib)")
    _sweep_options(s, "sensitivity")
    s.set_defaults(func=cmd_sensitivity)

    s = sub.add_parser(
        "validate",
        help="score a model against published experiments "
        "(validation/*.toml): scorecard.md/.json/.png",
    )
    s.add_argument(
        "spec",
        nargs="?",
        default=None,
        help="a what-if spec (path or shipped name, e.g. aitbs_study_mechanisms) "
        "whose overrides, ablations and settings define the model (default: "
        "the default model)",
    )
    s.add_argument(
        "--scale", default=None, help="small, default, large or a neuron count (default small)"
    )
    s.add_argument(
        "--seeds",
        default=None,
        metavar="S1,S2,...",
        help="replicate seeds (default 1,2,3); an entry is judged on their mean",
    )
    s.add_argument("--workers", type=int, default=1, help="local worker processes (default 1)")
    s.add_argument(
        "--quick",
        action="store_true",
        help="the quick subset (one entry of every kind) at 100 neurons, seed 1",
    )
    s.add_argument(
        "--entries", default=None, metavar="ID1,ID2,...", help="score only these entries"
    )
    s.add_argument(
        "--suite",
        default=None,
        metavar="DIR",
        help="a folder of suite files (*.toml) instead of the shipped suite",
    )
    s.add_argument(
        "--out", default=None, help="output directory (default out/validation_<model name>)"
    )
    s.add_argument(
        "--force",
        action="store_true",
        help="run even if the estimated peak memory of the experiment runs "
        "(cortexsim check) exceeds the memory available on this machine",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser(
        "check",
        help="validate a spec as run/sweep/fit would, say what it "
        "would run and estimate its wall time and peak memory",
    )
    s.add_argument(
        "spec",
        help="experiment, sweep, fit or sensitivity spec (TOML), or the name "
        "of a shipped experiment spec",
    )
    s.add_argument(
        "--scale",
        default=None,
        help="small, default, large or a neuron count (default: the spec's)",
    )
    s.add_argument(
        "--workers", type=int, default=1, help="worker processes the run would use (default 1)"
    )
    s.add_argument(
        "--session-sample", default=None, metavar="S|all", help="as for run (experiment specs)"
    )
    s.add_argument("--json", action="store_true", help="print the report as JSON")
    s.set_defaults(func=cmd_check)

    s = sub.add_parser(
        "export", help="export a run's results (OUT/results.nc) to another format: NWB"
    )
    s.add_argument("out_dir", metavar="OUT", help="a run's output folder (or its results.nc)")
    s.add_argument(
        "--nwb", action="store_true", help="write NWB (pynwb; pip install 'cortexsim[nwb]')"
    )
    s.add_argument(
        "--out", default=None, metavar="FILE", help="the file to write (default OUT/results.nwb)"
    )
    s.add_argument("--json", action="store_true", help='print {"nwb": path} as JSON')
    s.set_defaults(func=cmd_export)
    return p


#: environment variable: set to 1 for the full traceback of an internal error
ENV_TRACEBACK = "CORTEXSIM_TRACEBACK"


def _issue_tracker() -> str:
    """This project's issue tracker, from the installed package's metadata
    (pyproject ``[project.urls]`` ``Issues``)."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("cortexsim").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    found = dict(u.split(", ", 1) for u in urls if ", " in u)
    return found.get("Issues") or found.get("Homepage") or "the cortexsim issue tracker"


def _report_internal_error(command: str, exc: BaseException) -> None:
    """An unexpected error (a bug in cortexsim, not bad input): what it is, where it was raised
    (the innermost cortexsim frame, and the raising frame if elsewhere), where to report it."""
    import os
    import traceback
    from pathlib import Path

    frames = traceback.extract_tb(exc.__traceback__)
    root = Path(__file__).resolve().parent.parent

    def where(fr) -> str:
        path = Path(fr.filename)
        short = path.relative_to(root) if path.is_relative_to(root) else path
        return f"{short}:{fr.lineno} in {fr.name}"

    own = [
        fr
        for fr in frames
        if Path(fr.filename).resolve().is_relative_to(root / "cortexsim") and fr.name != "main"
    ]
    loc = " <- ".join(dict.fromkeys(where(fr) for fr in (frames[-1:] + own[-1:])))
    print(
        f"cortexsim {command}: internal error (a bug in cortexsim, not in your input): "
        f"{type(exc).__name__}: {exc}\n  raised at {loc or '?'}\n"
        f"  please report it, with the command line, at {_issue_tracker()}"
        f" ({ENV_TRACEBACK}=1 prints the full traceback)",
        file=sys.stderr,
    )
    if os.environ.get(ENV_TRACEBACK) == "1":
        traceback.print_exception(exc, file=sys.stderr)


def _report_storage_error(command: str, exc: StorageError) -> None:
    """An error of the environment: one line naming the path, the cause and what to do."""
    import os
    import traceback

    print(f"cortexsim {command}: I/O error: {exc}; {exc.advice()}", file=sys.stderr)
    if os.environ.get(ENV_TRACEBACK) == "1":
        traceback.print_exception(exc, file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (:data:`EXIT_STATUSES`): 0, 2 for bad
    input (one line naming the field), 74 for an error of the environment while writing or
    reading a file (one line naming the path and what to do), 1 for a missing module or an
    internal error (one short report), 130 on Ctrl-C or SIGINT, whatever SIGINT handler the
    process inherited (:func:`cortexsim.errors.interrupts_raise`).  Every error is reported
    here, so Brian2's excepthook (its "report this to Brian 2" banner, and the debug files it
    then keeps in the temp folder) never sees cortexsim's errors.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with interrupts_raise():
            args.func(args)
    except InputError as exc:
        print(f"cortexsim {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Unavailable as exc:
        print(f"cortexsim {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001  (every other error is a bug: reported as one)
        storage = environment_error(exc)
        if storage is not None:
            _report_storage_error(args.command, storage)
            return EXIT_IO
        _report_internal_error(args.command, exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
