"""Pure rules and DataFrame -> DataFrame transforms; no I/O, no actions, no config; imports only core."""
