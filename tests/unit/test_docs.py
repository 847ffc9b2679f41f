"""docs/ stays true to the code."""

from pathlib import Path

from lifeloop.data import schema_doc

ROOT = Path(__file__).resolve().parents[2]


def test_the_data_model_doc_matches_the_canonical_schema_in_code():
    text = (ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    start, end = text.index(schema_doc.BEGIN), text.index(schema_doc.END) + len(schema_doc.END)
    assert text[start:end] == schema_doc.render(), "regenerate: python -m lifeloop.data.schema_doc"


def test_every_personal_column_has_a_class_and_no_c3_column_exists():
    from lifeloop.data.schema import TABLES

    personal = {"name", "id_number", "mobile", "email", "birth_date", "balance", "amount", "account_id"}
    for table in TABLES.values():
        for col in table.columns:
            assert col.pii != "C3", f"{table.name}.{col.name}: C3 data is never stored"
            if col.name in personal and table.name not in ("branches", "products", "relationship_managers"):
                assert col.pii == "C2", f"{table.name}.{col.name} must be C2"
