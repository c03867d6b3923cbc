"""`vaetune gallery RESULTS|CHECKPOINT`: a Streamlit page on 127.0.0.1 to play with what a search
made: its trials side by side (samples from the same z, reconstructions, a latent explorer,
interpolations, kept epochs, nearest training images, export), or one checkpoint's model.

The target and the port are checked before any server starts: a folder that is not a search or
sweep, a file that is not a vaetune checkpoint and a busy port are each one line, exit code 2.
"""

from __future__ import annotations

import argparse


def register(commands) -> None:
    what = "a gallery in the browser: a search's trials side by side, or a checkpoint's model"
    p = commands.add_parser("gallery", help=what, description=what)
    p.add_argument("target", metavar="RESULTS|CHECKPOINT",
                   help="results/<name> folder of a search or sweep, or a checkpoint (.pt, e.g. from vaetune export)")
    p.add_argument("--port", type=int, default=8501)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vaetune.commands._serve import check_port, serve
    from vaetune.errors import UserError

    try:
        import streamlit  # noqa: F401 - installed with vaetune; say so plainly if it was removed
    except ImportError:
        raise UserError("vaetune gallery needs Streamlit: pip install streamlit") from None
    from vaetune.gallery import open_gallery, server_command

    gallery = open_gallery(args.target)
    check_port(args.port)
    base = f"http://127.0.0.1:{args.port}"
    print(f"vaetune gallery of {gallery.title} ({gallery.source})\n  {base}\n(Ctrl-C stops it)", flush=True)
    cmd, env = server_command(gallery.source, args.port)
    return serve(cmd, env, "the gallery's Streamlit server")
