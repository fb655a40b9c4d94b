"""Go workloads and the offline module proxy generator (data + proxy.py)."""
