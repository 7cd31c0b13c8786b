"""The ``dcc`` command line: imports everything, is imported by nothing."""
