"""ccvec: perceptual structure for image catalogs, computed once and kept in PostgreSQL."""

__version__ = "0.1.0"
