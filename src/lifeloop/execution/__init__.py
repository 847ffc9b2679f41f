"""Execution (策略执行): dispatch the day's lists through channel adapters, RM worklists, feedback import.

See docs/execution.md.
"""
