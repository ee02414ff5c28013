"""Thin command-line entry points; they only call :mod:`disc_jax.train`."""
