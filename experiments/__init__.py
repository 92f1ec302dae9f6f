"""Experiment specs shipped with cortexsim (``*.toml``), installed as the package data of
``cortexsim.experiments``: ``cortexsim run NAME`` finds them by name (see
:func:`cortexsim.params.experiments_dir`)."""
