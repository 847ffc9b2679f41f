"""The ``lifeloop`` command line (Typer): thin commands over :class:`lifeloop.context.Context`."""
