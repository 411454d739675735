"""``voicebot models ...``: list, download, import, verify, remove, prepare, path.

Every subcommand takes ``--json`` for scripts and the app. ``download --json`` prints
one JSON object per line (progress events, then the result), so a parent process can
follow a download it started and kill it to cancel (the next run resumes).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from voicebot.models.catalog import KINDS
from voicebot.models.download import Progress
from voicebot.models.errors import ModelError
from voicebot.models.store import ModelStore

EXIT_FAILED = 1
EXIT_CANCELLED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)

    p = sub.add_parser("list", help="the models voicebot knows and which are installed")
    p.add_argument("--installed", action="store_true", help="only installed models")
    p.add_argument("--kind", choices=KINDS, help="only models of this kind")
    _json_flag(p)

    p = sub.add_parser("download", help="download (or install) a model; resumes if "
                                        "interrupted")
    p.add_argument("model_id", metavar="ID")
    p.add_argument("--force", action="store_true", help="reinstall even if installed")
    _json_flag(p, "print progress and the result as JSON lines")

    p = sub.add_parser("import", help="install a model you already have (folder, .zip, "
                                      ".tar.gz or single file)")
    p.add_argument("source", metavar="PATH", type=Path)
    p.add_argument("--id", dest="model_id", required=True,
                   help="a catalog id (e.g. vosk-en-us-small-0.15) or a new id of your own")
    p.add_argument("--kind", choices=KINDS, help="what it is (needed for a new id)")
    _json_flag(p)

    p = sub.add_parser("verify", help="check installed models against their sha256")
    p.add_argument("model_ids", metavar="ID", nargs="*",
                   help="models to check (default: every installed model)")
    _json_flag(p)

    p = sub.add_parser("remove", help="delete a downloaded or imported model and its "
                                      "conversions")
    p.add_argument("model_id", metavar="ID")
    _json_flag(p)

    p = sub.add_parser("prepare", help="check the embedded defaults and run the one-time "
                                       "conversions (the set-up script runs this)")
    p.add_argument("--quiet", action="store_true", help="print only problems")
    _json_flag(p)

    p = sub.add_parser("path", help="print where a model is loaded from")
    p.add_argument("model_id", metavar="ID")
    p.add_argument("--raw", action="store_true", help="the source file, not its conversion")
    _json_flag(p)


def _json_flag(parser: argparse.ArgumentParser, text: str = "print JSON") -> None:
    parser.add_argument("--json", action="store_true", help=text)


def run(args: argparse.Namespace) -> int:

    try:
        store = ModelStore()
        handler = _HANDLERS[args.models_command]
        return handler(store, args)
    except KeyboardInterrupt:
        _fail(args, "cancelled; run the same command again to resume", EXIT_CANCELLED)
        return EXIT_CANCELLED
    except ModelError as exc:
        return _fail(args, str(exc))


def _fail(args: argparse.Namespace, message: str, code: int = EXIT_FAILED) -> int:
    if getattr(args, "json", False):
        print(json.dumps({"event": "error", "ok": False, "error": message}))
    else:
        print(f"voicebot models: {message}", file=sys.stderr)
    return code


def _emit(data: Any) -> None:
    print(json.dumps(data, indent=2))


def _list(store, args) -> int:
    rows = store.status()
    if args.installed:
        rows = [r for r in rows if r["installed"]]
    if args.kind:
        rows = [r for r in rows if r["kind"] == args.kind]
    if args.json:
        _emit(rows)
        return 0
    for r in rows:
        mark = {"installed": "ok ", "corrupt": "BAD", "missing": "   "}[r["state"]]
        flags = " default" if r["default"] else ""
        print(f"[{mark}] {r['id']:30s} {r['kind']:16s} {r['language'] or '-':12s} "
              f"{r['size_mb']:7.0f} MB  {r['source']}{flags}")
        if r["state"] == "corrupt":
            print(f"       {r['problem']}")
    print(f"\n{sum(r['installed'] for r in rows)} of {len(rows)} installed; models folder: "
          f"{store.models_dir}")
    return 0


def _download(store, args) -> int:
    progress = _json_progress if args.json else _ProgressLine()
    started = time.monotonic()
    path = store.download(args.model_id, progress=progress, force=args.force)
    if not args.json:
        progress.close()
    result = {"event": "done", "ok": True, "id": args.model_id, "path": str(path),
              "seconds": round(time.monotonic() - started, 2)}
    row = next((r for r in store.status() if r["id"] == args.model_id), {})
    if row.get("unverified_files"):
        result["unverified_files"] = row["unverified_files"]
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model_id} installed at {path}")
        if result.get("unverified_files"):
            print("warning: the catalog pins no sha256 for "
                  f"{', '.join(result['unverified_files'])}; what arrived was recorded and "
                  "later checks compare with it", file=sys.stderr)
    return 0


def _json_progress(p: Progress) -> None:
    print(json.dumps({"event": "progress", "file": p.file, "done": p.done, "total": p.total,
                      "rate": round(p.rate), "eta": None if p.eta is None else round(p.eta, 1)}),
          flush=True)


class _ProgressLine:
    """One self-updating line on stderr (plain lines when it is not a terminal)."""

    def __init__(self):
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.current = ""

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        finished = p.total is not None and p.done >= p.total
        if not finished and now - self.last < (0.2 if self.tty else 5.0):
            return
        self.last = now
        size = f"{p.done / 2**20:.1f}" + (f" / {p.total / 2**20:.1f}" if p.total else "")
        eta = f"  ETA {int(p.eta) // 60}:{int(p.eta) % 60:02d}" if p.eta is not None else ""
        line = f"{p.file}: {size} MB  {p.rate / 2**20:.1f} MB/s{eta}"
        if self.tty:
            print("\r" + line.ljust(78), end="", file=sys.stderr, flush=True)
        else:
            print(line, file=sys.stderr)
        self.current = line

    def close(self) -> None:
        if self.tty and self.current:
            print(file=sys.stderr)


def _import(store, args) -> int:
    path = store.import_model(args.source, args.model_id, kind=args.kind)
    if args.json:
        _emit({"ok": True, "id": args.model_id, "path": str(path)})
    else:
        print(f"imported {args.source} as {args.model_id} at {path}")
    return 0


def _verify(store, args) -> int:
    ids = args.model_ids or [r["id"] for r in store.status() if r["state"] != "missing"]
    results = [store.verify(model_id) for model_id in ids]
    results += store.verify_conversions(args.model_ids or None)
    if args.json:
        _emit(results)
    else:
        for r in results:
            mark = "ok  " if r["ok"] else "FAIL"
            detail = "; ".join(r["problems"]) or r.get("path", "")
            print(f"[{mark}] {r['id']:30s} {detail}")
    return 0 if all(r["ok"] for r in results) else EXIT_FAILED


def _remove(store, args) -> int:
    removed = store.remove(args.model_id)
    if args.json:
        _emit({"ok": True, "id": args.model_id, "removed": [str(p) for p in removed]})
    else:
        for path in removed:
            print(f"removed {path}")
    return 0


def _prepare(store, args) -> int:
    started = time.monotonic()
    quiet = args.quiet or args.json
    rows = store.prepare(log_fn=None if quiet else print)
    ok = all(r["ok"] for r in rows)
    if args.json:
        _emit({"ok": ok, "seconds": round(time.monotonic() - started, 2), "models": rows})
    else:
        for r in rows:
            if not r["ok"]:
                print(f"[FAIL] {r['id']}: {r['error']}", file=sys.stderr)
            elif not args.quiet:
                print(f"[ok  ] {r['id']:24s} {r['action']:18s} {r['seconds']:6.2f} s")
        if not ok:
            print("voicebot models prepare: some default models are missing or damaged "
                  "(see above); the set-up script `bash packaging/bootstrap.sh` installs "
                  "them", file=sys.stderr)
    return 0 if ok else EXIT_FAILED


def _path(store, args) -> int:
    path = store.resolve(args.model_id, converted=not args.raw)
    if args.json:
        _emit({"ok": True, "id": args.model_id, "path": str(path)})
    else:
        print(path)
    return 0


_HANDLERS = {"list": _list, "download": _download, "import": _import, "verify": _verify,
             "remove": _remove, "prepare": _prepare, "path": _path}
