"""Render the canonical schema as Markdown (docs/data-model.md is checked against this by a test)."""

from __future__ import annotations

from lifeloop.data.schema import TABLES

BEGIN = "<!-- generated: python -m lifeloop.data.schema_doc -->"
END = "<!-- end generated -->"


def render() -> str:
    """Every canonical table: kind, key, references, and a row per column."""
    out = [BEGIN, ""]
    for t in TABLES.values():
        out.append(f"### `{t.name}` ({t.kind})")
        out.append("")
        out.append(t.description)
        out.append("")
        out.append(f"Key: `{', '.join(t.primary_key)}`." + (f" Dated by `{t.date_column}`." if t.date_column else ""))
        if t.foreign_keys:
            refs = ", ".join(f"`{fk.column}` -> `{fk.ref_table}.{fk.ref_column}`" for fk in t.foreign_keys)
            out.append(f"References: {refs}.")
        out.append("")
        out.append("| column | type | required | personal data | description |")
        out.append("|---|---|---|---|---|")
        for c in t.columns:
            desc = c.description
            if c.allowed:
                desc += " One of: " + ", ".join(f"`{a}`" for a in c.allowed) + "."
            if c.nonnegative:
                desc += " Never negative."
            out.append(f"| `{c.name}` | {c.type} | {'yes' if c.required else ''} | {c.pii or ''} | {desc} |")
        out.append("")
    out.append(END)
    return "\n".join(out)


if __name__ == "__main__":
    print(render())
