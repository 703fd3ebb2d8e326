"""The ``msinv`` command line: one typer app with a sub-app per engine."""
