"""The ``mxt`` command line: one module per subcommand, loaded when used."""
