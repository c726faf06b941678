"""The subcommands, one module each (the table is `snapaction.cli.COMMANDS`), and what several of them share."""

from __future__ import annotations

from pathlib import Path


def load_run(run: str, later: list[str] | tuple[str, ...] = ()):
    """The `RunInfo` of the run folder argument `run`, read before anything heavy is imported.

    A file where the run folder goes (a clip given first), or a run folder among
    the arguments `later` when `run` is not one, is a `UsageError` that says so
    (the command line prints the usage with it); any other `RunError` is raised
    as it is.
    """
    from ..errors import RunError, UsageError
    from ..run import RunInfo, is_run, kind_of_file

    try:
        return RunInfo.load(run)
    except RunError as err:
        swapped = next((p for p in later if is_run(p)), None)
        given = Path(run)
        if not swapped and not given.is_file():
            raise
        if given.is_file():
            what = f"{run} is {kind_of_file(given)}, not a run folder"
        else:
            what = f"{run} is not a run folder" if given.exists() else f"{run} does not exist"
        if swapped:
            raise UsageError(f"{what}; the run folder comes first, and {swapped}, given after it, is one") from None
        if later:
            raise UsageError(f"{what}; the run folder (the --out folder of `snapaction train`) comes first") from None
        raise UsageError(str(err)) from None
