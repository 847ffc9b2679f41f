"""The bank's data: canonical schema, readers, mapping and validation, ingestion, simulator."""
