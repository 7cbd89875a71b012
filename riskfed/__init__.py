"""riskfed."""
