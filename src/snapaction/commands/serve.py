"""Serve a trained run as a local web page and JSON API.

Open the address it prints in a browser: drop a video or record one from the
webcam, and see the probability of every class. The API: POST /api/predict
(multipart field 'video'), GET /api/info, GET /healthz; its schema is at
/openapi.json. It listens on 127.0.0.1 (this machine only) unless --host says
otherwise, and refuses to start without a valid run folder.
"""

from __future__ import annotations

import argparse
import sys

from ..web.guard import Access, add_access_arguments, beyond_loopback_warning

from ..config import add_arguments as add_options, from_args
from ..engines import Inference

HELP = "serve a run as a local web page and JSON API"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run folder written by training")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on; anything but a loopback address lets other machines reach the app (default: %(default)s)",
    )
    add_access_arguments(parser)
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: %(default)s)")
    parser.add_argument(
        "--max-upload-mb", type=float, default=200, help="largest video accepted, in MB (default: %(default)s)"
    )
    parser.add_argument(
        "--queue",
        type=int,
        default=16,
        help="videos that may wait for the model at once; more are answered '503 busy' (default: %(default)s)",
    )
    parser.add_argument("--device", default=None, help="torch device, e.g. cpu or cuda (default: the run's choice)")
    add_options(parser, Inference, "inference")


def run(args: argparse.Namespace) -> int:
    from . import load_run

    load_run(args.run)  # a wrong folder is one sentence at once, before anything heavy is loaded
    from ..web.app import bind_socket, create_app, serve

    access = Access.for_host(args.host, args.allow_host, args.token)
    sock = bind_socket(args.host, args.port)  # a busy port, too, is said before the weights are loaded
    try:
        from ..predict import Predictor

        how = from_args(Inference, args)
        predictor = Predictor.load(args.run, device=args.device, engine=how.engine, precision=how.precision, seek=how.seek)  # RunError: one sentence, exit status 2
        app = create_app(predictor, max_upload_mb=args.max_upload_mb, queue_size=args.queue, access=access)
    except BaseException:
        sock.close()
        raise
    warning = beyond_loopback_warning(access, "this app")
    if warning:
        print(warning, file=sys.stderr)
    port = sock.getsockname()[1]
    where = access.address(port)
    if args.host.strip("[]") in ("0.0.0.0", "::"):  # every address of this machine; the browser here needs a real one
        where += f" (other machines: this machine's address, port {port})"
    print(f"Serving the run in {args.run} at {where}  (Ctrl+C to stop)", flush=True)
    serve(app, sock)
    return 0
