"""Threshold rule files (YAML). ``default.yaml`` ships with gpuwatch."""
