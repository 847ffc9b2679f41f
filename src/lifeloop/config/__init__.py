"""Strict pydantic models of every YAML spec and a loader whose errors name file, line and field."""

from lifeloop.config.loader import load_model, load_yaml

__all__ = ["load_model", "load_yaml"]
