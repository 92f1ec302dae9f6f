"""Model parameter files (``*.toml``), installed with cortexsim as the package data of
``cortexsim.models`` (see :func:`cortexsim.params.models_dir`)."""
