"""`az network bastion doctor`: run.py gathers the facts, checks.py decides each row, probe.py times the data plane."""
