"""``python -m freshrec``: the same command line as the ``freshrec`` script."""

from freshrec.cli import app

app(prog_name="freshrec")
