"""Review (经营回检): outcomes, post-evaluation statistics, KPIs and suggestions."""
