"""The package version; the native library must report the same one."""

__version__ = "0.1.0"
