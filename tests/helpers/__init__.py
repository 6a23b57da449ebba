"""Test helpers shared across the suite: real fixtures, a test motif, RELION references,
spectrum measurements, MRC files written byte by byte, checks of one-line errors, a
record of positioned reads.  Nothing here is a test."""
