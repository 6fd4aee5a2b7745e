"""The oracle: DESIGN.md's windows, features and detectors one Tick at a time.

The simplest correct form of each definition, kept in the tests only: property tests compare
the production engine (`tickwatch.engine`, columnar) with it on generated streams.
"""
