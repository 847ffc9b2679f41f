"""Lifeloop: customer lifecycle operations for retail banks (客户全生命周期经营平台).

The public entry point is :class:`lifeloop.context.Context`: ``from lifeloop import Context``.
"""

__version__ = "0.1.0"   # before the imports: modules under lifeloop read it while the package loads

from lifeloop.context import Context  # noqa: E402

__all__ = ["Context", "__version__"]
