"""Test helpers shared across the suite: real fixtures, a test motif, RELION references,
spectrum measurements.  Nothing here is a test."""
