"""Strategy (策略制定): the strategy map, audiences, holdouts, contact policy, arbitration and the plan."""
