"""Real-time moments of truth (关键时刻): event intake, detectors, and a decision in seconds (docs/realtime.md)."""
