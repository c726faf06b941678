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

HELP = "the whole loop in a local page: classes, webcam clips, training, live predictions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT_DIR", nargs="?", default="studio-project",
                        help="project folder: data/, runs/, trash/ (default: %(default)s)")
    parser.add_argument("--run", default=None, help="a run folder trained elsewhere, offered for live mode too")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on; anything but a loopback address lets other machines reach the studio (default: %(default)s)")
    parser.add_argument("--port", type=int, default=7861, help="port to listen on (default: %(default)s)")
    parser.add_argument("--max-upload-mb", type=float, default=200, help="largest clip accepted, in MB (default: %(default)s)")
    parser.add_argument("--cache-dir", default=None, help="where training caches decoded clips (default: snapaction train's)")


def run(args: argparse.Namespace) -> int:
    from ..web.app import bind_socket, is_loopback, serve, url

    sock = bind_socket(args.host, args.port)  # a busy port is said before anything else
    try:
        from ..studio.app import create_studio_app

        app = create_studio_app(args.project, run=args.run, cache_dir=args.cache_dir, max_upload_mb=args.max_upload_mb)
    except BaseException:
        sock.close()
        raise
    if not is_loopback(args.host):
        print(f"warning: listening on {args.host} lets other machines on the network use the studio (and your webcam's "
              "clips), and it has no login; use --host 127.0.0.1 to keep it on this machine.", file=sys.stderr)
    port = sock.getsockname()[1]
    host = args.host.strip("[]")
    where = url("127.0.0.1", port) if host in ("0.0.0.0", "::") else url(host, port)
    print(f"SnapAction studio for {args.project} at {where}  (Ctrl+C to stop)", flush=True)
    serve(app, sock)
    return 0
