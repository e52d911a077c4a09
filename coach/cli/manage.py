"""`coach models`, `coach bench`, `coach doctor` and `coach ui`: models, measurements and the browser UI."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from coach.config import Settings
from coach.errors import CoachError


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n else "-"


def cmd_models_list(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models.catalog import default_model, get_mistral, list_models
    from coach.models.fit import available_ram

    rows = list_models(settings)
    try:
        default = default_model(settings).name
    except CoachError:
        default = ""
    print(f"{'NAME':42} {'INSTALLED':9} {'SIZE':>9} {'RAM NEEDED':>10}  FITS  {'LICENCE':14} NOTE")
    for r in rows:
        note = ", ".join(x for x in ("default" if r.name == default else "",
                                     "recommended quant" if r.recommended else "", "older" if r.older else "") if x)
        print(f"{r.name:42} {'yes' if r.installed else 'no':9} {_gb(r.size):>9} {_gb(r.ram_needed):>10}  "
              f"{'yes' if r.fits else 'NO':4}  {r.licence:14} {note}")
    print(f"\nRAM estimate = weights + f16 KV cache of 4 speakers x 3072 cells (a session's need; grown up to "
          f"--ctx {settings.n_ctx}) + 256 MiB buffers; free now: {available_ram() / 1e9:.1f} GB\n{get_mistral()}")
    return 0


def cmd_models_pull(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models.catalog import pull

    path = pull(args.name, settings, progress=not args.quiet)
    print(f"ready: {path}")
    return 0


def cmd_models_add(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models.catalog import add

    ref = add(args.path, settings, name=args.name)
    print(f"registered {ref.name}: {ref.path} [{ref.quant}]")
    return 0


def cmd_models_quantize(args: argparse.Namespace, settings: Settings) -> int:
    from coach.bench.ladder import quantize

    ref = quantize(args.src, args.type, settings, out=args.out)
    print(f"made {ref.name}: {ref.path} [{ref.quant}]")
    return 0


def cmd_models_rm(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models.catalog import remove

    _, what = remove(args.name, settings)
    print(what)
    return 0


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from coach.bench.ladder import LADDER, build_ladder
    from coach.bench.run import Options, recommend, run
    from coach.errors import InvalidModelFile
    from coach.models.catalog import ModelRef, resolve
    from coach.report.views import bench_table

    files = []
    if args.shape:
        from coach.bench.ladder import build_shapes

        files += build_shapes(args.shape, settings, progress=not args.quiet)
    if args.ladder:
        rungs = tuple(r.strip().upper() for r in args.rungs.split(",")) if args.rungs else LADDER
        print(f"building the ladder {', '.join(rungs)} from {args.ladder} (cached by source hash)…", file=sys.stderr)
        files += build_ladder(args.ladder, settings, rungs)
    for m in args.models:
        try:
            files.append(resolve(m, settings))
        except InvalidModelFile:  # it exists but is broken: its row says why, the others still run
            files.append(ModelRef(Path(m).name, Path(m), "local", "?", Path(m).name))
    if not files:
        files = [resolve(None, settings)]
    opts = Options(reps=args.reps, threads=settings.n_threads, gpu_layers=settings.n_gpu_layers,
                   thread_sweep=args.thread_sweep, out_dir=args.out,
                   speed_only=bool(args.shape) and not args.ladder and not args.models)
    try:
        rows, out = run(files, settings, opts, progress=not args.quiet)
    except KeyboardInterrupt:
        print("\ncoach: interrupted; the finished rows are saved", file=sys.stderr)
        return 130
    print(bench_table(rows))
    print(f"\n{recommend(rows)}")
    print(f"CSV, JSON, plot.png and plot.html in {out}")
    return 0


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    from coach.models.doctor import report

    print(report(settings))
    return 0


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    import socket

    from coach.auth import launch_auth
    from coach.errors import ConfigError

    launch_auth(settings)  # an exposed coach without sign-in is refused before anything loads
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:  # before minutes of model loading
        if os.name != "nt":  # as the server will: a port left in TIME_WAIT by a UI just closed is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((settings.host, settings.port))
        except OSError as exc:
            raise ConfigError(f"port {settings.port} on {settings.host} is in use ({exc.strerror or exc}); "
                              "pass --port with another number, or stop the program using it") from None
    from coach.ui import launch

    launch(settings)
    return 0


def cmd_users(args: argparse.Namespace, settings: Settings) -> int:
    """`coach users add|rm|list FILE [NAME]`: the users file a shared coach signs people in with."""
    import getpass

    from coach.auth import check_name, hash_password, read_users, write_users
    from coach.errors import ConfigError

    path: Path = args.file
    users = read_users(path) if path.exists() or args.users_command != "add" else {}
    if args.users_command == "list":
        for name in sorted(users):
            print(name)
        return 0
    name = check_name(args.name)
    if args.users_command == "rm":
        if name not in users:
            raise ConfigError(f"no user {name!r} in {path}; `coach users list {path}` shows who is")
        del users[name]
        write_users(path, users)
        print(f"removed {name} from {path}")
        return 0
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ; nothing was changed")
    if len(password) < 8:
        raise ConfigError("use a password of 8 characters or more; nothing was changed")
    existed = name in users
    users[name] = hash_password(password)
    write_users(path, users)
    print(f"{'updated' if existed else 'added'} {name} in {path} (start with: coach ui --host 0.0.0.0 --users {path})")
    return 0


def cmd_serve_model(args: argparse.Namespace, settings: Settings) -> int:
    """Serve the model in the foreground until Ctrl-C; the coach servers connect with --backend."""
    import subprocess

    from coach.engine.serve import server_command
    from coach.models.catalog import resolve

    ref = resolve(settings.model, settings)
    gpu = -1 if settings.n_gpu_layers is None else settings.n_gpu_layers
    cmd = server_command(ref.path, host=args.host, port=args.port, n_ctx=settings.n_ctx, slots=max(1, args.slots),
                         gpu_layers=gpu, threads=settings.n_threads, kind=args.kind,
                         binary=settings.llama_server)
    where = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"coach: serving {ref.describe()} with {cmd.kind}; connect a coach with: "
          f"coach ui --backend http://{where}:{args.port}", file=sys.stderr, flush=True)
    try:
        return subprocess.run(cmd.argv).returncode
    except KeyboardInterrupt:
        return 130
