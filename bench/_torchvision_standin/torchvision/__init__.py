"""Candor's transforms-only torchvision stand-in for CPU smoke runs (see ../README.md)."""

__version__ = "0.0.0+candor.standin"
