"""Alembic revisions of the operations database, oldest first (this file keeps them in the package)."""
