"""Lifeloop: customer lifecycle operations for retail banks (客户全生命周期经营平台).

The public entry point is :class:`lifeloop.context.Context`; import it lazily so that
``import lifeloop`` stays cheap.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "Context"]


def __getattr__(name: str):
    if name == "Context":
        from lifeloop.context import Context

        return Context
    raise AttributeError(name)
