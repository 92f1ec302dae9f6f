"""The validation suite (data): published experiments the scorecard scores a model against (see cortexsim.validation)."""
