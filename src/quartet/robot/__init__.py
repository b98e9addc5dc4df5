"""Tactile-shell millirobot in compliant beams (Koc et al., ICRA 2019, arXiv 1904.09101)."""
