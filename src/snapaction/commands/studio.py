"""Teach SnapAction in the browser: make classes, record clips from the webcam, train, watch live predictions.

PROJECT_DIR (created if missing) holds the clips as ordinary files in
PROJECT_DIR/data/<class>/, so `snapaction train PROJECT_DIR/data` works on them
too; runs land in PROJECT_DIR/runs/<name>/ exactly as `snapaction train`
writes them, and deleted clips in PROJECT_DIR/trash/ (the page can undo).
It listens on 127.0.0.1 (this machine only) unless --host says otherwise.

Examples:
  snapaction studio my-project/
  snapaction studio my-project/ --run runs/kitchen     # also watch a run trained by the CLI live
"""

from __future__ import annotations

import argparse
import sys

from ..web.guard import Access, add_access_arguments, beyond_loopback_warning

HELP = "the whole loop in a local page: classes, webcam clips, training, live predictions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT_DIR", nargs="?", default="studio-project",
                        help="project folder: data/, runs/, trash/ (default: %(default)s)")
    parser.add_argument("--run", default=None, help="a run folder trained elsewhere, offered for live mode too")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; anything but a loopback address lets other machines reach the studio (default: %(default)s)")
    add_access_arguments(parser)
    parser.add_argument("--port", type=int, default=7861, help="port to listen on (default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=float, default=200, help="largest clip accepted, in MB (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="where training caches decoded clips (default: snapaction train's)")


def run(args: argparse.Namespace) -> int:
    from ..web.app import bind_socket, serve

    access = Access.for_host(args.host, args.allow_host, args.token)
    sock = bind_socket(args.host, args.port)  # a busy port is said before anything else
    try:
        from ..studio.app import create_studio_app

        app = create_studio_app(args.project, run=args.run, cache_dir=args.cache_dir, max_upload_mb=args.max_upload_mb,
                                access=access)
    except BaseException:
        sock.close()
        raise
    warning = beyond_loopback_warning(access, "the studio (and your webcam's clips)")
    if warning:
        print(warning, file=sys.stderr)
    print(f"SnapAction studio for {args.project} at {access.address(sock.getsockname()[1])}  (Ctrl+C to stop)", flush=True)
    serve(app, sock)
    return 0
