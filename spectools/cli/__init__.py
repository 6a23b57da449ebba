"""The ``spectools`` command: one subcommand per job, each a thin layer over the library."""
