"""go-cache-matrix: measure Go build-cache and module-cache behaviour per distro x arch x container setup."""

__version__ = "0.1.0"
