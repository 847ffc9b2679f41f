"""Insight (客户洞察): per-customer features (标签), and later lifecycle stages, segments and clusters."""
